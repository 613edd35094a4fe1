"""The one S3 adapter: the objects of one bucket through boto3, for the image bucket and the S3 and Ceph stores.

``S3Objects`` is the only place that builds an S3 client (lazily, from ``S3ClientOptions``, or takes one given),
streams request and response bodies, runs multipart uploads and maps botocore's exceptions onto the store error
tree (through ``shared.stores.s3_errors``). ``S3UploadBucket`` (presigned uploads, sessions,
state tags) and ``S3Store`` (the store driver) are both written on it.

Streaming writes: a ``Window`` body is read as botocore sends it. botocore signs a payload over plain HTTP by
hashing the whole body first, which would mean reading (and holding) all of it before sending; a streaming
client therefore sends ``UNSIGNED-PAYLOAD`` and computes no flexible checksum, and a PUT whose body was started
is never resent (the body's own failure is raised as it is). Multipart uploads keep ``in_flight`` parts uploading
while the next one is read (0: each part is sent by the calling thread); checked parts go with their Content-MD5
and their ETag must equal it, and the completed object's ETag must be the md5 of the part md5s with ``-<parts>``.
Any failure aborts the upload.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.stores.errors import StoreIntegrityError
from shared.stores.s3_errors import mapped, s3_error
from shared.stores.sized_source import Window

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

_OCTETS = "application/octet-stream"


@dataclass(frozen=True)
class S3ClientOptions:
    """How the S3 client is built: endpoint, addressing and, for streaming writers, botocore's body handling."""

    region: str
    endpoint_url: str | None = None
    # Path-style addressing (emulators, Ceph RGW without wildcard DNS).
    path_style: bool = False
    # A streaming writer's client (the store drivers): UNSIGNED-PAYLOAD, no flexible checksums, bounded retries.
    streaming: bool = False
    max_pool_connections: int = 10

    def botocore_config(self) -> dict[str, Any]:
        """botocore ``Config`` arguments."""
        s3: dict[str, Any] = {"addressing_style": "path" if self.path_style else "virtual"}
        config: dict[str, Any] = {"signature_version": "s3v4", "s3": s3, "retries": {"mode": "standard"}}
        if self.streaming:
            s3["payload_signing_enabled"] = False
            config.update(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"mode": "standard", "max_attempts": 4},
                max_pool_connections=self.max_pool_connections,
                connect_timeout=10,
                read_timeout=120,
            )
        return config


