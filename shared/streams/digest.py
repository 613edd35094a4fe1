"""One pass over an image's bytes: size, md5 ``checksum``, the secure hash, and format inspection.

The two hashes run in worker threads (hashlib releases the GIL on large buffers) while the calling thread
inspects the chunk and then fetches the next one, so reading, hashing and inspecting overlap.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from shared.streams.inspection import Inspection


class ChunkInspector(Protocol):
    """What a digest feeds the same chunks to (``shared.streams.inspection.ImageInspector``)."""

    def feed(self, chunk: bytes) -> None:
        """The next chunk of the image, in order."""

    def finish(self) -> Inspection:
        """The verdict, once every chunk was fed."""


class SizeCapExceededError(Exception):
    """The stream grew past the size cap."""


@dataclass(frozen=True)
class Digest:
    """What one pass over the bytes found."""

    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str
    inspection: Inspection | None


class StreamDigest:
    """Feed chunks in order, then ``finish()``; use as a context manager so the threads always stop."""

    def __init__(self, hash_algo: str, inspector: ChunkInspector | None, size_cap: int, *, md5: bool = True) -> None:
        # md5=False: only the secure hash (``checksum`` is then empty), for writers whose backend reports the md5.
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._secure = hashlib.new(hash_algo)
        self._algo = hash_algo
        self._inspector = inspector
        self._cap = size_cap
        self._size = 0
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="digest")
        self._pending: tuple[Future[None], ...] | None = None

    def __enter__(self) -> StreamDigest:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk; raises ``SizeCapExceededError`` as soon as the cap is passed."""
        self._size += len(chunk)
        if self._size > self._cap:
            raise SizeCapExceededError(f"the image is larger than the {self._cap}-byte size cap")
        self._wait()
        secure = self._pool.submit(self._secure.update, chunk)
        self._pending = (secure,) if self._md5 is None else (self._pool.submit(self._md5.update, chunk), secure)
        if self._inspector is not None:
            self._inspector.feed(chunk)

    def _wait(self) -> None:
        if self._pending is not None:
            for future in self._pending:
                future.result()
            self._pending = None

    def finish(self) -> Digest:
        """The results, once every chunk was fed."""
        self._wait()
        return Digest(
            size=self._size,
            checksum=self._md5.hexdigest() if self._md5 is not None else "",
            os_hash_algo=self._algo,
            os_hash_value=self._secure.hexdigest(),
            inspection=self._inspector.finish() if self._inspector is not None else None,
        )
