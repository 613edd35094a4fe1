"""The Swift store: images as objects in one container of OpenStack Swift (or any Swift API), by python-swiftclient.

An image is the object ``<container>/<image id>``, located as ``swift+config://<store id>/<container>/<image id>``
(Glance's ``swift+config`` form: the credentials stay in the store's configuration, never in the URL).

Images under ``large_object_size`` are one streaming PUT; its ETag, Swift's md5 of the bytes it stored, is the
checksum ``add`` returns (only the secure hash is computed here), which the caller compares with the image's. Larger
ones are written as a Static Large Object: segments ``<image id>-00001``, ``-00002``, ... of ``segment_size`` bytes
in the same container (Glance's segment names; at most 1000 segments, Swift's default manifest limit, so the
segment size grows for huge images), each checked against its own md5, then the SLO manifest, which Swift accepts
only if every segment's ETag and size match. With ``upload_threads`` > 1 segments upload in parallel from memory
(at most ``upload_threads`` + 1 segment buffers at once); with one thread each segment streams without a buffer.
Glance writes Dynamic Large Objects instead; ``get`` reads and ``delete`` deletes both kinds.

A write that fails, and a write that replaces a previous copy, leave no segment of the image behind that the new
copy does not use. swiftclient is imported when the first connection is made; each thread has its own connection.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

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
    key_from_secret,
)
from shared.stores.config import MiB, SwiftStoreConfig
from shared.streams.digest import StreamDigest

if TYPE_CHECKING:
    from swiftclient.client import Connection

    from shared.stores.config import StoreConfig
    from shared.stores.registry import SecretReader

SCHEME = "swift+config://"
# Swift's default max_manifest_segments: an SLO manifest lists at most this many segments.
MAX_SEGMENTS = 1000
READ_CHUNK = 4 * MiB
_RETRYABLE_STATUS = {408, 425, 429, 498, 499}
_MD5_HEX = re.compile(r"[0-9a-f]{32}")

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


def segment_name(image_id: str, number: int) -> str:
    """The name of segment ``number`` (from 1) of an image: ``<image id>-00001``."""
    return f"{image_id}-{number:05d}"


def _status_error(status: int, detail: str) -> StoreError:
    """The store error for an HTTP error status from Swift."""
    detail = detail.rstrip()
    if status == 404:
        return StoreNotFoundError(detail)
    if status == 416:
        return StoreRangeError(detail)
    if status in (401, 403):
        return StoreConfigError(f"{detail} (check the store's credentials)")
    if status >= 500 or status in _RETRYABLE_STATUS:
        return StoreUnavailableError(detail)
    return StoreError(detail)


class _SourceFailedError(Exception):
    """The image's chunk iterator raised; ``add`` re-raises the iterator's own exception."""


class _Source:
    """The image's chunks as one stream of exactly ``size`` bytes, each chunk hashed once as it is taken."""

    def __init__(self, chunks: Iterable[bytes], size: int, digest: StreamDigest) -> None:
        self._chunks = iter(chunks)
        self._size = size
        self._digest = digest
        self._taken = 0
        self._buffer = memoryview(b"")
        self.error: BaseException | None = None

    def _pull(self) -> bool:
        """The next non-empty chunk into the buffer; False when the chunks end."""
        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return False
            except Exception as exc:
                self.error = exc
                raise _SourceFailedError from exc
            if chunk:
                break
        self._taken += len(chunk)
        if self._taken > self._size:
            raise StoreSizeMismatchError(f"the chunks carry more than the announced {self._size} bytes")
        self._digest.feed(chunk)
        self._buffer = memoryview(chunk)
        return True

    def read(self, limit: int) -> bytes:
        """Up to ``limit`` (> 0) bytes; empty only at the announced end."""
        if not self._buffer and (self._taken == self._size or not self._pull()):
            if self._taken < self._size:
                raise StoreSizeMismatchError(f"the chunks ended after {self._taken} of {self._size} bytes")
            return b""
        piece, self._buffer = self._buffer[:limit], self._buffer[limit:]
        return bytes(piece)

    def read_exactly(self, count: int) -> bytes:
        """The next ``count`` bytes (StoreSizeMismatchError if the chunks end first)."""
        pieces: list[bytes] = []
        left = count
        while left:
            piece = self.read(left)
            if not piece:
                raise StoreSizeMismatchError(f"the chunks ended before the announced {self._size} bytes")
            pieces.append(piece)
            left -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def finish(self) -> None:
        """Check that the chunks end at the announced size (pulling any that remain)."""
        if self._buffer or self._pull():
            raise StoreSizeMismatchError(f"the chunks carry more than the announced {self._size} bytes")


