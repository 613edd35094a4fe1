"""The S3 store: images in a bucket of any S3 API (AWS S3 in another bucket or region, or S3-compatible services).

A copy the driver writes is the object ``<prefix><image id>``, located as ``s3://<bucket>/<key>``: no endpoint, no
credentials (those stay in the store's configuration, so rotating a key never rewrites a location). ``get``,
``get_size`` and ``delete`` accept any key of the bucket, since the primary store's objects have longer keys
(``images/<image id>/<session id>``).

Writes stream:

* Below ``large_object_size``: one PUT whose body is a file-like view of the chunk iterator with a known length.
  botocore signs a payload over plain HTTP by hashing the whole body first, which would mean reading (and holding)
  all of it before sending; the client therefore sends ``UNSIGNED-PAYLOAD`` (``payload_signing_enabled=False``)
  and computes no flexible checksum (``request_checksum_calculation="when_required"``), so bytes go out as they
  are read. Integrity comes from the ETag, which must equal the md5 of what was sent. A stream that turns out
  shorter or longer than announced is caught before its last byte leaves, so the server never completes the PUT.
* At or above it: a multipart upload of ``part_size`` parts, ``upload_threads`` in flight, so memory stays at
  about ``(upload_threads + 1) * part_size``. Each part goes with its Content-MD5 and its ETag must equal that md5;
  the completed object's ETag must be the md5 of the part md5s with ``-<parts>``. Any failure aborts the upload.

A size mismatch, a failing chunk iterator or an integrity failure leaves nothing: no object, no unfinished upload.
(Buckets with SSE-KMS or SSE-C encryption do not return md5 ETags; this driver is for buckets without them.)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from shared.stores.base import (
    AddResult,
    StoreConfigError,
    StoreDriver,
    StoreError,
    StoreIntegrityError,
    StoreNotFoundError,
    StoreRangeError,
    StoreRead,
    StoreSizeMismatchError,
    StoreUnavailableError,
)
from shared.stores.config import CephStoreConfig, MiB, S3StoreConfig
from shared.streams.digest import SizeCapExceededError, StreamDigest

if TYPE_CHECKING:
    from shared.stores.config import StoreConfig
    from shared.stores.registry import SecretReader

SCHEME = "s3://"
READ_CHUNK = 1 * MiB

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_REFUSED = {
    "AccessDenied",
    "403",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoSuchBucket",
    "InvalidBucketName",
    "AuthorizationHeaderMalformed",
    "PermanentRedirect",
}
_RETRYABLE = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling", "503", "500"}
_CORRUPT = {"BadDigest", "InvalidDigest", "IncompleteBody"}


def _client_error(exc: Any, what: str) -> StoreError:
    """The store error for an S3 error response (by code and status, never by message)."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _NOT_FOUND:
        return StoreNotFoundError(f"{what}: no such object")
    if code == "InvalidRange" or status == 416:
        return StoreRangeError(f"{what}: range not satisfiable")
    if code in _REFUSED:
        return StoreConfigError(f"{what}: refused ({code})")
    if code in _CORRUPT:
        return StoreIntegrityError(f"{what}: the server saw other bytes than announced ({code})")
    if code in _RETRYABLE or status >= 500:
        return StoreUnavailableError(f"{what}: {code or status}")
    return StoreError(f"{what}: {code or status}")


def _store_error(exc: BaseException, what: str) -> StoreError | None:
    """The store error for a botocore exception (None for anything else, which passes unchanged)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        IncompleteReadError,
        NoCredentialsError,
        PartialCredentialsError,
        UnseekableStreamError,
    )

    if isinstance(exc, ClientError):
        return _client_error(exc, what)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StoreConfigError(f"{what}: no usable credentials")
    if isinstance(exc, ConnectionError | HTTPClientError | IncompleteReadError | UnseekableStreamError):
        # (UnseekableStreamError: botocore wanted to resend a stream; the caller may add again)
        return StoreUnavailableError(f"{what}: {type(exc).__name__}")
    if isinstance(exc, BotoCoreError):
        return StoreError(f"{what}: {type(exc).__name__}")
    return None


@contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Turn botocore's exceptions into store errors; the caller's own (a failing chunk iterator) pass unchanged."""
    try:
        yield
    except Exception as exc:
        error = _store_error(exc, what)
        if error is None:
            raise
        raise error from exc


@dataclass(frozen=True)
class _Part:
    number: int
    etag: str
    md5: bytes


