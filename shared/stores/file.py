"""The file store: one image per file in a directory (a local path in development, an EFS mount in Lambda).

An image is ``<data_dir>/<image id>``, located as ``file://<absolute path>`` (Glance's filesystem store URL).
``add`` writes a temporary file in the same directory (``.<image id>.<random>.tmp``), fsyncs it and renames it over
the image's name, so a reader sees the old copy or the new one, never a part, and a failed add leaves nothing.

Only regular files directly inside ``data_dir`` belong to the store: a URL naming any other path (``..``, a
sub-directory, another directory, a temporary file) is refused with ``StoreConfigError`` and never opened or
deleted, and a symlink planted in the directory is never followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from shared.stores.base import Opened, StoreCapabilities, StoreDriver, byte_span
from shared.stores.config import FileStoreConfig
from shared.stores.errors import StoreConfigError, StoreError, StoreNotFoundError, StoreUnavailableError

if TYPE_CHECKING:
    from shared.stores.config import StoreConfig
    from shared.stores.credentials import SecretReader
    from shared.stores.sized_source import SizedSource

SCHEME = "file://"
# errno values of a file system that may come back (EFS: network hiccups, throttling); the rest are final.
_TRANSIENT = {errno.EIO, errno.ETIMEDOUT, errno.EAGAIN, errno.ESTALE, errno.EINTR}


class FileStore(StoreDriver[str]):
    """Images as files in one directory (a location resolves to the file's path)."""

    type_name = "file"
    # temporary files are ".<image id>.<random>.tmp": no image id may look like one
    reserved_id_prefixes = (".",)

    def __init__(self, store_id: str, data_dir: str, chunk_size: int = 8 * 1024 * 1024) -> None:
        super().__init__(store_id, StoreCapabilities(ranged_reads=True))
        if not os.path.isabs(data_dir):
            raise StoreConfigError(f"store {store_id}: data_dir must be an absolute path, not {data_dir!r}")
        self.data_dir = os.path.normpath(data_dir)
        self.chunk_size = chunk_size

    @classmethod
    def from_config(cls, store_id: str, config: StoreConfig, secrets: SecretReader | None) -> FileStore:
        """The store for a ``FileStoreConfig`` (no credentials: the function's file system access is the grant)."""
        if not isinstance(config, FileStoreConfig):
            raise StoreConfigError(f"store {store_id}: a file store needs a file configuration")
        return cls(store_id, config.data_dir, config.chunk_size)

    def properties(self) -> dict[str, Any]:
        """Glance's filesystem store detail: the directory and the read chunk size."""
        return {"data_dir": self.data_dir, "chunk_size": self.chunk_size}

    # -- primitives -----------------------------------------------------------------------------

    def _parse(self, url: str) -> str | None:
        """The image file ``file://<data_dir>/<name>`` names, or None when it is not one of this store's."""
        if not url.startswith(SCHEME):
            return None
        path = url[len(SCHEME) :]
        # normpath folds "..", so a path climbing out of data_dir ends up with another parent
        if not os.path.isabs(path) or "\0" in path or os.path.normpath(path) != path:
            return None
        parent, name = os.path.split(path)
        if parent != self.data_dir or not name or name.startswith("."):
            return None
        return path

    def _ref_for(self, image_id: str) -> str:
        return os.path.join(self.data_dir, image_id)

    def _url_for(self, ref: str) -> str:
        return f"{SCHEME}{ref}"

    def _write(self, ref: str, source: SizedSource) -> None:
        """Write a temporary file, fsync it, and rename it over ``ref``."""
        name = os.path.basename(ref)
        os.makedirs(self.data_dir, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.data_dir, prefix=f".{name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in source.chunks():
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, ref)
        except BaseException:
            _unlink_quietly(temp)
            raise
        self._sync_dir()

    def _discard(self, ref: str) -> None:
        _unlink_quietly(ref)
        self._sync_dir()

    def _sync_dir(self) -> None:
        # the rename (or unlink) itself must survive a crash, not only the file's bytes
        try:
            dir_fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass  # some file systems (and EFS on some kernels) refuse fsync on a directory; the rename stands
        finally:
            os.close(dir_fd)

    def _stat(self, path: str) -> os.stat_result:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise StoreNotFoundError(f"store {self.store_id}: no file {path}") from None
        if not stat.S_ISREG(info.st_mode):
            # a symlink or a directory under an image's name is nothing this store wrote
            raise StoreNotFoundError(f"store {self.store_id}: {path} is not a regular file")
        return info

    def _open(self, ref: str, offset: int, length: int | None) -> Opened:
        """Read ``chunk_size`` pieces; the file is opened on first iteration (an unread read holds no descriptor)."""
        info = self._stat(ref)
        count = byte_span(offset, length, info.st_size)
        chunks = self._read(ref, info, offset, count)
        return Opened(chunks, count, info.st_size, chunks.close)

    def _read(self, path: str, info: os.stat_result, offset: int, count: int) -> Generator[bytes, None, None]:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise StoreNotFoundError(f"store {self.store_id}: {path} was deleted") from None
        with os.fdopen(fd, "rb", buffering=0) as source:
            if os.fstat(fd).st_ino != info.st_ino:
                raise StoreUnavailableError(f"store {self.store_id}: {path} was replaced while opening it")
            source.seek(offset)
            left = count
            while left > 0:
                chunk = source.read(min(self.chunk_size, left))
                if not chunk:
                    raise StoreError(f"store {self.store_id}: {path} ended {left} bytes early")
                left -= len(chunk)
                yield chunk

    def _size(self, ref: str) -> int:
        return self._stat(ref).st_size

    def _delete(self, ref: str) -> None:
        self._stat(ref)
        try:
            os.unlink(ref)
        except FileNotFoundError:
            raise StoreNotFoundError(f"store {self.store_id}: no file {ref}") from None
        self._sync_dir()

    def _backend_error(self, exc: Exception, what: str) -> StoreError | None:
        """OSErrors: retryable for a network file system's transient errnos, final otherwise."""
        if not isinstance(exc, OSError):
            return None
        if exc.errno in _TRANSIENT:
            return StoreUnavailableError(f"{what}: {exc.strerror}")
        return StoreError(f"{what}: {exc.strerror}")


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
