"""The S3 store: images in a bucket of any S3 API (AWS S3 in another bucket or region, or S3-compatible services).

A copy the driver writes is the object ``<prefix><image id>``, located as ``s3://<bucket>/<key>``: no endpoint, no
credentials (those stay in the store's configuration, so rotating a key never rewrites a location). ``get``,
``get_size`` and ``delete`` accept any key of the bucket, since the primary store's objects have longer keys
(``images/<image id>/<session id>``).

Writes stream (through ``shared.stores.s3_objects``, the S3 adapter the image bucket uses too):

* Below ``large_object_size``: one PUT whose body is a file-like view of the chunks with a known length, sent as
  it is read (``UNSIGNED-PAYLOAD``, no flexible checksum). Integrity comes from the ETag, which must equal the md5
  of what was sent. A stream that turns out shorter or longer than announced is caught before its last byte
  leaves, so the server never completes the PUT.
* At or above it: a multipart upload of ``part_size`` parts, ``upload_threads`` in flight, so memory stays at
  about ``(upload_threads + 1) * part_size``. Each part goes with its Content-MD5 and its ETag must equal that md5;
  the completed object's ETag must be the md5 of the part md5s with ``-<parts>``. Any failure aborts the upload.

A size mismatch, a failing chunk iterator or an integrity failure leaves nothing: no object, no unfinished upload.
(Buckets with SSE-KMS or SSE-C encryption do not return md5 ETags; this driver is for buckets without them.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from shared.stores.base import Opened, StoreCapabilities, StoreDriver
from shared.stores.config import CephStoreConfig, MiB, S3StoreConfig
from shared.stores.credentials import s3_keys
from shared.stores.errors import StoreConfigError, StoreError
from shared.stores.s3_errors import s3_error
from shared.stores.s3_objects import S3ClientOptions, S3Objects
from shared.stores.sized_source import SizedSource, Window

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.stores.config import StoreConfig
    from shared.stores.credentials import SecretReader

SCHEME = "s3://"
READ_CHUNK = 1 * MiB


class S3Store(StoreDriver[str]):
    """Images as objects in one bucket of an S3 API (a location resolves to its object key)."""

    type_name = "s3"
    config_type: ClassVar[type[S3StoreConfig | CephStoreConfig]] = S3StoreConfig

    def __init__(
        self,
        store_id: str,
        config: S3StoreConfig | CephStoreConfig,
        secrets: SecretReader | None = None,
        client: S3Client | None = None,
    ) -> None:
        """Args:
        store_id: the store's id.
        config: the store's configuration.
        secrets: reads ``secret_arn``'s fields when the client is first built.
        client: an S3 client to use instead of building one (it stays the caller's to close).
        """
        capabilities = StoreCapabilities(
            ranged_reads=True, large_object_size=config.large_object_size, presigned_gets=config.presigned_downloads
        )
        super().__init__(store_id, capabilities)
        self.config = config
        self.bucket = config.bucket
        self.prefix = config.prefix
        options = S3ClientOptions(
            config.region,
            config.endpoint_url,
            path_style=config.path_style,
            streaming=True,
            max_pool_connections=config.upload_threads + 8,
        )
        self.objects = S3Objects(
            config.bucket,
            options,
            client=client,
            credentials=lambda: s3_keys(store_id, config, secrets),
            label=f"store {store_id}",
        )

    @classmethod
    def from_config(cls, store_id: str, config: StoreConfig, secrets: SecretReader | None) -> S3Store:
        """The driver for ``config``; credentials are resolved when the client is first needed."""
        if not isinstance(config, cls.config_type):
            raise StoreConfigError(f"store {store_id}: a {cls.type_name} store needs a {cls.type_name} configuration")
        return cls(store_id, config, secrets)

    @property
    def client(self) -> S3Client:
        """The boto3 S3 client, made on first use (in its own session: no process-wide credential cache)."""
        return self.objects.client

    def close(self) -> None:
        """Close the client's connections (a client passed in belongs to the caller)."""
        self.objects.close()

    def properties(self) -> dict[str, Any]:
        """Glance's s3 store detail (sizes in MiB, as Glance's options) and the bucket."""
        return {
            "bucket": self.bucket,
            "s3_store_large_object_size": _mib(self.config.large_object_size),
            "s3_store_large_object_chunk_size": _mib(self.config.part_size),
            "s3_store_thread_pools": self.config.upload_threads,
        }

    # -- primitives -----------------------------------------------------------------------------

    def _parse(self, url: str) -> str | None:
        """The key of ``s3://<this bucket>/<any key>``."""
        if not url.startswith(SCHEME):
            return None
        bucket, slash, key = url[len(SCHEME) :].partition("/")
        if bucket != self.bucket or not slash or not key:
            return None
        return key

    def _ref_for(self, image_id: str) -> str:
        return f"{self.prefix}{image_id}"

    def _url_for(self, ref: str) -> str:
        return f"{SCHEME}{self.bucket}/{ref}"

    def _write(self, ref: str, source: SizedSource) -> str:
        """One streaming PUT; its ETag is S3's md5 of what it stored (the template compares it)."""
        return self.objects.put_stream(ref, Window(source, source.size))

    def _write_large(self, ref: str, source: SizedSource) -> None:
        """A multipart upload of ``part_size`` parts, ``upload_threads`` in flight, every ETag checked."""
        parts = source.blocks(self.config.part_size)
        self.objects.write_parts(ref, parts, in_flight=self.config.upload_threads, checked=True)

    def _discard(self, ref: str) -> None:
        self.objects.delete(ref)

    def _open(self, ref: str, offset: int, length: int | None) -> Opened:
        """One GET (ranged when asked), read in ``READ_CHUNK`` pieces."""
        byte_range = None
        if offset or length is not None:
            byte_range = f"bytes={offset}-{'' if length is None else offset + length - 1}"
        read = self.objects.get(ref, byte_range, READ_CHUNK)
        return Opened(read.chunks, read.length, read.total_size, read.close)

    def _size(self, ref: str) -> int:
        return self.objects.head(ref)[0]

    def _delete(self, ref: str) -> None:
        """HEAD first, since S3 deletes an absent key without complaint."""
        self.objects.head(ref)
        self.objects.delete(ref)

    def _presign_get(self, ref: str, ttl_seconds: int) -> str:
        return self.objects.presign("get_object", {"Key": ref}, ttl_seconds)

    def _backend_error(self, exc: Exception, what: str) -> StoreError | None:
        return s3_error(exc, what)


def _mib(size: int) -> int | float:
    return size // MiB if size % MiB == 0 else size / MiB