class _ChunkBody:
    """A file-like view of exactly ``size`` bytes of a chunk iterator, fed to ``digest`` as it is read.

    The last bytes are handed out only once the iterator is known to be exhausted, so a longer stream fails the
    PUT before the server has the whole announced body; a shorter one fails as soon as it ends.
    """

    def __init__(self, chunks: Iterable[bytes], size: int, digest: StreamDigest) -> None:
        self._chunks = iter(chunks)
        self._size = size
        self._left = size
        self._digest = digest
        self._view = memoryview(b"")
        self._checked = False
        # what read() raised: botocore wraps it (HTTPClientError) and would retry; the PUT re-raises this instead
        self.failure: BaseException | None = None
        self.started = False

    def _feed(self, chunk: bytes) -> None:
        try:
            self._digest.feed(chunk)
        except SizeCapExceededError:
            raise StoreSizeMismatchError(f"more than the announced {self._size} bytes") from None

    def _ensure_exhausted(self) -> None:
        if not self._checked:
            for chunk in self._chunks:
                if chunk:
                    self._feed(chunk)  # past the cap: raises
            self._checked = True

    def read(self, amt: int | None = -1) -> bytes:
        """Up to ``amt`` bytes (all that is left when negative or None); b"" at the end."""
        self.started = True
        try:
            return self._read(amt)
        except BaseException as exc:
            self.failure = exc
            raise

    def _read(self, amt: int | None) -> bytes:
        want = self._left if amt is None or amt < 0 else min(amt, self._left)
        if want == 0:
            self._ensure_exhausted()
            return b""
        while not self._view:
            chunk = next(self._chunks, None)
            if chunk is None:
                sent = self._size - self._left
                raise StoreSizeMismatchError(f"{sent} bytes sent, {self._size} announced")
            if chunk:
                self._feed(chunk)
                self._view = memoryview(chunk)
        out = bytes(self._view[:want])
        self._view = self._view[len(out) :]
        self._left -= len(out)
        if self._left == 0:
            self._ensure_exhausted()
        return out


