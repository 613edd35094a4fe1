"""Image statuses and the transition table: the only source of truth for status changes."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ImageStatus(StrEnum):
    """Glance's image statuses (``killed`` is kept for schema parity; nothing sets it)."""

    QUEUED = "queued"
    SAVING = "saving"
    UPLOADING = "uploading"
    IMPORTING = "importing"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    PENDING_DELETE = "pending_delete"
    DELETED = "deleted"
    KILLED = "killed"


S = ImageStatus

# From glance/domain Image.valid_state_targets.
VALID_TRANSITIONS: Mapping[ImageStatus, frozenset[ImageStatus]] = {
    S.QUEUED: frozenset({S.SAVING, S.UPLOADING, S.IMPORTING, S.ACTIVE, S.DELETED}),
    S.SAVING: frozenset({S.ACTIVE, S.KILLED, S.DELETED, S.QUEUED}),
    S.UPLOADING: frozenset({S.IMPORTING, S.QUEUED, S.DELETED}),
    S.IMPORTING: frozenset({S.ACTIVE, S.DELETED, S.QUEUED}),
    S.ACTIVE: frozenset({S.PENDING_DELETE, S.DELETED, S.DEACTIVATED}),
    S.KILLED: frozenset({S.DELETED}),
    S.PENDING_DELETE: frozenset({S.DELETED, S.ACTIVE}),
    S.DELETED: frozenset(),
    S.DEACTIVATED: frozenset({S.ACTIVE, S.DELETED}),
}

# Leaving these for a data-bearing status needs both formats set (Glance raises ValueError -> 400).
NEEDS_FORMATS_FROM = frozenset({S.QUEUED, S.UPLOADING})
NEEDS_FORMATS_TO = frozenset({S.SAVING, S.ACTIVE, S.IMPORTING})
FORMATS_MUTABLE_IN = frozenset({S.QUEUED, S.IMPORTING})

# Bytes are moving in these statuses: each has an owner and a deadline (the open upload session's), and the sweeper
# returns an image whose deadline passed to queued with the reason (docs/uploads.md).
IN_FLIGHT = frozenset({S.SAVING, S.UPLOADING, S.IMPORTING})
