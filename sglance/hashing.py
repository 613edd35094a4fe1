"""MD5 and the secure hash of files and streams, in one pass, with constant memory."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sglance.progress import Progress
from sglance.wire import FileDigest, MiB


class StreamDigest:
    """MD5, SHA-512 and optionally one more hashlib algorithm of bytes fed in order.

    MD5 runs on a second thread while the other digests run on this one (hashlib releases the GIL for large
    buffers), so two cores hash at once.
    """

    def __init__(self, extra_algorithm: str | None = None) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha512 = hashlib.sha512()
        self._extra = hashlib.new(extra_algorithm) if extra_algorithm not in (None, "sha512") else None
        self.extra_algorithm = extra_algorithm
        self.size = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sglance-md5")

    def update(self, chunk: bytes) -> None:
        """Feed the next bytes."""
        pending = self._pool.submit(self._md5.update, chunk)
        self._sha512.update(chunk)
        if self._extra is not None:
            self._extra.update(chunk)
        pending.result()
        self.size += len(chunk)

    def feed(self, chunks: Iterable[bytes], progress: Progress | None = None) -> StreamDigest:
        """Feed every chunk; returns self."""
        for chunk in chunks:
            self.update(chunk)
            if progress is not None:
                progress.advance(len(chunk))
        return self

    @property
    def md5(self) -> str:
        """Hex MD5 of the bytes so far."""
        return self._md5.hexdigest()

    @property
    def sha512(self) -> str:
        """Hex SHA-512 of the bytes so far."""
        return self._sha512.hexdigest()

    def hexdigest(self, algorithm: str) -> str | None:
        """Hex digest with ``algorithm`` if it is one of those computed, else None."""
        if algorithm == "sha512":
            return self.sha512
        if algorithm == "md5":
            return self.md5
        return self._extra.hexdigest() if self._extra is not None and algorithm == self.extra_algorithm else None

    def close(self) -> None:
        """Stop the MD5 thread."""
        self._pool.shutdown()


def read_chunks(path: Path, chunk_size: int = 8 * MiB, offset: int = 0) -> Iterable[bytes]:
    """The bytes of ``path`` from ``offset``, in chunks."""
    with path.open("rb") as file:
        file.seek(offset)
        while chunk := file.read(chunk_size):
            yield chunk


def digest_file(path: Path, progress: Progress | None = None, chunk_size: int = 8 * MiB) -> FileDigest:
    """MD5 and SHA-512 of ``path`` in one pass."""
    started = time.monotonic()
    digest = StreamDigest()
    try:
        digest.feed(read_chunks(path, chunk_size), progress)
    finally:
        digest.close()
    return FileDigest(digest.size, digest.md5, digest.sha512, time.monotonic() - started)


def hash_file(path: Path, algorithm: str, chunk_size: int = 8 * MiB) -> str:
    """Hex digest of ``path`` with any hashlib algorithm (for a server whose ``os_hash_algo`` is not SHA-512)."""
    digest = hashlib.new(algorithm)
    for chunk in read_chunks(path, chunk_size):
        digest.update(chunk)
    return digest.hexdigest()
