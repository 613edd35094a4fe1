"""An in-memory upload bucket for fast unit tests of the upload lifecycle (the S3 one is tested on moto and RGW).

It keeps S3's rules that the services rely on: a write to an existing key is refused, a presigned PUT carries
exactly the declared size, multipart parts are assembled in order, objects are tagged ``pending`` until marked.
``send`` plays the client's side of a presigned request.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from shared.resources import PENDING_STATE
from shared.upload_bucket import (
    ObjectMissingError,
    ObjectRead,
    PresignedRequest,
    RangeNotSatisfiableError,
    UploadedPart,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class KeyExistsError(Exception):
    """A write to a key that holds an object (S3's If-None-Match: * answers 412)."""


@dataclass
class StoredObject:
    """One object and its state tag."""

    data: bytes
    state: str = PENDING_STATE


@dataclass
class _Multipart:
    key: str
    parts: dict[int, bytes] = field(default_factory=dict)


class MemoryUploadBucket:
    """Objects in a dict, keyed as the S3 bucket keys them."""

    def __init__(self, name: str = "memory-bucket") -> None:
        self.name = name
        self.objects: dict[str, StoredObject] = {}
        self._uploads: dict[str, _Multipart] = {}
        self._lock = threading.Lock()

    def location_url(self, key: str) -> str:
        """``s3://<name>/<key>``, as the S3 bucket records it."""
        return f"s3://{self.name}/{key}"

    # -- presigned requests and the client's side of them -------------------------------------------

    def presign_put(self, key: str, size: int, ttl_seconds: int) -> PresignedRequest:
        """A PUT of exactly ``size`` bytes to ``key``."""
        return PresignedRequest("PUT", f"memory://{self.name}/{key}?size={size}", {"Content-Length": str(size)})

    def presign_part(self, key: str, upload_id: str, number: int, size: int, ttl_seconds: int) -> PresignedRequest:
        """A PUT of part ``number`` of ``upload_id``, exactly ``size`` bytes."""
        url = f"memory://{self.name}/{key}?size={size}&upload_id={upload_id}&part={number}"
        return PresignedRequest("PUT", url, {"Content-Length": str(size)})

    def send(self, request: PresignedRequest, data: bytes) -> None:
        """What a client's request to a presigned URL does (ValueError where S3 answers 400, KeyExistsError 412)."""
        url = urlsplit(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        key = url.path.lstrip("/")
        if len(data) != int(query["size"]):
            raise ValueError("the body does not have the signed Content-Length")
        if "upload_id" not in query:
            self._put(key, data)
            return
        with self._lock:
            upload = self._uploads.get(query["upload_id"])
            if upload is None or upload.key != key:
                raise ValueError("no such upload")
            upload.parts[int(query["part"])] = data

    # -- multipart ----------------------------------------------------------------------------------

    def create_multipart(self, key: str) -> str:
        """Open a multipart upload."""
        upload_id = uuid.uuid4().hex
        with self._lock:
            self._uploads[upload_id] = _Multipart(key)
        return upload_id

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        """The parts received so far, in order."""
        with self._lock:
            parts = dict(self._uploads[upload_id].parts)
        return [UploadedPart(n, len(d), f'"{n}-{len(d)}"') for n, d in sorted(parts.items())]

    def complete_multipart(self, key: str, upload_id: str, parts: Iterable[UploadedPart]) -> None:
        """Assemble ``parts`` (refused if the object exists)."""
        with self._lock:
            upload = self._uploads.pop(upload_id)
        self._put(key, b"".join(upload.parts[p.number] for p in parts))

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Forget an open upload (absent is fine)."""
        with self._lock:
            self._uploads.pop(upload_id, None)

    @property
    def open_uploads(self) -> int:
        """Multipart uploads neither completed nor aborted."""
        return len(self._uploads)

    # -- streams ------------------------------------------------------------------------------------

    def upload_chunks(self, key: str, chunks: Iterable[bytes], part_size: int) -> int:
        """Write the whole stream, or nothing if it fails."""
        data = b"".join(chunks)
        self._put(key, data)
        return len(data)

    def read(self, key: str, byte_range: str | None = None) -> ObjectRead:
        """The object's bytes, or one range of them."""
        with self._lock:
            stored = self.objects.get(key)
        if stored is None:
            raise ObjectMissingError(key)
        total = len(stored.data)
        if byte_range is None:
            return ObjectRead(iter([stored.data]), total, total, None)
        start, end = _span(byte_range, total)
        part = stored.data[start : end + 1]
        return ObjectRead(iter([part]), len(part), total, f"bytes {start}-{end}/{total}")

    def presign_get(self, key: str, ttl_seconds: int) -> str:
        """A GET URL of ``key``."""
        return f"memory://{self.name}/{key}?get"

    def mark(self, key: str, state: str) -> None:
        """Tag the object."""
        with self._lock:
            self.objects[key].state = state

    def delete(self, key: str) -> None:
        """Forget the object (absent is fine)."""
        with self._lock:
            self.objects.pop(key, None)

    def _put(self, key: str, data: bytes) -> None:
        with self._lock:
            if key in self.objects:
                raise KeyExistsError(key)
            self.objects[key] = StoredObject(data)


def _span(byte_range: str, total: int) -> tuple[int, int]:
    match = _RANGE.match(byte_range)
    if match is None:
        raise RangeNotSatisfiableError(byte_range)
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = min(int(last or 0), total)
        if suffix == 0:
            raise RangeNotSatisfiableError(byte_range)
        return total - suffix, total - 1
    start = int(first)
    if start >= total:
        raise RangeNotSatisfiableError(byte_range)
    return start, min(int(last), total - 1) if last else total - 1