class _Window:
    """A file-like view of the next ``length`` bytes of a source, md5-hashed as they are read (one segment)."""

    def __init__(self, source: _Source, length: int, *, hashed: bool = True) -> None:
        self._source = source
        self._left = length
        self.length = length
        self.md5 = hashlib.md5(usedforsecurity=False) if hashed else None

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of the window (all that is left if negative)."""
        want = self._left if size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        piece = self._source.read(want)
        if not piece:
            raise StoreSizeMismatchError("the chunks ended inside a segment")
        self._left -= len(piece)
        if self.md5 is not None:
            self.md5.update(piece)
        return piece


class _Body(Iterator[bytes]):
    """The chunks of a GET response; closes the response at the end, on error, on ``close()`` or when dropped."""

    def __init__(self, body: Any, translate: Callable[[Exception], StoreError | None]) -> None:
        self._body = body
        self._translate = translate
        self._closed = False

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        try:
            chunk: bytes = next(self._body)
        except StopIteration:
            self.close()
            raise
        except Exception as exc:
            self.close()
            error = self._translate(exc)
            if error is None:
                raise
            raise error from exc
        return chunk

    def close(self) -> None:
        """Release the response's connection."""
        if not self._closed:
            self._closed = True
            self._body.close()

    def __del__(self) -> None:
        self.close()


