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

The bindings are imported on first use, never at module import. Where they are not importable (a virtualenv
beside Debian's python3-rbd), ``load_bindings`` loads the two extension modules, and only them, from
``bindings_dir`` (default: Debian's ``/usr/lib/python3/dist-packages``); in Lambda a layer puts them on the path
(docs/stores.md). One librados connection per driver serves every thread; each operation opens its own I/O context.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from shared.stores.base import (
    AddResult,
    StoreConfigError,
    StoreDriver,
    StoreError,
    StoreInUseError,
    StoreNotFoundError,
    StoreRangeError,
    StoreRead,
    StoreSizeMismatchError,
    StoreUnavailableError,
    key_from_secret,
)
from shared.stores.config import RbdStoreConfig
from shared.streams.digest import SizeCapExceededError, StreamDigest

if TYPE_CHECKING:
    from shared.stores.config import StoreConfig
    from shared.stores.registry import SecretReader

SCHEME = "rbd://"
SNAPSHOT = "snap"
# Where Debian's python3-rbd / python3-rados put their extension modules.
DEBIAN_BINDINGS_DIR = "/usr/lib/python3/dist-packages"
_TEMP_MARK = ".sglance-tmp-"
_ETIMEDOUT = 110
_ESHUTDOWN = 108

logger = logging.getLogger(__name__)
_load_lock = threading.Lock()


def _load_extension(name: str, directory: str) -> ModuleType:
    """The extension module ``name`` from ``directory`` (built for this interpreter), registered in sys.modules."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(directory, name + suffix)
        if os.path.isfile(path):
            break
    else:
        raise ImportError(f"no {name} extension module for this Python in {directory}")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_bindings(directory: str | None = None) -> tuple[ModuleType, ModuleType]:
    """The ``rados`` and ``rbd`` modules: imported as usual, else loaded from ``directory`` (default Debian's).

    Only the two extension modules are loaded from there (by file path); nothing is added to ``sys.path``, so the
    rest of that directory cannot shadow this interpreter's packages.

    Raises:
        StoreConfigError: they are neither importable nor in ``directory``, or librados/librbd cannot be loaded.
    """
    with _load_lock:
        modules: list[ModuleType] = []
        for name in ("rados", "rbd"):  # rados first: rbd imports it
            try:
                modules.append(importlib.import_module(name))
                continue
            except ImportError:
                pass
            where = directory or DEBIAN_BINDINGS_DIR
            try:
                modules.append(_load_extension(name, where))
            except (ImportError, OSError) as exc:
                raise StoreConfigError(
                    f"the Ceph bindings are missing: cannot import {name} ({exc}); install Debian's python3-rbd "
                    "(python3-rados, librbd1) or give the store a bindings_dir holding rados and rbd built for "
                    f"Python {sys.version_info.major}.{sys.version_info.minor}"
                ) from exc
        return modules[0], modules[1]


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


class RbdStore(StoreDriver):
    """Images as RBD images with a protected snapshot ``snap``, in one pool of one Ceph cluster."""

    type_name = "rbd"

    def __init__(
        self,
        store_id: str,
        config: RbdStoreConfig,
        key: str | Callable[[], tuple[str, str]] | None = None,
        *,
        bindings: tuple[ModuleType, ModuleType] | None = None,
    ) -> None:
        super().__init__(store_id)
        self.config = config
        self.pool = config.pool
        self.chunk_size = config.chunk_size
        # the cephx key, or a callable giving (user, key) on first use (a Secrets Manager read), or none
        self._key_source = key
        self._bindings = bindings
        self._lock = threading.Lock()
        self._cluster: Any = None
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
                return self._cluster
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
            self._fsid, self._cluster = fsid, cluster
            return cluster

    def fsid(self) -> str:
        """The cluster's fsid (configured, or asked from the cluster on first use)."""
        if self._fsid is None:
            self._connect()
        assert self._fsid is not None
        return self._fsid

    @contextlib.contextmanager
    def _ioctx(self, pool: str, what: str) -> Iterator[Any]:
        cluster = self._connect()
        rados, _ = self.modules()
        try:
            ioctx = cluster.open_ioctx(pool)
        except rados.ObjectNotFound:
            raise StoreConfigError(f"{what}: the pool {pool} does not exist") from None
        except rados.Error as exc:
            raise self._translate(exc, what) or StoreError(what) from exc
        try:
            yield ioctx
        finally:
            ioctx.close()

    def close(self) -> None:
        """Shut the librados connection down."""
        with self._lock:
            cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.shutdown()

    # -- errors ---------------------------------------------------------------------------------

    def _translate(self, exc: BaseException, what: str) -> StoreError | None:
        """The store error for a librados/librbd failure, or None for an exception that is not theirs."""
        if isinstance(exc, StoreError) or self._bindings is None:
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
        if isinstance(exc, retryable) or getattr(exc, "errno", None) in (_ETIMEDOUT, _ESHUTDOWN):
            return StoreUnavailableError(detail)
        return StoreError(detail)

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            error = self._translate(exc, what)
            if error is None:
                raise
            raise error from exc

    # -- locations ------------------------------------------------------------------------------

    def url_for(self, image_id: str) -> str:
        """The location of ``image_id`` in this store's pool."""
        return rbd_url(self.fsid(), self.pool, image_id)

    def owns(self, url: str) -> bool:
        """True for ``rbd://<this cluster's fsid>/<pool>/<image>/<snapshot>``.

        Without a configured ``fsid`` this connects to learn it; an unreachable cluster owns nothing.
        """
        parts = parse_rbd_url(url)
        if parts is None or parts[1] != self.pool:
            return False
        try:
            fsid = self.fsid()
        except StoreError as exc:
            logger.warning("store %s cannot learn its fsid: %s", self.store_id, exc)
            return False
        return parts[0] == fsid

    def _parse(self, url: str) -> tuple[str, str]:
        """(image, snapshot) of one of this store's URLs."""
        parts = parse_rbd_url(url)
        # self.fsid() raises when the cluster cannot be reached: a retryable failure, not a foreign URL
        if parts is None or parts[1] != self.pool or parts[0] != self.fsid():
            raise StoreConfigError(f"store {self.store_id}: not one of its locations: {url!r}")
        return parts[2], parts[3]

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

    # -- add ------------------------------------------------------------------------------------

    def add(self, image_id: str, chunks: Iterable[bytes], size: int, hashing_algo: str) -> AddResult:
        """Write a new RBD image under a temporary name, snapshot and protect it, then rename it into place."""
        if not image_id or "/" in image_id or "@" in image_id:
            raise StoreConfigError(f"store {self.store_id}: {image_id!r} cannot name an RBD image")
        _, rbd = self.modules()
        what = f"adding {image_id} to {self.store_id}"
        temp = f"{image_id}{_TEMP_MARK}{uuid.uuid4().hex[:12]}"
        order = self.chunk_size.bit_length() - 1
        with self._ioctx(self.pool, what) as ioctx:
            with self._translated(what):
                rbd.RBD().create(ioctx, temp, size, order=order, old_format=False, features=rbd.RBD_FEATURE_LAYERING)
            try:
                with self._translated(what), StreamDigest(hashing_algo, None, size) as digest:
                    with rbd.Image(ioctx, temp) as image:
                        self._write(image, chunks, size, digest)
                        image.create_snap(SNAPSHOT)
                        image.protect_snap(SNAPSHOT)
                    hashes = digest.finish()
                    self._move_into_place(ioctx, temp, image_id, what)
            except BaseException:
                self._remove_quietly(ioctx, temp, what)
                raise
        return AddResult(self.url_for(image_id), size, hashes.checksum, hashes.os_hash_value)

    def _blocks(self, chunks: Iterable[bytes], size: int, digest: StreamDigest) -> Iterator[bytes]:
        """The chunks, hashed, re-cut into ``chunk_size`` blocks (the last one shorter)."""
        block = self.chunk_size
        pending = bytearray()
        for chunk in chunks:
            if not chunk:
                continue
            try:
                digest.feed(chunk)
            except SizeCapExceededError:
                raise StoreSizeMismatchError(f"the chunks carry more than the announced {size} bytes") from None
            if not pending and len(chunk) == block:
                yield bytes(chunk)
                continue
            pending += chunk
            while len(pending) >= block:
                yield bytes(pending[:block])
                del pending[:block]
        if pending:
            yield bytes(pending)

    def _write(self, image: Any, chunks: Iterable[bytes], size: int, digest: StreamDigest) -> None:
        thin = self.config.thin_provisioning
        if thin and len(self._zeros) != self.chunk_size:
            self._zeros = bytes(self.chunk_size)
        offset = 0
        for block in self._blocks(chunks, size, digest):
            # a new image reads as zeros: with thin provisioning an all-zero block stays unallocated
            if not (thin and block == self._zeros[: len(block)]):
                image.write(block, offset)
            offset += len(block)
        if digest.size != size:
            raise StoreSizeMismatchError(f"the chunks ended after {digest.size} of {size} bytes")

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
            with self._translated(what):
                self._remove_image(ioctx, name, SNAPSHOT, what)
        except StoreNotFoundError:
            pass
        except StoreError as exc:
            logger.warning("store %s: could not remove the unfinished RBD image %s: %s", self.store_id, name, exc)

    # -- read -----------------------------------------------------------------------------------

    def _size(self, name: str, snapshot: str, what: str) -> int:
        _, rbd = self.modules()
        with (
            self._ioctx(self.pool, what) as ioctx,
            self._translated(what),
            rbd.Image(ioctx, name, snapshot=snapshot, read_only=True) as image,
        ):
            return int(image.size())

    def get(self, url: str, offset: int = 0, length: int | None = None) -> StoreRead:
        """Stream ``length`` bytes from ``offset`` of the image's snapshot, in ``chunk_size`` reads."""
        name, snapshot = self._parse(url)
        what = f"reading {url} from {self.store_id}"
        total = self._size(name, snapshot, what)
        if offset < 0 or (length is not None and length < 0):
            raise StoreRangeError(f"offset {offset}, length {length}")
        if offset >= total and not (offset == 0 and total == 0):
            raise StoreRangeError(f"offset {offset} is past the end of a {total}-byte image")
        count = total - offset if length is None else min(length, total - offset)
        return StoreRead(self._read(name, snapshot, offset, count, what), count, total, offset)

    def _read(self, name: str, snapshot: str, offset: int, count: int, what: str) -> Iterator[bytes]:
        # opened on first iteration, so a read that is never consumed holds no image open
        _, rbd = self.modules()
        with (
            self._ioctx(self.pool, what) as ioctx,
            self._translated(what),
            rbd.Image(ioctx, name, snapshot=snapshot, read_only=True) as image,
        ):
            end = offset + count
            while offset < end:
                chunk: bytes = image.read(offset, min(self.chunk_size, end - offset))
                if not chunk:
                    raise StoreError(f"{what}: the image ended {end - offset} bytes early")
                offset += len(chunk)
                yield chunk

    def get_size(self, url: str) -> int:
        """The size of the image's snapshot."""
        name, snapshot = self._parse(url)
        return self._size(name, snapshot, f"sizing {url} in {self.store_id}")

    # -- delete ---------------------------------------------------------------------------------

    def delete(self, url: str) -> None:
        """Unprotect and remove the snapshot, then the image (StoreInUseError while clones of it exist)."""
        name, snapshot = self._parse(url)
        what = f"deleting {url} from {self.store_id}"
        with self._ioctx(self.pool, what) as ioctx, self._translated(what):
            self._remove_image(ioctx, name, snapshot, what)

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