class S3Store(StoreDriver):
    """Images as objects in one bucket of an S3 API."""

    type_name = "s3"
    config_type: ClassVar[type[S3StoreConfig | CephStoreConfig]] = S3StoreConfig

    def __init__(
        self,
        store_id: str,
        config: S3StoreConfig | CephStoreConfig,
        secrets: SecretReader | None = None,
        client: Any | None = None,
    ) -> None:
        super().__init__(store_id)
        self.config = config
        self.bucket = config.bucket
        self.prefix = config.prefix
        self._secrets = secrets
        self._client = client
        self._owns_client = client is None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, store_id: str, config: StoreConfig, secrets: SecretReader | None) -> S3Store:
        """The driver for ``config``; credentials are resolved when the client is first needed."""
        if not isinstance(config, cls.config_type):
            raise StoreConfigError(f"store {store_id}: a {cls.type_name} store needs a {cls.type_name} configuration")
        return cls(store_id, config, secrets)

    # -- the client -----------------------------------------------------------------------------

    def _credentials(self) -> tuple[str | None, str | None]:
        """(access key id, secret key): inline, from the secret, or (None, None) for boto3's default chain."""
        config = self.config
        if config.access_key_id or config.secret_access_key:
            if not (config.access_key_id and config.secret_access_key):
                raise StoreConfigError(f"store {self.store_id}: access_key_id and secret_access_key go together")
            return config.access_key_id, config.secret_access_key.get_secret_value()
        if config.secret_arn:
            if self._secrets is None:
                raise StoreConfigError(f"store {self.store_id}: secret_arn is set but no secret reader was given")
            from shared.secrets import SecretUnavailableError

            try:
                fields = self._secrets(config.secret_arn)
            except SecretUnavailableError as exc:
                raise StoreUnavailableError(f"store {self.store_id}: {exc}") from None
            missing = [name for name in ("access_key_id", "secret_access_key") if not fields.get(name)]
            if missing:
                raise StoreConfigError(f"store {self.store_id}: the secret has no {', '.join(missing)}")
            return fields["access_key_id"], fields["secret_access_key"]
        return None, None

    def _client_config(self) -> dict[str, Any]:
        """botocore ``Config`` arguments (subclasses adjust them for their service's quirks)."""
        return {
            "signature_version": "s3v4",
            "s3": {
                "addressing_style": "path" if self.config.path_style else "virtual",
                "payload_signing_enabled": False,
            },
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
            "retries": {"mode": "standard", "max_attempts": 4},
            "max_pool_connections": self.config.upload_threads + 8,
            "connect_timeout": 10,
            "read_timeout": 120,
        }

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use (in its own session: no process-wide credential cache)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    key, secret = self._credentials()
                    session = boto3.session.Session(
                        aws_access_key_id=key, aws_secret_access_key=secret, region_name=self.config.region
                    )
                    client = session.client(
                        "s3", endpoint_url=self.config.endpoint_url, config=Config(**self._client_config())
                    )
                    client.meta.events.register_first("needs-retry.s3.PutObject", self._no_resend_of_a_stream)
                    self._client = client
        return self._client

    def _no_resend_of_a_stream(
        self, request_dict: dict[str, Any], caught_exception: BaseException | None, **kwargs: Any
    ) -> None:
        """A streaming PUT cannot be resent once its body was read: fail now, without botocore's retry sleep.

        The body's own failure (a size mismatch, the caller's chunk iterator) is raised as it is; a transport
        failure as the store error it maps to.
        """
        body = request_dict.get("body")
        if not isinstance(body, _ChunkBody) or not body.started:
            return
        if body.failure is not None:
            raise body.failure
        if caught_exception is not None:
            raise _store_error(caught_exception, f"store {self.store_id}: PUT") or caught_exception

    def close(self) -> None:
        """Close the client's connections (a client passed in belongs to the caller)."""
        with self._lock:
            if self._client is not None and self._owns_client:
                self._client.close()
                self._client = None

    # -- locations ------------------------------------------------------------------------------

    def location_url(self, key: str) -> str:
        """The location of ``key`` in this store's bucket."""
        return f"{SCHEME}{self.bucket}/{key}"

    def _key_of(self, url: str) -> str | None:
        if not url.startswith(SCHEME):
            return None
        bucket, slash, key = url[len(SCHEME) :].partition("/")
        if bucket != self.bucket or not slash or not key:
            return None
        return key

    def _owned_key(self, url: str) -> str:
        key = self._key_of(url)
        if key is None:
            raise StoreConfigError(f"store {self.store_id}: {url!r} is not an object of bucket {self.bucket}")
        return key

    def owns(self, url: str) -> bool:
        """True for ``s3://<this bucket>/<any key>``."""
        return self._key_of(url) is not None

    def _key_for(self, image_id: str) -> str:
        if not image_id or "/" in image_id:
            raise StoreConfigError(f"store {self.store_id}: {image_id!r} cannot name an object")
        return f"{self.prefix}{image_id}"

    # -- add ------------------------------------------------------------------------------------

    def add(self, image_id: str, chunks: Iterable[bytes], size: int, hashing_algo: str) -> AddResult:
        """Stream the image to ``<prefix><image id>``: one PUT, or a multipart upload from ``large_object_size``."""
        key = self._key_for(image_id)
        if size < 0:
            raise StoreSizeMismatchError(f"a size of {size} bytes")
        with StreamDigest(hashing_algo, None, size) as digest:
            if size >= self.config.large_object_size:
                self._put_multipart(key, chunks, size, digest)
                result = digest.finish()
            else:
                etag = self._put_single(key, chunks, size, digest)
                result = digest.finish()
                if etag != result.checksum:
                    self._delete_quietly(key)
                    raise StoreIntegrityError(f"{self.location_url(key)}: ETag {etag!r}, sent md5 {result.checksum}")
        return AddResult(self.location_url(key), size, result.checksum, result.os_hash_value)

    def _put_single(self, key: str, chunks: Iterable[bytes], size: int, digest: StreamDigest) -> str:
        body = _ChunkBody(chunks, size, digest)
        try:
            with _mapped(f"store {self.store_id}: PUT {key}"):
                response = self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentLength=size, ContentType="application/octet-stream"
                )
        except Exception:
            if body.failure is not None:
                raise body.failure from None
            raise
        return str(response.get("ETag", "")).strip('"')

    def _put_multipart(self, key: str, chunks: Iterable[bytes], size: int, digest: StreamDigest) -> None:
        what = f"store {self.store_id}: multipart {key}"
        part_size = self.config.part_size
        with _mapped(what):
            upload_id: str = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType="application/octet-stream"
            )["UploadId"]
        pool = ThreadPoolExecutor(max_workers=self.config.upload_threads, thread_name_prefix=f"s3-{self.store_id}")
        in_flight: deque[Future[_Part]] = deque()
        parts: list[_Part] = []

        def send(data: bytes) -> None:
            while len(in_flight) >= self.config.upload_threads:
                parts.append(in_flight.popleft().result())
            in_flight.append(pool.submit(self._upload_part, key, upload_id, len(parts) + len(in_flight) + 1, data))

        try:
            buffer = bytearray()
            for chunk in chunks:
                if not chunk:
                    continue
                try:
                    digest.feed(chunk)
                except SizeCapExceededError:
                    raise StoreSizeMismatchError(f"more than the announced {size} bytes") from None
                buffer += chunk
                while len(buffer) >= part_size:
                    send(bytes(buffer[:part_size]))
                    del buffer[:part_size]
            if digest.size != size:
                raise StoreSizeMismatchError(f"{digest.size} bytes sent, {size} announced")
            if buffer:
                send(bytes(buffer))
            del buffer
            parts.extend(future.result() for future in in_flight)
            in_flight.clear()
            with _mapped(what):
                response = self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": f'"{p.etag}"'} for p in parts]},
                )
        except BaseException:
            # parts still uploading must land before the abort, or they would outlive it
            pool.shutdown(wait=True, cancel_futures=True)
            self._abort_quietly(key, upload_id)
            raise
        finally:
            pool.shutdown(wait=True)
        want = hashlib.md5(b"".join(p.md5 for p in parts), usedforsecurity=False).hexdigest() + f"-{len(parts)}"
        etag = self._completed_etag(key, response)
        if etag != want:
            self._delete_quietly(key)
            raise StoreIntegrityError(f"{self.location_url(key)}: ETag {etag!r} after completing, expected {want}")

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> _Part:
        md5 = hashlib.md5(data, usedforsecurity=False).digest()
        with _mapped(f"store {self.store_id}: part {number} of {key}"):
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentLength=len(data),
                ContentMD5=base64.b64encode(md5).decode(),
            )
        etag = str(response.get("ETag", "")).strip('"')
        if etag != md5.hex():
            raise StoreIntegrityError(f"{key} part {number}: ETag {etag!r}, sent md5 {md5.hex()}")
        return _Part(number, etag, md5)

    def _completed_etag(self, key: str, response: Any) -> str:
        """The ETag of the object a multipart upload completed (the response's, or HEAD's when it has none)."""
        etag = str(response.get("ETag") or "").strip('"')
        return etag or self._head_etag(key)

    def _head_etag(self, key: str) -> str:
        with _mapped(f"store {self.store_id}: HEAD {key}"):
            return str(self.client.head_object(Bucket=self.bucket, Key=key).get("ETag", "")).strip('"')

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        # the original failure is what the caller must see; a bucket lifecycle rule sweeps what an abort missed
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def _delete_quietly(self, key: str) -> None:
        with contextlib.suppress(Exception):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    # -- read -----------------------------------------------------------------------------------

    def get(self, url: str, offset: int = 0, length: int | None = None) -> StoreRead:
        """Stream ``length`` bytes from ``offset`` (one ranged GET), in ``READ_CHUNK`` reads."""
        key = self._owned_key(url)
        if offset < 0 or (length is not None and length < 0):
            raise StoreRangeError(f"offset {offset}, length {length}")
        if length == 0:
            total = self.get_size(url)
            if offset >= total and not (offset == 0 and total == 0):
                raise StoreRangeError(f"offset {offset} is past the end of a {total}-byte image")
            return StoreRead(iter(()), 0, total, offset)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if offset or length is not None:
            kwargs["Range"] = f"bytes={offset}-{'' if length is None else offset + length - 1}"
        try:
            with _mapped(f"store {self.store_id}: GET {key}"):
                response = self.client.get_object(**kwargs)
        except StoreRangeError:
            # a range on an empty object is unsatisfiable to S3; from 0 it is just an empty read
            if offset == 0 and self.get_size(url) == 0:
                return StoreRead(iter(()), 0, 0, 0)
            raise
        count = int(response["ContentLength"])
        content_range = response.get("ContentRange")
        total = int(str(content_range).rsplit("/", 1)[1]) if content_range else count
        return StoreRead(self._stream(response["Body"], key), count, total, offset)

    def _stream(self, body: Any, key: str) -> Iterator[bytes]:
        try:
            with _mapped(f"store {self.store_id}: reading {key}"):
                while chunk := body.read(READ_CHUNK):
                    yield chunk
        finally:
            body.close()

    def presign_get(self, url: str, ttl_seconds: int) -> str:
        """A short-lived GET URL of the object, for downloads that bypass the API (one key, minutes of life)."""
        key = self._owned_key(url)
        presigned: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=ttl_seconds
        )
        return presigned

    def get_size(self, url: str) -> int:
        """The object's size (one HEAD)."""
        key = self._owned_key(url)
        with _mapped(f"store {self.store_id}: HEAD {key}"):
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def delete(self, url: str) -> None:
        """Delete the object; HEAD first, since S3 deletes an absent key without complaint."""
        key = self._owned_key(url)
        what = f"store {self.store_id}: DELETE {key}"
        with _mapped(what):
            self.client.head_object(Bucket=self.bucket, Key=key)
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def properties(self) -> dict[str, Any]:
        """Glance's s3 store detail (sizes in MiB, as Glance's options) and the bucket."""
        return {
            "bucket": self.bucket,
            "s3_store_large_object_size": _mib(self.config.large_object_size),
            "s3_store_large_object_chunk_size": _mib(self.config.part_size),
            "s3_store_thread_pools": self.config.upload_threads,
        }


def _mib(size: int) -> int | float:
    return size // MiB if size % MiB == 0 else size / MiB
