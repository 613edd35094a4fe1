"""The upload bucket on S3 (``S3UploadBucket``): presigned direct uploads, multipart sessions, streaming reads and
object state tags.

Every object key is one upload session's (``images/<image id>/<session id>``), and every write is conditional
on the key not existing (``If-None-Match: *``), so no presigned URL can overwrite bytes that were already
written, an active image's included. Objects carry a ``sglance-state`` tag: ``pending`` from the upload until
finalisation, ``active`` after; the bucket's lifecycle expires ``pending`` objects (abandoned uploads).

The S3 calls themselves (the client, streaming, multipart, error mapping) are ``shared.stores.s3_objects``', the
adapter the S3 store driver uses too; failures are the store errors (``shared.stores.errors``).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from shared.resources import PENDING_STATE as PENDING
from shared.resources import STATE_TAG_KEY as STATE_TAG
from shared.stores.errors import StoreNotFoundError, StoreRangeError
from shared.stores.s3_objects import S3ClientOptions, S3Objects, UploadedPart
from shared.streams.blocks import rechunk
from shared.upload_bucket import ObjectMissingError, ObjectRead, PresignedRequest, RangeNotSatisfiableError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["PENDING", "READ_CHUNK", "STATE_TAG", "S3UploadBucket"]

READ_CHUNK = 8 * 1024 * 1024
_PENDING_TAGGING = f"{STATE_TAG}={PENDING}"


class S3UploadBucket:
    """S3 operations on the image bucket; the boto3 client is created on first use (or given)."""

    def __init__(
        self, bucket: str, region: str, endpoint_url: str | None = None, client: S3Client | None = None
    ) -> None:
        self.bucket = bucket
        # path-style addressing off AWS, where emulators need it
        options = S3ClientOptions(region, endpoint_url, path_style=endpoint_url is not None)
        self.objects = S3Objects(bucket, options, client=client, label=f"image bucket {bucket}")

    @property
    def client(self) -> S3Client:
        """The S3 client (SigV4; path-style addressing off AWS)."""
        return self.objects.client

    def location_url(self, key: str) -> str:
        """The location recorded on an image (no credentials, ever)."""
        return f"s3://{self.bucket}/{key}"

    # -- presigned direct uploads ---------------------------------------------------------------

    def presign_put(self, key: str, size: int, ttl_seconds: int) -> PresignedRequest:
        """A single PUT of exactly ``size`` bytes to ``key``, refused if ``key`` already exists."""
        params = {"Key": key, "ContentLength": size, "IfNoneMatch": "*", "Tagging": _PENDING_TAGGING}
        url = self.objects.presign("put_object", params, ttl_seconds)
        headers = {"Content-Length": str(size), "If-None-Match": "*", "x-amz-tagging": _PENDING_TAGGING}
        return PresignedRequest("PUT", url, headers)

    def create_multipart(self, key: str) -> str:
        """Open a multipart upload; returns its S3 upload id."""
        return self.objects.create_multipart(key, Tagging=_PENDING_TAGGING)

    def presign_part(self, key: str, upload_id: str, number: int, size: int, ttl_seconds: int) -> PresignedRequest:
        """A PUT of part ``number``, exactly ``size`` bytes."""
        params = {"Key": key, "UploadId": upload_id, "PartNumber": number, "ContentLength": size}
        url = self.objects.presign("upload_part", params, ttl_seconds)
        return PresignedRequest("PUT", url, {"Content-Length": str(size)})

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        """Every part uploaded so far, in order."""
        return self.objects.list_parts(key, upload_id)

    def complete_multipart(self, key: str, upload_id: str, parts: Iterable[UploadedPart]) -> None:
        """Assemble the parts into the object (refused if the object already exists)."""
        self.objects.complete_multipart(key, upload_id, parts, IfNoneMatch="*")

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an open multipart upload and its parts (absent uploads are fine)."""
        with contextlib.suppress(StoreNotFoundError):
            self.objects.abort_multipart(key, upload_id)

    # -- bytes through the service --------------------------------------------------------------

    def upload_chunks(self, key: str, chunks: Iterable[bytes], part_size: int) -> int:
        """Write a stream of unknown length to ``key`` with constant memory; returns the bytes written.

        Small streams become one PUT, written only once the whole stream was read; larger ones a multipart
        upload of ``part_size`` parts, sent as they fill. On any error the multipart upload is aborted, so
        nothing is left behind.
        """
        blocks = rechunk(chunks, part_size)
        first = next(blocks, b"")
        if len(first) < part_size:
            self.objects.put_bytes(key, first, IfNoneMatch="*", Tagging=_PENDING_TAGGING)
            return len(first)
        parts = self.objects.write_parts(
            key,
            itertools.chain([first], blocks),
            in_flight=0,
            checked=False,
            create={"Tagging": _PENDING_TAGGING},
            complete={"IfNoneMatch": "*"},
        )
        return sum(part.size for part in parts)

    def read(self, key: str, byte_range: str | None = None, chunk_size: int = READ_CHUNK) -> ObjectRead:
        """Open ``key`` for streaming, optionally one HTTP byte range (``bytes=a-b`` or ``bytes=-n``).

        Raises:
            ObjectMissingError: no such object.
            RangeNotSatisfiableError: the range lies outside the object.
        """
        try:
            read = self.objects.get(key, byte_range, chunk_size)
        except StoreRangeError as exc:
            raise RangeNotSatisfiableError(byte_range) from exc
        except StoreNotFoundError as exc:
            raise ObjectMissingError(key) from exc
        total = read.length if read.total_size is None else read.total_size
        return ObjectRead(read.chunks, read.length, total, read.content_range if byte_range else None)

    def presign_get(self, key: str, ttl_seconds: int) -> str:
        """A short-lived GET URL for downloads that bypass the API."""
        return self.objects.presign("get_object", {"Key": key}, ttl_seconds)

    def mark(self, key: str, state: str) -> None:
        """Set the object's state tag (lifecycle expires ``pending`` objects)."""
        self.objects.tag(key, {STATE_TAG: state})

    def delete(self, key: str) -> None:
        """Delete an object (absent objects are fine)."""
        self.objects.delete(key)
