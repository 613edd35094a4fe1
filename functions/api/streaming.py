"""Handing a request body from the event loop to a worker thread, a chunk at a time, with bounded memory."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator

_END = object()
# Chunks buffered between the request and the uploader (each up to the ASGI server's read size).
_DEPTH = 8
# How often a producer facing a full buffer looks again.
_POLL_S = 0.002


class ChunkPipe:
    """An iterator for the consumer thread, fed from async code; the consumer's exit unblocks the producer."""

    def __init__(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=_DEPTH)
        self.consumer_done = threading.Event()

    async def _put(self, item: object) -> bool:
        # Waits on the event loop, not in a worker thread: consumers hold the default executor's few threads
        # while they wait for chunks, so producers that also needed one deadlocked under concurrent uploads.
        while not self.consumer_done.is_set():
            try:
                self._queue.put_nowait(item)
                return True
            except queue.Full:
                await asyncio.sleep(_POLL_S)
        return False

    async def put(self, chunk: bytes) -> bool:
        """Queue a chunk; False once the consumer stopped (the rest of the body is not needed)."""
        return await self._put(chunk)

    async def close(self, error: BaseException | None = None) -> None:
        """End the stream, normally or with ``error`` raised in the consumer."""
        await self._put(_END if error is None else error)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item
