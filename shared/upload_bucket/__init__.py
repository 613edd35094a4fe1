"""The upload bucket: where every image's bytes land first (presigned uploads, PUT /file, staging, web-download).

``UploadBucket`` is the interface the services type against, with its value types and errors; the S3
implementation is ``S3UploadBucket`` (``s3.py``) and ``memory.py`` holds the in-memory one of the unit tests. Keys
are one upload session's (``images/<image id>/<session id>``, ``shared/resources.py``); every write refuses an
existing key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from shared.stores.errors import StoreNotFoundError, StoreRangeError
from shared.stores.s3_objects import UploadedPart

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = [
    "ObjectMissingError",
    "ObjectRead",
    "PresignedRequest",
    "RangeNotSatisfiableError",
    "UploadBucket",
    "UploadedPart",
]


@dataclass(frozen=True)
class PresignedRequest:
    """A URL the client sends one HTTP request to, with the headers it must send (they are signed)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectRead:
    """An open read of (part of) an object."""

    chunks: Iterator[bytes]
    length: int
    total_size: int
    # "bytes a-b/total" for a ranged read, else None.
    content_range: str | None


class RangeNotSatisfiableError(StoreRangeError):
    """The requested byte range lies outside the object."""


class ObjectMissingError(StoreNotFoundError):
    """The object does not exist."""


class UploadBucket(Protocol):
    """Objects of upload sessions: presigned writes, multipart sessions, streamed writes and reads, state tags."""

    def location_url(self, key: str) -> str:
        """The location recorded on an image for ``key`` (no credentials, ever)."""
        ...

    def presign_put(self, key: str, size: int, ttl_seconds: int) -> PresignedRequest:
        """A single PUT of exactly ``size`` bytes to ``key``, refused if ``key`` already exists."""
        ...

    def create_multipart(self, key: str) -> str:
        """Open a multipart upload; returns its upload id."""
        ...

    def presign_part(self, key: str, upload_id: str, number: int, size: int, ttl_seconds: int) -> PresignedRequest:
        """A PUT of part ``number``, exactly ``size`` bytes."""
        ...

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        """Every part uploaded so far, in order."""
        ...

    def complete_multipart(self, key: str, upload_id: str, parts: Iterable[UploadedPart]) -> None:
        """Assemble the parts into the object (refused if the object already exists)."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an open multipart upload and its parts (absent uploads are fine)."""
        ...

    def upload_chunks(self, key: str, chunks: Iterable[bytes], part_size: int) -> int:
        """Write a stream of unknown length to ``key`` with constant memory; returns the bytes written. On any
        error nothing is left behind."""
        ...

    def read(self, key: str, byte_range: str | None = None) -> ObjectRead:
        """Open ``key`` for streaming, optionally one HTTP byte range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``).

        Raises:
            ObjectMissingError: no such object.
            RangeNotSatisfiableError: the range lies outside the object.
        """
        ...

    def presign_get(self, key: str, ttl_seconds: int) -> str:
        """A short-lived GET URL for downloads that bypass the API."""
        ...

    def mark(self, key: str, state: str) -> None:
        """Set the object's state tag (the bucket's lifecycle expires ``pending`` objects)."""
        ...

    def delete(self, key: str) -> None:
        """Delete an object (absent objects are fine)."""
        ...
