"""The image bucket: presigned direct uploads, multipart sessions, streaming reads and object state tags.

Every object key is one upload session's (``images/<image id>/<session id>``), and every write is conditional
on the key not existing (``If-None-Match: *``), so no presigned URL can overwrite bytes that were already
written, an active image's included. Objects carry a ``sglance-state`` tag: ``pending`` from the upload until
finalisation, ``active`` after; the bucket's lifecycle expires ``pending`` objects (abandoned uploads).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from shared.resources import PENDING_STATE as PENDING
from shared.resources import STATE_TAG_KEY as STATE_TAG

READ_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class PresignedRequest:
    """A URL the client sends one HTTP request to, with the headers it must send (they are signed)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UploadedPart:
    """A part S3 holds for an open multipart upload."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class ObjectRead:
    """An open read of (part of) an object."""

    chunks: Iterator[bytes]
    length: int
    total_size: int
    # "bytes a-b/total" for a ranged read, else None.
    content_range: str | None


class RangeNotSatisfiableError(Exception):
    """The requested byte range lies outside the object."""


class ObjectMissingError(Exception):
    """The object does not exist."""


class ImageBucket:
    """S3 operations on the image bucket; the boto3 client is created on first use."""

    def __init__(self, bucket: str, region: str, endpoint_url: str | None = None, client: Any | None = None) -> None:
        self.bucket = bucket
        self._region = region
        self._endpoint_url = endpoint_url
        if client is not None:
            self.__dict__["client"] = client

    @cached_property
    def client(self) -> Any:
        """The S3 client (SigV4; path-style addressing off AWS, where emulators need it)."""
        import boto3
        from botocore.config import Config

        addressing = "path" if self._endpoint_url else "virtual"
        config = Config(signature_version="s3v4", s3={"addressing_style": addressing}, retries={"mode": "standard"})
        return boto3.client("s3", region_name=self._region, endpoint_url=self._endpoint_url, config=config)

    def location_url(self, key: str) -> str:
        """The location recorded on an image (no credentials, ever)."""
        return f"s3://{self.bucket}/{key}"

    # -- presigned direct uploads ---------------------------------------------------------------

    def presign_put(self, key: str, size: int, ttl_seconds: int) -> PresignedRequest:
        """A single PUT of exactly ``size`` bytes to ``key``, refused if ``key`` already exists."""
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentLength": size,
            "IfNoneMatch": "*",
            "Tagging": f"{STATE_TAG}={PENDING}",
        }
        url = self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=ttl_seconds)
        headers = {"Content-Length": str(size), "If-None-Match": "*", "x-amz-tagging": f"{STATE_TAG}={PENDING}"}
        return PresignedRequest("PUT", url, headers)

    def create_multipart(self, key: str) -> str:
        """Open a multipart upload; returns its S3 upload id."""
        response = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, Tagging=f"{STATE_TAG}={PENDING}", ContentType="application/octet-stream"
        )
        upload_id: str = response["UploadId"]
        return upload_id

    def presign_part(self, key: str, upload_id: str, number: int, size: int, ttl_seconds: int) -> PresignedRequest:
        """A PUT of part ``number``, exactly ``size`` bytes."""
        params = {"Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": number, "ContentLength": size}
        url = self.client.generate_presigned_url("upload_part", Params=params, ExpiresIn=ttl_seconds)
        return PresignedRequest("PUT", url, {"Content-Length": str(size)})

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        """Every part uploaded so far, in order."""
        parts: list[UploadedPart] = []
        paginator = self.client.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
            parts.extend(UploadedPart(p["PartNumber"], p["Size"], p["ETag"]) for p in page.get("Parts", []))
        return parts

    def complete_multipart(self, key: str, upload_id: str, parts: Iterable[UploadedPart]) -> None:
        """Assemble the parts into the object (refused if the object already exists)."""
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]},
            IfNoneMatch="*",
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an open multipart upload and its parts (absent uploads are fine)."""
        from botocore.exceptions import ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                raise

    # -- bytes through the service --------------------------------------------------------------

    def upload_chunks(self, key: str, chunks: Iterable[bytes], part_size: int) -> int:
        """Write a stream of unknown length to ``key`` with constant memory; returns the bytes written.

        Small streams become one PUT; larger ones a multipart upload of ``part_size`` parts. On any error the
        multipart upload is aborted, so nothing is left behind.
        """
        buffer = bytearray()
        total = 0
        upload_id: str | None = None
        parts: list[UploadedPart] = []
        try:
            for chunk in chunks:
                buffer += chunk
                total += len(chunk)
                while len(buffer) >= part_size:
                    if upload_id is None:
                        upload_id = self.create_multipart(key)
                    parts.append(self._put_part(key, upload_id, len(parts) + 1, bytes(buffer[:part_size])))
                    del buffer[:part_size]
            if upload_id is None:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=bytes(buffer),
                    IfNoneMatch="*",
                    Tagging=f"{STATE_TAG}={PENDING}",
                    ContentType="application/octet-stream",
                )
                return total
            if buffer:
                parts.append(self._put_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self.complete_multipart(key, upload_id, parts)
            return total
        except BaseException:
            if upload_id is not None:
                self.abort_multipart(key, upload_id)
            raise

    def _put_part(self, key: str, upload_id: str, number: int, data: bytes) -> UploadedPart:
        response = self.client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return UploadedPart(number, len(data), response["ETag"])

    def read(self, key: str, byte_range: str | None = None, chunk_size: int = READ_CHUNK) -> ObjectRead:
        """Open ``key`` for streaming, optionally one HTTP byte range (``bytes=a-b`` or ``bytes=-n``).

        Raises:
            ObjectMissingError: no such object.
            RangeNotSatisfiableError: the range lies outside the object.
        """
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range:
            kwargs["Range"] = byte_range
        try:
            response = self.client.get_object(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "InvalidRange":
                raise RangeNotSatisfiableError(byte_range) from exc
            if code in ("NoSuchKey", "404"):
                raise ObjectMissingError(key) from exc
            raise
        body = response["Body"]
        content_range = response.get("ContentRange")
        length = int(response["ContentLength"])
        total = int(content_range.rsplit("/", 1)[1]) if content_range else length
        return ObjectRead(_iter_body(body, chunk_size), length, total, content_range if byte_range else None)

    def presign_get(self, key: str, ttl_seconds: int) -> str:
        """A short-lived GET URL for downloads that bypass the API."""
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl_seconds
        )
        return url

    def mark(self, key: str, state: str) -> None:
        """Set the object's state tag (lifecycle expires ``pending`` objects)."""
        self.client.put_object_tagging(
            Bucket=self.bucket, Key=key, Tagging={"TagSet": [{"Key": STATE_TAG, "Value": state}]}
        )

    def delete(self, key: str) -> None:
        """Delete an object (absent objects are fine)."""
        self.client.delete_object(Bucket=self.bucket, Key=key)


def _iter_body(body: Any, chunk_size: int) -> Iterator[bytes]:
    try:
        while chunk := body.read(chunk_size):
            yield chunk
    finally:
        body.close()
