"""Where an image's bytes are: one location per store, and the copies store_sync makes between stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# Location metadata keys of copies made by store_sync.
BATCH_KEY = "batch"
MUST_SUCCEED_KEY = "must_succeed"
ERROR_KEY = "error"
# Glance's import progress properties, shown while and after copies to stores run.
IMPORTING_PROPERTY = "os_glance_importing_to_stores"
FAILED_IMPORT_PROPERTY = "os_glance_failed_import"


class LocationStatus(StrEnum):
    """Per-store replica status (Glance's image_locations.status plus replication states)."""

    PENDING = "pending"
    UPLOADING = "uploading"
    ACTIVE = "active"
    FAILED = "failed"
    DELETED = "deleted"


@dataclass
class Location:
    """One copy of the image's bytes in one store.

    A copy being made (``pending``/``uploading``) or that failed has no url yet; its metadata names the copy
    request (``batch``), whether the request must succeed everywhere (``must_succeed``) and the last error.
    """

    store: str
    url: str
    status: LocationStatus = LocationStatus.ACTIVE
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def batch(self) -> str | None:
        """The copy request this location belongs to, if it was made by one."""
        return self.metadata.get(BATCH_KEY)

    @property
    def in_progress(self) -> bool:
        """A copy queued or being written."""
        return self.status in (LocationStatus.PENDING, LocationStatus.UPLOADING)
