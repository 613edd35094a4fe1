"""What the presigned upload API sends and what an upload returns, as frozen dataclasses (``docs/uploads.md``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

MiB = 1024 * 1024
# A presigned URL this close to its expiry is replaced before it is used.
URL_EXPIRY_MARGIN_S = 30.0

Method = Literal["single", "multipart"]


@dataclass(frozen=True)
class PresignedRequest:
    """One HTTP request to send exactly as given: method, URL and every header (they are signed)."""

    method: str
    url: str
    headers: Mapping[str, str]

    @property
    def expires_at(self) -> float | None:
        """Epoch seconds after which S3 refuses the URL (SigV4 or SigV2 query), or None when unknown."""
        query = parse_qs(urlsplit(self.url).query)
        try:
            if "X-Amz-Date" in query and "X-Amz-Expires" in query:
                signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                return signed.timestamp() + int(query["X-Amz-Expires"][0])
            if "Expires" in query:
                return float(query["Expires"][0])
        except ValueError:
            return None
        return None

    def expiring(self, margin_s: float = URL_EXPIRY_MARGIN_S) -> bool:
        """Whether the URL expires within ``margin_s`` seconds."""
        expires = self.expires_at
        return expires is not None and time.time() + margin_s >= expires


@dataclass(frozen=True)
class PartRequest:
    """The presigned PUT of one part."""

    number: int
    size: int
    request: PresignedRequest


@dataclass(frozen=True)
class UploadedPart:
    """A part S3 already holds."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class UploadSession:
    """An open upload as ``POST``/``GET /v2/images/{id}/upload`` describe it."""

    upload_id: str
    image_id: str
    method: str
    size: int
    part_size: int | None
    parts_count: int
    expires_at: str
    image_status: str
    request: PresignedRequest | None = None
    parts: tuple[PartRequest, ...] = ()
    uploaded_parts: tuple[UploadedPart, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UploadSession:
        """Parse the API's JSON (either response)."""
        request = data.get("request")
        return cls(
            upload_id=str(data["upload_id"]),
            image_id=str(data["image_id"]),
            method=str(data["method"]),
            size=int(data["size"]),
            part_size=None if data.get("part_size") is None else int(data["part_size"]),
            parts_count=int(data["parts_count"]),
            expires_at=str(data["expires_at"]),
            image_status=str(data["image_status"]),
            request=presigned(request) if isinstance(request, dict) else None,
            parts=tuple(part_request(p) for p in data.get("parts") or ()),
            uploaded_parts=tuple(
                UploadedPart(int(p["part_number"]), int(p["size"]), str(p["etag"]))
                for p in data.get("uploaded_parts") or ()
            ),
        )

    def part_length(self, number: int) -> int:
        """Size of part ``number`` (1-based)."""
        if self.part_size is None:
            return self.size
        if number < self.parts_count:
            return self.part_size
        return self.size - self.part_size * (self.parts_count - 1)

    def part_offset(self, number: int) -> int:
        """Where part ``number`` starts in the file."""
        return 0 if self.part_size is None else (number - 1) * self.part_size

    @property
    def missing_parts(self) -> list[int]:
        """Parts S3 does not hold (or holds with the wrong size), computed from every uploaded part."""
        done = {p.number for p in self.uploaded_parts if p.size == self.part_length(p.number)}
        return [n for n in range(1, self.parts_count + 1) if n not in done]

    @property
    def expired(self) -> bool:
        """Whether the session outlived its time (the server replaces it on the next open)."""
        try:
            expires = datetime.fromisoformat(self.expires_at)
        except ValueError:
            return False
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return datetime.now(UTC) >= expires


def presigned(data: Mapping[str, Any]) -> PresignedRequest:
    """A ``{"method", "url", "headers"}`` object of the API."""
    headers = data.get("headers") or {}
    return PresignedRequest(str(data["method"]), str(data["url"]), {str(k): str(v) for k, v in headers.items()})


def part_request(data: Mapping[str, Any]) -> PartRequest:
    """One entry of ``parts`` in the API's answers."""
    return PartRequest(int(data["part_number"]), int(data["size"]), presigned(data))


@dataclass(frozen=True)
class FileDigest:
    """Size and digests of a local file."""

    size: int
    md5: str
    sha512: str
    seconds: float


@dataclass(frozen=True)
class UploadResult:
    """What one call of ``Uploader.upload`` did.

    ``checksum`` and ``os_hash_value`` are the local file's MD5 and SHA-512 (equal to the image's when ``wait``);
    ``seconds`` is the transfer time of this run (first byte to last byte), ``seconds_to_active`` the time from
    the last byte to the image being seen active (None without ``wait``).
    """

    size: int
    checksum: str
    os_hash_value: str
    seconds: float
    seconds_to_active: float | None
    image_id: str = ""
    method: str = ""
    status: str = ""
    parts_sent: tuple[int, ...] = ()
    bytes_sent: int = 0
    resumed: bool = False
    hash_seconds: float = 0.0

    @property
    def mib_per_s(self) -> float:
        """Throughput of this run's transfer."""
        return self.bytes_sent / MiB / self.seconds if self.seconds > 0 else 0.0
