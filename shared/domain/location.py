"""Where an image's bytes are: one location per store, and the copies store_sync makes between stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# Location metadata keys of copies made by store_sync.
BATCH_KEY = "batch"
MUST_SUCCEED_KEY = "must_succeed"
ERROR_KEY = "error"
# A copy being written has an owner (the store_sync worker, or a job) and a deadline (ISO UTC), renewed as it writes.
HOLDER_KEY = "holder"
DEADLINE_KEY = "deadline"
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
    def deadline(self) -> datetime | None:
        """When a copy being written is abandoned unless its writer renews it (None: no writer holds it)."""
        raw = self.metadata.get(DEADLINE_KEY)
        return datetime.fromisoformat(raw) if raw and self.in_progress else None

    def hold(self, holder: str, until: datetime) -> None:
        """The copy is being written by ``holder``, who renews this until it lands."""
        self.metadata[HOLDER_KEY] = holder
        self.metadata[DEADLINE_KEY] = until.isoformat()

    def release(self) -> None:
        """No one writes the copy any more (it landed or failed)."""
        self.metadata.pop(HOLDER_KEY, None)
        self.metadata.pop(DEADLINE_KEY, None)

    @property
    def in_progress(self) -> bool:
        """A copy queued or being written."""
        return self.status in (LocationStatus.PENDING, LocationStatus.UPLOADING)