class SwiftStore(StoreDriver):
    """Images as objects (plain, or Static Large Objects) in one Swift container."""

    type_name = "swift"

    def __init__(
        self,
        store_id: str,
        config: SwiftStoreConfig,
        key: str | Callable[[], tuple[str, str]],
        *,
        retries: int = 2,
        connection_factory: Callable[[], Connection] | None = None,
    ) -> None:
        super().__init__(store_id)
        self.config = config
        self.container = config.container
        # the key, or a callable giving (user, key) on first use (a Secrets Manager read)
        self._key_source = key
        self._credentials: tuple[str, str] | None = (config.user, key) if isinstance(key, str) else None
        self._retries = retries
        self._factory = connection_factory
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._keystone: Any = None
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_config(cls, store_id: str, config: StoreConfig, secrets: SecretReader | None) -> SwiftStore:
        """The store for a ``SwiftStoreConfig``. The key is inline, or the ``key`` field (and optionally ``user``)
        of ``secret_arn``'s JSON, read when the first connection is made."""
        if not isinstance(config, SwiftStoreConfig):
            raise StoreConfigError(f"store {store_id}: a swift store needs a swift configuration")
        if config.key is not None:
            return cls(store_id, config, config.key.get_secret_value())
        if config.secret_arn is None:
            raise StoreConfigError(f"store {store_id}: no Swift key (set key, or secret_arn with a 'key' field)")
        return cls(store_id, config, key_from_secret(store_id, config.user, config.secret_arn, secrets))

    # -- connections ----------------------------------------------------------------------------

    def _user_and_key(self) -> tuple[str, str]:
        with self._lock:
            if self._credentials is None:
                assert callable(self._key_source)
                self._credentials = self._key_source()
            return self._credentials

    def connection_options(self) -> dict[str, Any]:
        """The ``swiftclient.Connection`` arguments (they hold the key: never log them)."""
        config = self.config
        options: dict[str, Any] = {
            "retries": self._retries,
            "starting_backoff": 0.5,
            "max_backoff": 4,
            "timeout": config.timeout_seconds,
            "retry_on_ratelimit": True,
        }
        if config.auth_version == "1":
            user, key = self._user_and_key()
            options.update(authurl=config.auth_url, user=user, key=key, auth_version="1")
        else:
            # Keystone through one keystoneauth1 session shared by every thread's connection (one token, renewed
            # by the session); swiftclient then needs no python-keystoneclient.
            options.update(
                auth_version="3",
                session=self._keystone_session(),
                os_options={
                    "service_type": "object-store",
                    "endpoint_type": config.endpoint_type,
                    "region_name": config.region_name,
                },
            )
        return options

    def keystone_auth_options(self) -> dict[str, Any]:
        """The Keystone v3 password plugin's arguments (they hold the key: never log them)."""
        config = self.config
        user, key = self._user_and_key()
        return {
            "auth_url": config.auth_url,
            "username": user,
            "password": key,
            "project_name": config.project_name,
            "user_domain_name": config.user_domain_name,
            "project_domain_name": config.project_domain_name,
        }

    def _keystone_session(self) -> Any:
        with self._lock:
            keystone = self._keystone
        if keystone is None:
            from keystoneauth1 import session
            from keystoneauth1.identity import v3

            auth = v3.Password(**self.keystone_auth_options())
            keystone = session.Session(auth=auth, timeout=self.config.timeout_seconds)
            with self._lock:
                if self._keystone is None:
                    self._keystone = keystone
                else:
                    keystone.session.close()
                    keystone = self._keystone
        return keystone

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._factory is not None:
                connection = self._factory()
            else:
                from swiftclient.client import Connection

                connection = Connection(**self.connection_options())
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _upload_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.config.upload_threads, thread_name_prefix=f"swift-{self.store_id}")
            return self._pool

    def close(self) -> None:
        """Stop the upload threads and close every connection."""
        with self._lock:
            pool, self._pool = self._pool, None
            connections, self._connections = self._connections, []
            keystone, self._keystone = self._keystone, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for connection in connections:
            connection.close()
        if keystone is not None:
            keystone.session.close()
        self._local = threading.local()

    # -- errors ---------------------------------------------------------------------------------

    def _translate(self, exc: Exception, what: str) -> StoreError | None:
        """The store error for a client failure, or None for an exception that is not the client's."""
        from swiftclient.exceptions import ClientException

        if isinstance(exc, StoreError | _SourceFailedError):
            return None
        if isinstance(exc, ClientException):
            if exc.http_status is None:
                return StoreUnavailableError(f"{what}: {exc.msg}")
            return _status_error(exc.http_status, f"{what}: Swift answered {exc.http_status} {exc.http_reason or ''}")
        if isinstance(exc, OSError):  # sockets, and every requests exception
            return StoreUnavailableError(f"{what}: {type(exc).__name__}: {exc}")
        if self.config.auth_version == "3":
            from keystoneauth1 import exceptions as ks

            if isinstance(exc, ks.ConnectionError | ks.ServiceUnavailable | ks.GatewayTimeout | ks.BadGateway):
                return StoreUnavailableError(f"{what}: Keystone: {type(exc).__name__}")
            if isinstance(exc, ks.ClientException):
                return StoreConfigError(f"{what}: Keystone: {type(exc).__name__}: {exc}")
        return None

    def _call(self, what: str, operation: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return operation(*args, **kwargs)
        except Exception as exc:
            error = self._translate(exc, what)
            if error is None:
                raise
            raise error from exc

    # -- locations ------------------------------------------------------------------------------

    def url_for(self, image_id: str) -> str:
        """The location of ``image_id`` in this store's container."""
        return f"{SCHEME}{self.store_id}/{self.container}/{image_id}"

    def _parse(self, url: str) -> tuple[str, str]:
        """(container, object) of one of this store's URLs."""
        if not self.owns(url):
            raise StoreConfigError(f"store {self.store_id}: not one of its locations: {url!r}")
        container, _, name = url[len(SCHEME) + len(self.store_id) + 1 :].partition("/")
        return container, name

    def owns(self, url: str) -> bool:
        """True for ``swift+config://<store id>/<container>/<object>``."""
        prefix = f"{SCHEME}{self.store_id}/"
        if not url.startswith(prefix):
            return False
        container, _, name = url[len(prefix) :].partition("/")
        return bool(container) and bool(name) and "?" not in url and "#" not in url

    def properties(self) -> dict[str, Any]:
        """Glance's swift store details."""
        return {
            "container": self.container,
            "large_object_size": self.config.large_object_size,
            "large_object_chunk_size": self.config.segment_size,
        }

    # -- add ------------------------------------------------------------------------------------

    def add(self, image_id: str, chunks: Iterable[bytes], size: int, hashing_algo: str) -> AddResult:
        """Write the image (plain or SLO), check Swift's ETags, then drop segments of any earlier copy."""
        if not image_id or "/" in image_id:
            raise StoreConfigError(f"store {self.store_id}: {image_id!r} cannot name an object")
        what = f"adding {image_id} to {self.store_id}"
        connection = self._connection()
        self._call(what, connection.put_container, self.container)
        plain = size < self.config.large_object_size
        # A plain object's ETag is Swift's md5 of the bytes it stored: that is the checksum returned, so only the
        # secure hash is computed here (one md5 less per byte; the caller compares both with the image's).
        with StreamDigest(hashing_algo, None, size, md5=not plain) as digest:
            source = _Source(chunks, size, digest)
            try:
                if plain:
                    stored_md5 = self._put_plain(image_id, source, size, what)
                    kept: set[str] = set()
                else:
                    kept = self._put_slo(image_id, source, size, what)
                hashes = digest.finish()
                checksum = stored_md5 if plain else hashes.checksum
            except BaseException:
                self._remove_image(image_id, keep=set())
                if source.error is not None:  # the chunk iterator's own failure, unchanged
                    raise source.error from None
                raise
        self._remove_image(image_id, keep=kept, manifest=False)
        return AddResult(self.url_for(image_id), size, checksum, hashes.os_hash_value)

    def _put_plain(self, image_id: str, source: _Source, size: int, what: str) -> str:
        """One streaming PUT; returns Swift's md5 of what it stored (its ETag)."""
        window = _Window(source, size, hashed=False)
        contents: Any = window if size else b""
        etag = self._call(
            what, self._connection().put_object, self.container, image_id, contents=contents, content_length=size
        )
        source.finish()
        stored = str(etag or "").strip('"').lower()
        if not _MD5_HEX.fullmatch(stored):
            raise StoreIntegrityError(f"{what}: Swift's ETag {etag!r} is not an md5")
        return stored

    def _segment_size(self, size: int) -> int:
        return max(self.config.segment_size, math.ceil(size / MAX_SEGMENTS))

    def _put_slo(self, image_id: str, source: _Source, size: int, what: str) -> set[str]:
        segment_size = self._segment_size(size)
        lengths = [min(segment_size, size - start) for start in range(0, size, segment_size)]
        if self.config.upload_threads > 1 and len(lengths) > 1:
            etags = self._put_segments_parallel(image_id, source, lengths, what)
        else:
            etags = [
                self._put_segment_streaming(image_id, n, source, length, what) for n, length in enumerate(lengths, 1)
            ]
        source.finish()
        manifest = [
            {"path": f"/{self.container}/{segment_name(image_id, n)}", "etag": etag, "size_bytes": length}
            for n, (etag, length) in enumerate(zip(etags, lengths, strict=True), 1)
        ]
        # Swift checks each listed segment's ETag and size before it accepts the manifest (400 otherwise).
        self._call(
            what,
            self._connection().put_object,
            self.container,
            image_id,
            contents=json.dumps(manifest),
            query_string="multipart-manifest=put",
            content_type="application/octet-stream",
        )
        return {segment_name(image_id, n) for n in range(1, len(lengths) + 1)}

    def _put_segment_streaming(self, image_id: str, number: int, source: _Source, length: int, what: str) -> str:
        window = _Window(source, length)
        name = segment_name(image_id, number)
        etag: str = self._call(
            what, self._connection().put_object, self.container, name, contents=window, content_length=length
        )
        assert window.md5 is not None
        return self._checked(etag, window.md5.hexdigest(), name, what)

    def _put_segment_buffered(self, name: str, data: bytes, what: str) -> str:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        # a BytesIO (seekable) lets swiftclient retry the PUT
        etag: str = self._call(
            what,
            self._connection().put_object,
            self.container,
            name,
            contents=io.BytesIO(data),
            content_length=len(data),
        )
        return self._checked(etag, md5, name, what)

    @staticmethod
    def _checked(etag: str, md5: str, name: str, what: str) -> str:
        if etag != md5:
            raise StoreIntegrityError(f"{what}: Swift's ETag {etag} for segment {name} is not the md5 of its bytes")
        return etag

    def _put_segments_parallel(self, image_id: str, source: _Source, lengths: list[int], what: str) -> list[str]:
        """Segments read here in order and uploaded by the pool; at most ``upload_threads`` are in flight while the
        next one is read (``upload_threads`` + 1 buffers)."""
        pool = self._upload_pool()
        slots = threading.BoundedSemaphore(self.config.upload_threads)
        futures: list[Future[str]] = []
        try:
            for number, length in enumerate(lengths, 1):
                data = source.read_exactly(length)
                while not slots.acquire(timeout=1):
                    self._raise_first_failure(futures)
                self._raise_first_failure(futures)
                future = pool.submit(self._put_segment_buffered, segment_name(image_id, number), data, what)
                future.add_done_callback(lambda _: slots.release())
                futures.append(future)
                del data
            return [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()
            for future in futures:
                if not future.cancelled():
                    future.exception()  # wait: nothing may write after the cleanup

    @staticmethod
    def _raise_first_failure(futures: list[Future[str]]) -> None:
        for future in futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                future.result()

    # -- cleanup --------------------------------------------------------------------------------

    def _segments(self, container: str, image_id: str) -> list[str]:
        """Names of this store's segments of ``image_id`` in ``container`` (``<image id>-NNNNN``)."""
        connection = self._connection()
        _, listing = self._call(
            f"listing segments of {image_id}",
            connection.get_container,
            container,
            prefix=f"{image_id}-",
            full_listing=True,
        )
        pattern = re.compile(re.escape(image_id) + r"-\d{5,}")
        return [entry["name"] for entry in listing if pattern.fullmatch(entry["name"])]

    def _delete_object(self, container: str, name: str, what: str, query_string: str | None = None) -> bool:
        """Delete one object; False if it was not there."""
        try:
            self._call(what, self._connection().delete_object, container, name, query_string=query_string)
        except StoreNotFoundError:
            return False
        return True

    def _remove_image(self, image_id: str, keep: set[str], manifest: bool = True) -> None:
        """Best effort after a failed or replacing write: the object (if ``manifest``) and every segment not kept."""
        try:
            if manifest:
                self._delete_object(self.container, image_id, f"removing {image_id}")
            for name in self._segments(self.container, image_id):
                if name not in keep:
                    self._delete_object(self.container, name, f"removing segment {name}")
        except StoreError as exc:
            # the write's own error (or success) is what the caller must see; delete() can finish this later
            logger.warning("store %s: could not remove all of %s: %s", self.store_id, image_id, exc)

    # -- get / size / delete --------------------------------------------------------------------

    def _head(self, url: str) -> dict[str, str]:
        container, name = self._parse(url)
        headers: dict[str, str] = self._call(f"HEAD {url}", self._connection().head_object, container, name)
        return headers

    def get_size(self, url: str) -> int:
        """The object's Content-Length (a large object's total)."""
        return int(self._head(url)["content-length"])

    def get(self, url: str, offset: int = 0, length: int | None = None) -> StoreRead:
        """A ranged streaming GET; Swift assembles SLO and DLO segments itself."""
        container, name = self._parse(url)
        if offset < 0 or (length is not None and length < 0):
            raise StoreRangeError(f"invalid range: offset {offset}, length {length}")
        if length == 0:
            return self._empty_read(url, offset)
        headers = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        try:
            answer, body = self._call(
                f"GET {url}",
                self._connection().get_object,
                container,
                name,
                resp_chunk_size=READ_CHUNK,
                headers=headers,
            )
        except StoreRangeError:
            return self._empty_read(url, offset)
        chunks = _Body(body, lambda exc: self._translate(exc, f"reading {url}"))
        got = int(answer["content-length"])
        content_range = answer.get("content-range")
        if content_range is None:
            if headers:
                chunks.close()
                raise StoreError(f"GET {url}: Swift ignored the range {headers['Range']}")
            return StoreRead(chunks, got, got, 0)
        return StoreRead(chunks, got, int(content_range.rpartition("/")[2]), offset)

    def _empty_read(self, url: str, offset: int) -> StoreRead:
        """No bytes at ``offset``: valid only at offset 0 of an empty object."""
        total = self.get_size(url)
        if offset >= total and not (offset == 0 and total == 0):
            raise StoreRangeError(f"offset {offset} is past the end of {url} ({total} bytes)")
        return StoreRead(iter(()), 0, total, offset)

    def delete(self, url: str) -> None:
        """Delete the object; an SLO with its segments, a DLO's segments one by one, and leftover segments."""
        container, name = self._parse(url)
        what = f"deleting {url}"
        try:
            headers = self._head(url)
        except StoreNotFoundError:
            headers = None
        found = headers is not None
        if headers is not None:
            if headers.get("x-static-large-object", "").lower() == "true":
                self._delete_object(container, name, what, query_string="multipart-manifest=delete")
            else:
                if "x-object-manifest" in headers:
                    self._delete_dlo_segments(unquote(headers["x-object-manifest"]), what)
                self._delete_object(container, name, what)
        # segments of an interrupted write (no manifest) or of a failed SLO delete
        for segment in self._segments(container, name):
            found = self._delete_object(container, segment, what) or found
        if not found:
            raise StoreNotFoundError(f"{what}: nothing stored there")

    def _delete_dlo_segments(self, manifest: str, what: str) -> None:
        """Every object under a DLO manifest's ``<container>/<prefix>``."""
        container, _, prefix = manifest.partition("/")
        if not container or not prefix:
            raise StoreError(f"{what}: refusing to delete segments of the manifest {manifest!r}")
        _, listing = self._call(what, self._connection().get_container, container, prefix=prefix, full_listing=True)
        for entry in listing:
            self._delete_object(container, entry["name"], what)
