"""The RBD store: images as Ceph RBD images in one pool, by librados/librbd (Debian's python3-rbd bindings).

An image is the RBD image ``<image id>`` in ``pool``, with the protected snapshot ``snap`` that Nova and Cinder
clone copy-on-write; its location is ``rbd://<fsid>/<pool>/<image id>/snap`` (Glance's form: the cluster's fsid
names the cluster, credentials stay in the store's configuration).

``add`` writes a new RBD image (layering feature, object size ``chunk_size``) sized to the announced size, in
``chunk_size`` writes at their offsets (with ``thin_provisioning``, all-zero chunks are not written and stay
unallocated), hashes every byte, then creates and protects ``snap``. It writes under a temporary name and renames
the image into place only once it is complete, so a failed write leaves neither a partial image nor a lost earlier
copy; a re-added image id replaces the earlier copy (unless that one has clones: ``StoreInUseError``).

``delete`` unprotects and removes ``snap``, then removes the image. While clones of ``snap`` exist (a Nova disk or
a Cinder volume not yet flattened) the snapshot cannot be unprotected: ``StoreInUseError``, Glance's
``InUseByStore`` (HTTP 409), and the image stays as it was. An image holding other snapshots is moved to the RBD
trash instead of removed, as Glance does.

The bindings are imported on first use, never at module import (``shared.stores.rbd_bindings``). One librados
connection per driver serves every thread (or a connected cluster handle given to the driver); each operation
opens its own I/O context.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Generator, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from shared.stores.base import Opened, StoreCapabilities, StoreDriver, byte_span
from shared.stores.config import RbdStoreConfig
from shared.stores.credentials import key_from_secret
from shared.stores.errors import (
    StoreConfigError,
    StoreError,
    StoreInUseError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from shared.stores.rbd_bindings import load_bindings

if TYPE_CHECKING:
    from shared.stores.config import StoreConfig
    from shared.stores.credentials import SecretReader
    from shared.stores.sized_source import SizedSource

SCHEME = "rbd://"
SNAPSHOT = "snap"
_TEMP_MARK = ".sglance-tmp-"
_ETIMEDOUT = 110
_ESHUTDOWN = 108

logger = logging.getLogger(__name__)
# (RBD image name, snapshot): what a location resolves to
RbdRef = tuple[str, str]


def rbd_url(fsid: str, pool: str, image: str, snapshot: str = SNAPSHOT) -> str:
    """``rbd://<fsid>/<pool>/<image>/<snapshot>``, each part quoted."""
    return SCHEME + "/".join(quote(part, safe="") for part in (fsid, pool, image, snapshot))


def parse_rbd_url(url: str) -> tuple[str, str, str, str] | None:
    """(fsid, pool, image, snapshot) of an ``rbd://`` URL of that form, or None."""
    if not url.startswith(SCHEME) or "?" in url or "#" in url:
        return None
    parts = [unquote(part) for part in url[len(SCHEME) :].split("/")]
    if len(parts) != 4 or not all(parts):
        return None
    return parts[0], parts[1], parts[2], parts[3]


