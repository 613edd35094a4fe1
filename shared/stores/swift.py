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
copy does not use. The connections (one per thread, swiftclient imported on the first) and the error table are
``shared.stores.swift_connections``'.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from shared.stores.base import Opened, StoreCapabilities, StoreDriver
from shared.stores.config import MiB, SwiftStoreConfig
from shared.stores.credentials import key_from_secret
from shared.stores.errors import StoreConfigError, StoreError, StoreIntegrityError, StoreNotFoundError
from shared.stores.sized_source import SizedSource, Window
from shared.stores.swift_connections import SwiftConnections

if TYPE_CHECKING:
    from keystoneauth1.session import Session
    from swiftclient.client import Connection

    from shared.stores.config import StoreConfig
    from shared.stores.credentials import SecretReader

SCHEME = "swift+config://"
# Swift's default max_manifest_segments: an SLO manifest lists at most this many segments.
MAX_SEGMENTS = 1000
READ_CHUNK = 4 * MiB

logger = logging.getLogger(__name__)
# (container, object name): what a location resolves to
SwiftRef = tuple[str, str]


def segment_name(image_id: str, number: int) -> str:
    """The name of segment ``number`` (from 1) of an image: ``<image id>-00001``."""
    return f"{image_id}-{number:05d}"


class SwiftStore(StoreDriver[SwiftRef]):
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
        keystone_session: Session | None = None,
    ) -> None:
        """Args:
        store_id: the store's id.
        config: the store's configuration.
        key: the key, or a reader of (user, key) called on the first connection (a Secrets Manager read).
        retries: swiftclient's retries of one request.
        connection_factory: makes each thread's swiftclient connection (default: from the configuration).
        keystone_session: a Keystone session for every connection to share (Keystone v3).
        """
        capabilities = StoreCapabilities(ranged_reads=True, large_object_size=config.large_object_size, stored_md5=True)
        super().__init__(store_id, capabilities)
        self.config = config
        self.container = config.container
        self.connections = SwiftConnections(
            config, key, retries=retries, factory=connection_factory, keystone_session=keystone_session
        )
        self._lock = threading.Lock()
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

    def _upload_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.config.upload_threads, thread_name_prefix=f"swift-{self.store_id}")
            return self._pool

    def close(self) -> None:
        """Stop the upload threads and close every connection."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        self.connections.close()

    def properties(self) -> dict[str, Any]:
        """Glance's swift store details."""
        return {
            "container": self.container,
            "large_object_size": self.config.large_object_size,
            "large_object_chunk_size": self.config.segment_size,
        }

    # -- locations ------------------------------------------------------------------------------

    def _parse(self, url: str) -> SwiftRef | None:
        """(container, object) of ``swift+config://<store id>/<container>/<object>``."""
        prefix = f"{SCHEME}{self.store_id}/"
        if not url.startswith(prefix) or "?" in url or "#" in url:
            return None
        container, _, name = url[len(prefix) :].partition("/")
        return (container, name) if container and name else None

    def _ref_for(self, image_id: str) -> SwiftRef:
        return self.container, image_id

    def _url_for(self, ref: SwiftRef) -> str:
        return f"{SCHEME}{self.store_id}/{ref[0]}/{ref[1]}"

    # -- writes ---------------------------------------------------------------------------------

    def _write(self, ref: SwiftRef, source: SizedSource) -> str | None:
        """One streaming PUT; returns Swift's md5 of what it stored (its ETag), which is the checksum."""
        name = ref[1]

        def put() -> tuple[str, set[str]]:
            contents: Any = Window(source, source.size) if source.size else b""
            etag: str | None = self.connections.get().put_object(
                self.container, name, contents=contents, content_length=source.size
            )
            source.finish()
            return etag or "", set()

        return self._replacing(name, put)

    def _write_large(self, ref: SwiftRef, source: SizedSource) -> None:
        """A Static Large Object: segments checked against their md5s, then the manifest."""
        self._replacing(ref[1], lambda: (None, self._put_slo(ref[1], source)))

    def _replacing(self, name: str, write: Callable[[], tuple[str | None, set[str]]]) -> str | None:
        """Run ``write`` (giving the reported md5 and the segments it wrote); then drop segments of an earlier copy,
        or, if it failed, everything of the image."""
        self.connections.get().put_container(self.container)
        try:
            reported, kept = write()
        except BaseException:
            self._remove_image(name, keep=set())
            raise
        self._remove_image(name, keep=kept, manifest=False)
        return reported

    def _segment_size(self, size: int) -> int:
        return max(self.config.segment_size, math.ceil(size / MAX_SEGMENTS))

    def _put_slo(self, image_id: str, source: SizedSource) -> set[str]:
        size = source.size
        segment_size = self._segment_size(size)
        lengths = [min(segment_size, size - start) for start in range(0, size, segment_size)]
        if self.config.upload_threads > 1 and len(lengths) > 1:
            etags = self._put_segments_parallel(image_id, source, lengths)
        else:
            etags = [self._put_segment_streaming(image_id, n, source, length) for n, length in enumerate(lengths, 1)]
        source.finish()
        manifest = [
            {"path": f"/{self.container}/{segment_name(image_id, n)}", "etag": etag, "size_bytes": length}
            for n, (etag, length) in enumerate(zip(etags, lengths, strict=True), 1)
        ]
        # Swift checks each listed segment's ETag and size before it accepts the manifest (400 otherwise).
        self.connections.get().put_object(
            self.container,
            image_id,
            contents=json.dumps(manifest),
            query_string="multipart-manifest=put",
            content_type="application/octet-stream",
        )
        return {segment_name(image_id, n) for n in range(1, len(lengths) + 1)}

    def _put_segment_streaming(self, image_id: str, number: int, source: SizedSource, length: int) -> str:
        window = Window(source, length, md5=True)
        name = segment_name(image_id, number)
        etag: str = self.connections.get().put_object(self.container, name, contents=window, content_length=length)
        assert window.md5 is not None
        return self._checked(etag, window.md5.hexdigest(), name)

    def _put_segment_buffered(self, name: str, data: bytes) -> str:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        # a BytesIO (seekable) lets swiftclient retry the PUT
        with self._mapped(f"store {self.store_id}: segment {name}"):
            etag: str = self.connections.get().put_object(
                self.container, name, contents=io.BytesIO(data), content_length=len(data)
            )
        return self._checked(etag, md5, name)

    def _checked(self, etag: str, md5: str, name: str) -> str:
        if etag != md5:
            raise StoreIntegrityError(f"store {self.store_id}: Swift's ETag {etag} for segment {name} is not its md5")
        return etag

    def _put_segments_parallel(self, image_id: str, source: SizedSource, lengths: list[int]) -> list[str]:
        """Segments read here in order and uploaded by the pool; at most ``upload_threads`` are in flight while the
        next one is read (``upload_threads`` + 1 buffers)."""
        pool = self._upload_pool()
        slots = threading.BoundedSemaphore(self.config.upload_threads)
        futures: list[Future[str]] = []
        try:
            for number, length in enumerate(lengths, 1):
                data = source.read_exactly(length)
                while not slots.acquire(timeout=1):
                    _raise_first_failure(futures)
                _raise_first_failure(futures)
                future = pool.submit(self._put_segment_buffered, segment_name(image_id, number), data)
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

    # -- cleanup --------------------------------------------------------------------------------

    def _segments(self, container: str, image_id: str) -> list[str]:
        """Names of this store's segments of ``image_id`` in ``container`` (``<image id>-NNNNN``)."""
        _, listing = self.connections.get().get_container(container, prefix=f"{image_id}-", full_listing=True)
        pattern = re.compile(re.escape(image_id) + r"-\d{5,}")
        return [entry["name"] for entry in listing if pattern.fullmatch(entry["name"])]

    def _delete_object(self, container: str, name: str, query_string: str | None = None) -> bool:
        """Delete one object; False if it was not there."""
        try:
            with self._mapped(f"store {self.store_id}: deleting {container}/{name}"):
                self.connections.get().delete_object(container, name, query_string=query_string)
        except StoreNotFoundError:
            return False
        return True

    def _remove_image(self, image_id: str, keep: set[str], manifest: bool = True) -> None:
        """Best effort after a failed or replacing write: the object (if ``manifest``) and every segment not kept."""
        try:
            with self._mapped(f"store {self.store_id}: removing {image_id}"):
                if manifest:
                    self._delete_object(self.container, image_id)
                for name in self._segments(self.container, image_id):
                    if name not in keep:
                        self._delete_object(self.container, name)
        except StoreError as exc:
            # the write's own error (or success) is what the caller must see; delete() can finish this later
            logger.warning("store %s: could not remove all of %s: %s", self.store_id, image_id, exc)

    def _discard(self, ref: SwiftRef) -> None:
        self._remove_image(ref[1], keep=set())

    # -- reads and deletes ----------------------------------------------------------------------

    def _head(self, ref: SwiftRef) -> dict[str, str]:
        with self._mapped(f"store {self.store_id}: HEAD {ref[0]}/{ref[1]}"):
            headers: dict[str, str] = self.connections.get().head_object(*ref)
        return headers

    def _size(self, ref: SwiftRef) -> int:
        """The object's Content-Length (a large object's total)."""
        return int(self._head(ref)["content-length"])

    def _open(self, ref: SwiftRef, offset: int, length: int | None) -> Opened:
        """A ranged streaming GET; Swift assembles SLO and DLO segments itself."""
        headers = {}
        if offset or length is not None:
            headers["Range"] = f"bytes={offset}-{'' if length is None else offset + length - 1}"
        answer, body = self.connections.get().get_object(*ref, resp_chunk_size=READ_CHUNK, headers=headers)
        content_range = answer.get("content-range")
        total = None if content_range is None else int(content_range.rpartition("/")[2])
        return Opened(body, int(answer["content-length"]), total, body.close)

    def _delete(self, ref: SwiftRef) -> None:
        """Delete the object; an SLO with its segments, a DLO's segments one by one, and leftover segments."""
        container, name = ref
        try:
            headers: dict[str, str] | None = self._head(ref)
        except StoreNotFoundError:
            headers = None
        found = headers is not None
        if headers is not None:
            if headers.get("x-static-large-object", "").lower() == "true":
                self._delete_object(container, name, query_string="multipart-manifest=delete")
            else:
                if "x-object-manifest" in headers:
                    self._delete_dlo_segments(unquote(headers["x-object-manifest"]))
                self._delete_object(container, name)
        # segments of an interrupted write (no manifest) or of a failed SLO delete
        for segment in self._segments(container, name):
            found = self._delete_object(container, segment) or found
        if not found:
            raise StoreNotFoundError(f"store {self.store_id}: nothing stored at {self._url_for(ref)}")

    def _delete_dlo_segments(self, manifest: str) -> None:
        """Every object under a DLO manifest's ``<container>/<prefix>``."""
        container, _, prefix = manifest.partition("/")
        if not container or not prefix:
            raise StoreError(f"store {self.store_id}: refusing to delete segments of the manifest {manifest!r}")
        _, listing = self.connections.get().get_container(container, prefix=prefix, full_listing=True)
        for entry in listing:
            self._delete_object(container, entry["name"])

    def _backend_error(self, exc: Exception, what: str) -> StoreError | None:
        return self.connections.error(exc, what)


def _raise_first_failure(futures: list[Future[str]]) -> None:
    for future in futures:
        if future.done() and not future.cancelled() and future.exception() is not None:
            future.result()
