"""The errors of every store operation, whichever the backend.

    StoreError                    a store operation failed
    ├── StoreNotFoundError        nothing is stored at the location (Glance: NotFound)
    ├── StoreUnavailableError     connection refused, timeout, 5xx: the operation may be retried
    ├── StoreSizeMismatchError    the chunks did not carry the announced number of bytes (nothing is left stored)
    ├── StoreIntegrityError       the backend holds other bytes than were sent (an ETag differs; nothing is left)
    ├── StoreRangeError           the requested byte range lies outside the object
    ├── StoreInUseError           others still use what is to be deleted (RBD clones; Glance's InUseByStore, 409)
    └── StoreConfigError          the configuration is unusable (credentials, bad URL, a location of another store)

Each driver maps its SDK's exceptions onto this tree in one table (by status or error code, never by message);
only ``StoreUnavailableError`` is retryable.
"""

from __future__ import annotations


class StoreError(Exception):
    """A store operation failed."""


class StoreNotFoundError(StoreError):
    """Nothing is stored at the location (Glance: NotFound)."""


class StoreUnavailableError(StoreError):
    """The backend could not be reached or answered with a server error; the operation may be retried."""


class StoreSizeMismatchError(StoreError):
    """The stream carried a different number of bytes than announced (nothing is left stored)."""


class StoreIntegrityError(StoreError):
    """The backend reports holding other bytes than were sent (an ETag differs); nothing is left stored."""


class StoreRangeError(StoreError):
    """The requested byte range lies outside the object."""


class StoreInUseError(StoreError):
    """The backend refuses to delete what others still use (RBD clones of the image; Glance's InUseByStore, 409)."""


class StoreConfigError(StoreError):
    """The store's configuration is unusable (missing credentials, bad URL)."""


# HTTP statuses, besides 5xx, that say "try again later" (timeouts, rate limits; 498/499: Swift's rate limiter).
_RETRYABLE_STATUS = frozenset({408, 425, 429, 498, 499})


def error_for_status(status: int, detail: str) -> StoreError:
    """The store error for an HTTP error status (Swift's, or S3's when its error code says nothing more)."""
    if status == 404:
        return StoreNotFoundError(detail)
    if status == 416:
        return StoreRangeError(detail)
    if status in (401, 403):
        return StoreConfigError(f"{detail} (check the store's credentials)")
    if status >= 500 or status in _RETRYABLE_STATUS:
        return StoreUnavailableError(detail)
    return StoreError(detail)