class RbdStore(StoreDriver[RbdRef]):
    """Images as RBD images with a protected snapshot ``snap``, in one pool of one Ceph cluster."""

    type_name = "rbd"
    # "@" separates an RBD image from its snapshot
    reserved_id_chars = "@"

    def __init__(
        self,
        store_id: str,
        config: RbdStoreConfig,
        key: str | Callable[[], tuple[str, str]] | None = None,
        *,
        bindings: tuple[ModuleType, ModuleType] | None = None,
        cluster: Any | None = None,
    ) -> None:
        """Args:
        store_id: the store's id.
        config: the store's configuration.
        key: the cephx key, or a reader of (user, key) called on the first connection; None: ceph.conf's keyring.
        bindings: the ``rados`` and ``rbd`` modules (default: ``load_bindings``).
        cluster: a connected ``rados.Rados`` to use instead of connecting (the caller's: ``close`` leaves it).
        """
        super().__init__(store_id, StoreCapabilities(ranged_reads=True))
        self.config = config
        self.pool = config.pool
        self.chunk_size = config.chunk_size
        self._key_source = key
        self._bindings = bindings
        self._lock = threading.Lock()
        self._cluster: Any = cluster
        self._owns_cluster = cluster is None
        self._fsid = config.fsid
        self._zeros = b""

    @classmethod
    def from_config(cls, store_id: str, config: StoreConfig, secrets: SecretReader | None) -> RbdStore:
        """The store for an ``RbdStoreConfig``. The cephx key is inline, in ``keyring``, or the ``key`` field (and
        optionally ``user``) of ``secret_arn``'s JSON, read when the first connection is made."""
        if not isinstance(config, RbdStoreConfig):
            raise StoreConfigError(f"store {store_id}: an rbd store needs an rbd configuration")
        if config.key is not None:
            return cls(store_id, config, config.key.get_secret_value())
        if config.secret_arn is None:
            return cls(store_id, config)
        return cls(store_id, config, key_from_secret(store_id, config.user, config.secret_arn, secrets))

    # -- connection -----------------------------------------------------------------------------

    def modules(self) -> tuple[Any, Any]:
        """The ``rados`` and ``rbd`` modules this driver uses."""
        if self._bindings is None:
            self._bindings = load_bindings(self.config.bindings_dir)
        return self._bindings

    def _credentials(self) -> tuple[str, str | None]:
        source = self._key_source
        if source is None or isinstance(source, str):
            return self.config.user, source
        return source()

    def rados_options(self) -> dict[str, str]:
        """librados settings besides ceph.conf (they may hold the key: never log them)."""
        timeout = str(self.config.op_timeout)
        options = {
            # Rados.connect(timeout=) of python3-rados 16 does not bound the wait; this does
            "client_mount_timeout": str(self.config.connect_timeout),
            "rados_osd_op_timeout": timeout,
            "rados_mon_op_timeout": timeout,
        }
        if self.config.keyring is not None:
            options["keyring"] = self.config.keyring
        return options

    def _connect(self) -> Any:
        with self._lock:
            if self._cluster is not None:
                if self._fsid is None:
                    self._fsid = str(self._cluster.get_fsid())
                return self._cluster
            self._fsid, self._cluster = self._connected()
            return self._cluster

    def _connected(self) -> tuple[str, Any]:
        """(fsid, cluster) of a new librados connection."""
        rados, _ = self.modules()
        user, key = self._credentials()
        options = self.rados_options()
        if key is not None:
            options["key"] = key
        what = f"store {self.store_id}: connecting to the Ceph cluster of {self.config.conffile}"
        try:
            cluster = rados.Rados(conffile=self.config.conffile, rados_id=user, conf=options)
        except rados.Error as exc:
            raise StoreConfigError(f"{what}: {type(exc).__name__}: {exc}") from exc
        try:
            cluster.connect()
            fsid = str(cluster.get_fsid())
        except rados.Error as exc:
            cluster.shutdown()
            if isinstance(exc, rados.PermissionError | rados.PermissionDeniedError):
                raise StoreConfigError(f"{what}: {type(exc).__name__}: {exc} (check user and key)") from exc
            raise StoreUnavailableError(f"{what}: {type(exc).__name__}: {exc}") from exc
        if self._fsid is not None and fsid != self._fsid:
            cluster.shutdown()
            raise StoreConfigError(f"{what}: its fsid is {fsid}, the store is configured for {self._fsid}")
        return fsid, cluster

    def fsid(self) -> str:
        """The cluster's fsid (configured, or asked from the cluster on first use)."""
        if self._fsid is None:
            self._connect()
        assert self._fsid is not None
        return self._fsid

    @contextlib.contextmanager
    def _ioctx(self, what: str) -> Iterator[Any]:
        cluster = self._connect()
        rados, _ = self.modules()
        try:
            ioctx = cluster.open_ioctx(self.pool)
        except rados.ObjectNotFound:
            raise StoreConfigError(f"{what}: the pool {self.pool} does not exist") from None
        try:
            yield ioctx
        finally:
            ioctx.close()

    def close(self) -> None:
        """Shut the librados connection down (a cluster handle passed in belongs to the caller)."""
        with self._lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None and self._owns_cluster:
            cluster.shutdown()

    def properties(self) -> dict[str, Any]:
        """Glance's rbd store details: pool, chunk size (bytes), thin provisioning, and the cluster's fsid."""
        shown: dict[str, Any] = {
            "pool": self.pool,
            "chunk_size": self.chunk_size,
            "thin_provisioning": self.config.thin_provisioning,
        }
        try:
            shown["fsid"] = self.fsid()
        except StoreError as exc:
            logger.warning("store %s cannot learn its fsid: %s", self.store_id, exc)
        return shown

    # -- primitives -----------------------------------------------------------------------------

    def _backend_error(self, exc: Exception, what: str) -> StoreError | None:
        """The store error for a librados/librbd failure, or None for an exception that is not theirs."""
        if self._bindings is None:
            return None
        rados, rbd = self._bindings
        if not isinstance(exc, rados.Error | rbd.Error):
            return None
        detail = f"{what}: {type(exc).__name__}: {exc}"
        if isinstance(exc, rbd.ImageNotFound | rbd.ObjectNotFound | rados.ObjectNotFound):
            return StoreNotFoundError(detail)
        if isinstance(exc, rbd.ImageBusy):
            return StoreInUseError(detail)
        if isinstance(exc, rbd.PermissionError | rados.PermissionError | rados.PermissionDeniedError):
            return StoreConfigError(f"{detail} (check the client's caps on the pool)")
        retryable = (
            rbd.Timeout,
            rbd.ConnectionShutdown,
            rbd.IOError,
            rados.TimedOut,
            rados.InterruptedOrTimeoutError,
            rados.ConnectionShutdown,
            rados.NotConnected,
            rados.IOError,
        )
        # rados' errors all carry an errno, rbd's only from rbd.OSError down
        code = exc.errno if isinstance(exc, rados.Error | rbd.OSError) else None
        if isinstance(exc, retryable) or code in (_ETIMEDOUT, _ESHUTDOWN):
            return StoreUnavailableError(detail)
        return StoreError(detail)

    def _parse(self, url: str) -> RbdRef | None:
        """(image, snapshot) of ``rbd://<this cluster's fsid>/<pool>/<image>/<snapshot>``.

        Without a configured ``fsid`` this connects to learn it (StoreUnavailableError if it cannot).
        """
        parts = parse_rbd_url(url)
        if parts is None or parts[1] != self.pool or parts[0] != self.fsid():
            return None
        return parts[2], parts[3]

    def _ref_for(self, image_id: str) -> RbdRef:
        return image_id, SNAPSHOT

    def _url_for(self, ref: RbdRef) -> str:
        return rbd_url(self.fsid(), self.pool, ref[0], ref[1])

    def _write(self, ref: RbdRef, source: SizedSource) -> None:
        """Write a new RBD image under a temporary name, snapshot and protect it, then rename it into place."""
        image_id = ref[0]
        _, rbd = self.modules()
        what = f"store {self.store_id}: adding {image_id}"
        temp = f"{image_id}{_TEMP_MARK}{uuid.uuid4().hex[:12]}"
        order = self.chunk_size.bit_length() - 1
        with self._ioctx(what) as ioctx:
            rbd.RBD().create(ioctx, temp, source.size, order=order, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
            try:
                with rbd.Image(ioctx, temp) as image:
                    self._write_blocks(image, source)
                    image.create_snap(SNAPSHOT)
                    image.protect_snap(SNAPSHOT)
                self._move_into_place(ioctx, temp, image_id, what)
            except BaseException:
                self._remove_quietly(ioctx, temp, what)
                raise

    def _write_blocks(self, image: Any, source: SizedSource) -> None:
        thin = self.config.thin_provisioning
        if thin and len(self._zeros) != self.chunk_size:
            self._zeros = bytes(self.chunk_size)
        offset = 0
        for block in source.blocks(self.chunk_size):
            # a new image reads as zeros: with thin provisioning an all-zero block stays unallocated
            if not (thin and block == self._zeros[: len(block)]):
                image.write(block, offset)
            offset += len(block)

    def _move_into_place(self, ioctx: Any, temp: str, image_id: str, what: str) -> None:
        """Rename the finished image to ``image_id``, removing an earlier copy (StoreInUseError if cloned)."""
        _, rbd = self.modules()
        try:
            rbd.RBD().rename(ioctx, temp, image_id)
        except rbd.ImageExists:
            self._remove_image(ioctx, image_id, SNAPSHOT, what)
            rbd.RBD().rename(ioctx, temp, image_id)

    def _remove_quietly(self, ioctx: Any, name: str, what: str) -> None:
        try:
            with self._mapped(what):
                self._remove_image(ioctx, name, SNAPSHOT, what)
        except StoreNotFoundError:
            pass
        except StoreError as exc:
            logger.warning("store %s: could not remove the unfinished RBD image %s: %s", self.store_id, name, exc)

    def _discard(self, ref: RbdRef) -> None:
        what = f"store {self.store_id}: removing {ref[0]}"
        with self._ioctx(what) as ioctx:
            self._remove_image(ioctx, ref[0], ref[1], what)

    def _size(self, ref: RbdRef) -> int:
        _, rbd = self.modules()
        what = f"store {self.store_id}: sizing {ref[0]}"
        with self._ioctx(what) as ioctx, rbd.Image(ioctx, ref[0], snapshot=ref[1], read_only=True) as image:
            return int(image.size())

    def _open(self, ref: RbdRef, offset: int, length: int | None) -> Opened:
        """``chunk_size`` reads of the image's snapshot; it is opened on first iteration (an unread read holds none)."""
        total = self._size(ref)
        count = byte_span(offset, length, total)
        chunks = self._read(ref, offset, count)
        return Opened(chunks, count, total, chunks.close)

    def _read(self, ref: RbdRef, offset: int, count: int) -> Generator[bytes, None, None]:
        _, rbd = self.modules()
        what = f"store {self.store_id}: reading {ref[0]}"
        with self._ioctx(what) as ioctx, rbd.Image(ioctx, ref[0], snapshot=ref[1], read_only=True) as image:
            end = offset + count
            while offset < end:
                chunk: bytes = image.read(offset, min(self.chunk_size, end - offset))
                if not chunk:
                    raise StoreError(f"{what}: the image ended {end - offset} bytes early")
                offset += len(chunk)
                yield chunk

    def _delete(self, ref: RbdRef) -> None:
        """Unprotect and remove the snapshot, then the image (StoreInUseError while clones of it exist)."""
        what = f"store {self.store_id}: deleting {ref[0]}"
        with self._ioctx(what) as ioctx:
            self._remove_image(ioctx, ref[0], ref[1], what)

    def _remove_image(self, ioctx: Any, name: str, snapshot: str, what: str) -> None:
        """Glance's order: unprotect and remove ``snapshot``, then the image (to the trash if snapshots remain)."""
        _, rbd = self.modules()
        with rbd.Image(ioctx, name) as image:
            try:
                image.unprotect_snap(snapshot)
            except rbd.ImageBusy as exc:
                raise StoreInUseError(f"{what}: {name}@{snapshot} has clones (flatten or remove them)") from exc
            except (rbd.InvalidArgument, rbd.ImageNotFound):
                pass  # not protected, or no such snapshot
            with contextlib.suppress(rbd.ImageNotFound):
                image.remove_snap(snapshot)
        try:
            rbd.RBD().remove(ioctx, name)
        except rbd.ImageHasSnapshots:
            logger.warning("store %s: RBD image %s has other snapshots; moving it to the trash", self.store_id, name)
            rbd.RBD().trash_move(ioctx, name, 0)
        except rbd.ImageBusy as exc:
            raise StoreInUseError(f"{what}: {name} is open elsewhere (watchers)") from exc
