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
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from shared.stores.base import (
    AddResult,
    StoreConfigError,
    StoreDriver,
    StoreError,
    StoreNotFoundError,
    StoreRangeError,
    StoreRead,
    StoreSizeMismatchError,
    StoreUnavailableError,
)
from shared.stores.config import FileStoreConfig
from shared.streams.digest import SizeCapExceededError, StreamDigest

if TYPE_CHECKING:
    from shared.stores.config import StoreConfig
    from shared.stores.registry import SecretReader

SCHEME = "file://"
# errno values of a file system that may come back (EFS: network hiccups, throttling); the rest are final.
_TRANSIENT = {errno.EIO, errno.ETIMEDOUT, errno.EAGAIN, errno.ESTALE, errno.EINTR}


def _store_error(exc: OSError, what: str) -> StoreError:
    if exc.errno in _TRANSIENT:
        return StoreUnavailableError(f"{what}: {exc.strerror}")
    return StoreError(f"{what}: {exc.strerror}")


class FileStore(StoreDriver):
    """Images as files in one directory."""

    type_name = "file"

    def __init__(self, store_id: str, data_dir: str, chunk_size: int = 8 * 1024 * 1024) -> None:
        super().__init__(store_id)
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

    # -- locations ------------------------------------------------------------------------------

    def _path_for(self, image_id: str) -> str:
        if not image_id or "/" in image_id or "\0" in image_id or image_id.startswith("."):
            raise StoreConfigError(f"store {self.store_id}: {image_id!r} cannot name a file")
        return os.path.join(self.data_dir, image_id)

    def _path_of(self, url: str) -> str | None:
        """The image file ``url`` names, or None when it is not one of this store's."""
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

    def _owned_path(self, url: str) -> str:
        path = self._path_of(url)
        if path is None:
            raise StoreConfigError(f"store {self.store_id}: {url!r} is not a location in {self.data_dir}")
        return path

    def owns(self, url: str) -> bool:
        """True for ``file://<data_dir>/<name>`` URLs."""
        return self._path_of(url) is not None

    # -- add ------------------------------------------------------------------------------------

    def add(self, image_id: str, chunks: Iterable[bytes], size: int, hashing_algo: str) -> AddResult:
        """Write the image to a temporary file, fsync it, and rename it over ``<data_dir>/<image id>``."""
        path = self._path_for(image_id)
        try:
            os.makedirs(self.data_dir, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.data_dir, prefix=f".{image_id}.", suffix=".tmp")
        except OSError as exc:
            raise _store_error(exc, f"store {self.store_id}: cannot create a file in {self.data_dir}") from exc
        try:
            with os.fdopen(fd, "wb") as out, StreamDigest(hashing_algo, None, size) as digest:
                try:
                    for chunk in chunks:
                        if chunk:
                            digest.feed(chunk)
                            out.write(chunk)
                except SizeCapExceededError:
                    raise StoreSizeMismatchError(f"more than the announced {size} bytes") from None
                if digest.size != size:
                    raise StoreSizeMismatchError(f"{digest.size} bytes sent, {size} announced")
                out.flush()
                os.fsync(out.fileno())
                result = digest.finish()
            os.replace(temp, path)
        except BaseException as exc:
            _unlink_quietly(temp)
            if isinstance(exc, OSError):
                raise _store_error(exc, f"store {self.store_id}: writing {path}") from exc
            raise
        self._sync_dir()
        return AddResult(f"{SCHEME}{path}", size, result.checksum, result.os_hash_value)

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

    # -- read -----------------------------------------------------------------------------------

    def _stat(self, path: str) -> os.stat_result:
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            raise StoreNotFoundError(f"store {self.store_id}: no file {path}") from None
        except OSError as exc:
            raise _store_error(exc, f"store {self.store_id}: stat {path}") from exc
        if not stat.S_ISREG(info.st_mode):
            # a symlink or a directory under an image's name is nothing this store wrote
            raise StoreNotFoundError(f"store {self.store_id}: {path} is not a regular file")
        return info

    def get(self, url: str, offset: int = 0, length: int | None = None) -> StoreRead:
        """Stream ``length`` bytes from ``offset`` in ``chunk_size`` reads."""
        path = self._owned_path(url)
        info = self._stat(path)
        total = info.st_size
        if offset < 0 or (length is not None and length < 0):
            raise StoreRangeError(f"offset {offset}, length {length}")
        if offset >= total and not (offset == 0 and total == 0):
            raise StoreRangeError(f"offset {offset} is past the end of a {total}-byte image")
        count = total - offset if length is None else min(length, total - offset)
        return StoreRead(self._read(path, info, offset, count), count, total, offset)

    def _read(self, path: str, info: os.stat_result, offset: int, count: int) -> Iterator[bytes]:
        # opened on first iteration, so a read that is never consumed holds no file descriptor
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise StoreNotFoundError(f"store {self.store_id}: {path} was deleted") from None
        except OSError as exc:
            raise _store_error(exc, f"store {self.store_id}: open {path}") from exc
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

    def get_size(self, url: str) -> int:
        """The file's size."""
        return self._stat(self._owned_path(url)).st_size

    # -- delete ---------------------------------------------------------------------------------

    def delete(self, url: str) -> None:
        """Remove the image's file."""
        path = self._owned_path(url)
        self._stat(path)
        try:
            os.unlink(path)
        except FileNotFoundError:
            raise StoreNotFoundError(f"store {self.store_id}: no file {path}") from None
        except OSError as exc:
            raise _store_error(exc, f"store {self.store_id}: delete {path}") from exc
        self._sync_dir()

    def properties(self) -> dict[str, Any]:
        """Glance's filesystem store detail: the directory and the read chunk size."""
        return {"data_dir": self.data_dir, "chunk_size": self.chunk_size}


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