@dataclass(frozen=True)
class UploadedPart:
    """A part S3 holds for an open multipart upload (``etag`` as S3 gives it, quotes included)."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class S3Read:
    """An open GET: ``length`` bytes of an object of ``total_size`` bytes (None: S3 sent no Content-Range)."""

    chunks: Iterator[bytes]
    length: int
    total_size: int | None
    content_range: str | None
    close: Callable[[], None] = field(repr=False)


def _etag(response: Mapping[str, Any]) -> str:
    return str(response.get("ETag") or "").strip('"')


class S3Objects:
    """The objects of one bucket; the client is built on first use (or given), and shared by every thread."""

    def __init__(
        self,
        bucket: str,
        options: S3ClientOptions,
        *,
        client: S3Client | None = None,
        credentials: Callable[[], tuple[str | None, str | None]] | None = None,
        label: str | None = None,
    ) -> None:
        """Args:
        bucket: the bucket.
        options: how to build the client when none is given.
        client: a client to use instead (the caller's: ``close`` leaves it open).
        credentials: a reader of (access key id, secret key), called when the client is built; with it the client
            gets a session of its own (no process-wide credential cache), without it boto3's default session.
        label: how error messages name these objects (default: the bucket).
        """
        self.bucket = bucket
        self.options = options
        self.label = label or f"bucket {bucket}"
        self._credentials = credentials
        self._client = client
        self._owns_client = client is None
        self._hooked = False
        self._lock = threading.Lock()

    @property
    def client(self) -> S3Client:
        """The S3 client, built on first use."""
        client = self._client
        if client is None or not self._hooked:
            with self._lock:
                if self._client is None:
                    self._client = self._build()
                if not self._hooked:
                    self._client.meta.events.register_first(
                        "needs-retry.s3.PutObject", _no_resend_of_a_stream, unique_id="sglance-no-resend-of-a-stream"
                    )
                    self._hooked = True
                client = self._client
        return client

    def _build(self) -> S3Client:
        import boto3
        from botocore.config import Config

        config = Config(**self.options.botocore_config())
        client: S3Client
        if self._credentials is None:
            client = boto3.client(
                "s3", region_name=self.options.region, endpoint_url=self.options.endpoint_url, config=config
            )
            return client
        key, secret = self._credentials()
        session = boto3.session.Session(
            aws_access_key_id=key, aws_secret_access_key=secret, region_name=self.options.region
        )
        client = session.client("s3", endpoint_url=self.options.endpoint_url, config=config)
        return client

    def close(self) -> None:
        """Close the client's connections (a client passed in belongs to the caller)."""
        with self._lock:
            if self._client is not None and self._owns_client:
                self._client.close()
                self._client = None
                self._hooked = False

    def _what(self, operation: str, key: str) -> str:
        return f"{self.label}: {operation} {key}"

    # -- single objects -------------------------------------------------------------------------

    def put_stream(self, key: str, body: Window, **extra: Any) -> str:
        """One PUT of ``len(body)`` bytes read from ``body`` as they are sent; returns the ETag (no quotes)."""
        try:
            with mapped(self._what("PUT", key)):
                response = self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentLength=len(body), ContentType=_OCTETS, **extra
                )
        except Exception:
            if body.failure is not None:
                raise body.failure from None
            raise
        return _etag(response)

    def put_bytes(self, key: str, data: bytes, **extra: Any) -> str:
        """One PUT of ``data``; returns the ETag (no quotes)."""
        with mapped(self._what("PUT", key)):
            return _etag(self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=_OCTETS, **extra))

    def head(self, key: str) -> tuple[int, str]:
        """(size, ETag without quotes) of ``key``."""
        with mapped(self._what("HEAD", key)):
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        return int(response["ContentLength"]), _etag(response)

    def get(self, key: str, byte_range: str | None, chunk_size: int) -> S3Read:
        """Open ``key`` (one HTTP ``Range`` when given) for streaming in ``chunk_size`` reads."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range:
            kwargs["Range"] = byte_range
        with mapped(self._what("GET", key)):
            response = self.client.get_object(**kwargs)
        body = response["Body"]
        content_range = response.get("ContentRange")
        total = int(str(content_range).rsplit("/", 1)[1]) if content_range else None
        chunks = self._stream(body, chunk_size, self._what("reading", key))
        return S3Read(chunks, int(response["ContentLength"]), total, content_range, body.close)

    @staticmethod
    def _stream(body: Any, chunk_size: int, what: str) -> Iterator[bytes]:
        try:
            with mapped(what):
                while chunk := body.read(chunk_size):
                    yield chunk
        finally:
            body.close()

    def delete(self, key: str) -> None:
        """Delete ``key`` (S3 deletes an absent key without complaint)."""
        with mapped(self._what("DELETE", key)):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def delete_quietly(self, key: str) -> None:
        """Delete ``key``, ignoring any failure (cleanup after another error, which is what the caller must see)."""
        with contextlib.suppress(Exception):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def tag(self, key: str, tags: Mapping[str, str]) -> None:
        """Replace the object's tags."""
        with mapped(self._what("tagging", key)):
            self.client.put_object_tagging(
                Bucket=self.bucket, Key=key, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
            )

    def presign(self, operation: str, params: Mapping[str, Any], ttl_seconds: int) -> str:
        """A URL for one ``operation`` (an S3 client method name) with ``params``, valid ``ttl_seconds``."""
        with mapped(self._what(f"presigning {operation}", str(params.get("Key", "")))):
            url: str = self.client.generate_presigned_url(
                operation, Params={"Bucket": self.bucket, **params}, ExpiresIn=ttl_seconds
            )
        return url

    # -- multipart uploads ----------------------------------------------------------------------

    def create_multipart(self, key: str, **extra: Any) -> str:
        """Open a multipart upload; returns its upload id."""
        with mapped(self._what("creating a multipart upload of", key)):
            response = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=_OCTETS, **extra)
        upload_id: str = response["UploadId"]
        return upload_id

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes, *, checked: bool) -> UploadedPart:
        """Send part ``number``; ``checked``: with its Content-MD5, and its ETag must be that md5."""
        extra: dict[str, Any] = {}
        md5 = ""
        if checked:
            digest = hashlib.md5(data, usedforsecurity=False).digest()
            extra["ContentMD5"] = base64.b64encode(digest).decode()
            md5 = digest.hex()
        with mapped(self._what(f"part {number} of", key)):
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentLength=len(data),
                **extra,
            )
        etag = str(response.get("ETag", ""))
        if checked and etag.strip('"') != md5:
            raise StoreIntegrityError(f"{self._what('part', key)} {number}: ETag {etag!r}, sent md5 {md5}")
        return UploadedPart(number, len(data), etag)

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        """Every part uploaded so far, in order."""
        parts: list[UploadedPart] = []
        with mapped(self._what("listing the parts of", key)):
            for page in self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            ):
                parts.extend(UploadedPart(p["PartNumber"], p["Size"], p["ETag"]) for p in page.get("Parts", []))
        return parts

    def complete_multipart(self, key: str, upload_id: str, parts: Iterable[UploadedPart], **extra: Any) -> str:
        """Assemble the parts into the object; returns the ETag the answer names (empty on Ceph RGW 16)."""
        listed: list[CompletedPartTypeDef] = [
            {"PartNumber": p.number, "ETag": p.etag if p.etag.startswith('"') else f'"{p.etag}"'} for p in parts
        ]
        with mapped(self._what("completing the multipart upload of", key)):
            response = self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}, **extra
            )
        return _etag(response)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an open multipart upload and its parts (StoreNotFoundError if there is none)."""
        with mapped(self._what("aborting the multipart upload of", key)):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def write_parts(
        self,
        key: str,
        parts: Iterable[bytes],
        *,
        in_flight: int,
        checked: bool,
        create: Mapping[str, Any] | None = None,
        complete: Mapping[str, Any] | None = None,
    ) -> list[UploadedPart]:
        """One multipart upload of ``parts`` (each, bar the last, at least 5 MiB), aborted on any failure.

        ``in_flight`` parts upload in threads while the next one is read (memory: ``in_flight`` + 1 parts); 0 sends
        each part from the calling thread. ``checked``: every part's and the object's ETag are verified (a wrong
        object is deleted). ``create`` and ``complete`` are extra arguments of those two requests.
        """
        upload_id = self.create_multipart(key, **(create or {}))
        done: list[UploadedPart] = []
        pending: deque[Future[UploadedPart]] = deque()
        pool = ThreadPoolExecutor(in_flight, thread_name_prefix=f"s3-{self.bucket}") if in_flight else None
        try:
            for number, data in enumerate(parts, 1):
                if pool is None:
                    done.append(self.upload_part(key, upload_id, number, data, checked=checked))
                    continue
                while len(pending) >= in_flight:
                    done.append(pending.popleft().result())
                pending.append(pool.submit(self.upload_part, key, upload_id, number, data, checked=checked))
                del data
            done.extend(future.result() for future in pending)
            pending.clear()
            etag = self.complete_multipart(key, upload_id, done, **(complete or {}))
        except BaseException:
            if pool is not None:
                # parts still uploading must land before the abort, or they would outlive it
                pool.shutdown(wait=True, cancel_futures=True)
            # the original failure is what the caller must see; a bucket lifecycle rule sweeps what an abort missed
            with contextlib.suppress(Exception):
                self.abort_multipart(key, upload_id)
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        if checked:
            self._check_completed(key, etag, done)
        return done

    def _check_completed(self, key: str, etag: str, parts: list[UploadedPart]) -> None:
        md5s = b"".join(bytes.fromhex(part.etag.strip('"')) for part in parts)
        want = f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(parts)}"
        # Ceph RGW 16 answers CompleteMultipartUpload with an empty ETag: HEAD has the object's
        got = etag or self.head(key)[1]
        if got != want:
            self.delete_quietly(key)
            raise StoreIntegrityError(f"{self._what('completing', key)}: ETag {got!r}, expected {want}")


def _no_resend_of_a_stream(request_dict: dict[str, Any], caught_exception: BaseException | None, **kwargs: Any) -> None:
    """A streaming PUT cannot be resent once its body was read: fail now, without botocore's retry sleep.

    The body's own failure (a size mismatch, the caller's chunk iterator) is raised as it is; a transport
    failure as the store error it maps to.
    """
    body = request_dict.get("body")
    if not isinstance(body, Window) or not body.started:
        return
    if body.failure is not None:
        raise body.failure
    if caught_exception is not None:
        raise s3_error(caught_exception, f"PUT {request_dict.get('url_path', '')}") or caught_exception
