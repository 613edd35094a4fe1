"""One pass over an image's bytes: size, md5 ``checksum``, the secure hash, and format inspection.

Each hash has its own worker thread fed through its own short queue (hashlib releases the GIL on buffers over
2047 bytes), so md5 and the secure hash run in parallel and neither waits for the other, nor for the inspection,
which runs on the calling thread while the workers hash: nothing is on the slower hash's critical path but its own
updates. The queues hold at most ``QUEUE_CHUNKS`` chunks each, so memory stays flat in the object's size (the
caller's chunk, plus up to ``QUEUE_CHUNKS`` + 1 chunks per hash); chunks must not be changed once fed.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from shared.streams.inspection import Inspection

# Chunks waiting for each hash worker (besides the one it is hashing): enough to ride over scheduling jitter.
QUEUE_CHUNKS = 2


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


class _Hasher:
    """One hash in its own thread: chunks go in through a bounded queue, in order; ``None`` ends the stream."""

    def __init__(self, hasher: hashlib._Hash, name: str) -> None:
        self.hasher = hasher
        self.error: BaseException | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self.hasher.update(chunk)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the feeding thread by close()
                    self.error = exc

    def put(self, chunk: bytes) -> None:
        """Hash ``chunk`` after those before it (blocks while the queue is full)."""
        self._queue.put(chunk)

    def close(self) -> None:
        """Wait until every chunk put was hashed and stop the thread; re-raises what an update raised."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if self.error is not None:
            raise self.error


class StreamDigest:
    """Feed chunks in order, then ``finish()``; use as a context manager so the threads always stop."""

    def __init__(self, hash_algo: str, inspector: ChunkInspector | None, size_cap: int, *, md5: bool = True) -> None:
        # md5=False: only the secure hash (``checksum`` is then empty), for writers whose backend reports the md5.
        self._algo = hash_algo
        self._inspector = inspector
        self._cap = size_cap
        self._size = 0
        self._secure = _Hasher(hashlib.new(hash_algo), f"digest-{hash_algo}")
        self._md5 = _Hasher(hashlib.md5(usedforsecurity=False), "digest-md5") if md5 else None

    def __enter__(self) -> StreamDigest:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close(raise_errors=False)

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk; raises ``SizeCapExceededError`` as soon as the cap is passed."""
        self._size += len(chunk)
        if self._size > self._cap:
            raise SizeCapExceededError(f"the image is larger than the {self._cap}-byte size cap")
        if not chunk:
            return
        if self._md5 is not None:
            self._md5.put(chunk)
        self._secure.put(chunk)
        if self._inspector is not None:
            self._inspector.feed(chunk)

    def _close(self, *, raise_errors: bool) -> None:
        for hasher in (self._md5, self._secure):
            if hasher is not None:
                try:
                    hasher.close()
                except BaseException:
                    if raise_errors:
                        raise

    def finish(self) -> Digest:
        """The results, once every chunk was fed."""
        self._close(raise_errors=True)
        return Digest(
            size=self._size,
            checksum=self._md5.hasher.hexdigest() if self._md5 is not None else "",
            os_hash_algo=self._algo,
            os_hash_value=self._secure.hasher.hexdigest(),
            inspection=self._inspector.finish() if self._inspector is not None else None,
        )
