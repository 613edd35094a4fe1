"""The bytes of one ``add``: the caller's chunks as a source of exactly the announced size, hashed as taken.

Drivers take the bytes the way their backend wants them: ``chunks()`` as they come (files), ``blocks(n)`` re-cut
(S3 parts, RBD writes), ``read_exactly(n)`` (Swift segments buffered for parallel upload) or a file-like
``Window`` (one request body). Whichever way, every byte is fed to the digest once, and:

* a stream that ends early raises ``StoreSizeMismatchError`` as soon as it ends;
* a stream that carries more raises it *before* its last announced byte is handed out, so no backend completes
  a write of a longer stream (the source pulls one chunk ahead at the end to know);
* a failure of the caller's iterator itself is raised as ``SourceFailedError``, which no driver's error mapping
  touches, and kept in ``error`` so that ``StoreDriver.add`` re-raises the iterator's own exception unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from shared.stores.errors import StoreSizeMismatchError
from shared.streams.blocks import rechunk

if TYPE_CHECKING:
    from shared.streams.digest import StreamDigest


class SourceFailedError(Exception):
    """The caller's chunk iterator raised (its exception is ``SizedSource.error``)."""


class SizedSource:
    """Exactly ``size`` bytes of ``chunks``, each chunk fed to ``digest`` once as it is taken."""

    def __init__(self, chunks: Iterable[bytes], size: int, digest: StreamDigest) -> None:
        self._chunks = iter(chunks)
        self.size = size
        self._digest = digest
        self.taken = 0
        self._ended = False
        self._rest = memoryview(b"")
        # the caller's iterator's own exception, when it raised
        self.error: BaseException | None = None

    def _pull(self) -> bytes | None:
        """The caller's next non-empty chunk, or None at its end."""
        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return None
            except Exception as exc:
                self.error = exc
                raise SourceFailedError(f"the chunk iterator raised {type(exc).__name__}") from exc
            if chunk:
                return chunk

    def _confirm_end(self) -> None:
        if self._pull() is not None:
            raise StoreSizeMismatchError(f"the chunks carry more than the announced {self.size} bytes")
        self._ended = True

    def _take(self) -> bytes | None:
        """The next chunk, counted and hashed; None once exactly ``size`` bytes were taken and nothing follows."""
        if self._ended:
            return None
        if self.taken == self.size:
            self._confirm_end()
            return None
        chunk = self._pull()
        if chunk is None:
            raise StoreSizeMismatchError(f"the chunks ended after {self.taken} of {self.size} bytes")
        self.taken += len(chunk)
        if self.taken > self.size:
            raise StoreSizeMismatchError(f"the chunks carry more than the announced {self.size} bytes")
        self._digest.feed(chunk)
        if self.taken == self.size:
            self._confirm_end()
        return chunk

    def chunks(self) -> Iterator[bytes]:
        """The remaining bytes as the caller's chunks (empty ones dropped)."""
        if self._rest:
            rest, self._rest = self._rest, memoryview(b"")
            yield bytes(rest)
        while (chunk := self._take()) is not None:
            yield chunk

    def blocks(self, block_size: int) -> Iterator[bytes]:
        """The remaining bytes in ``block_size`` blocks, the last one shorter."""
        return rechunk(self.chunks(), block_size)

    def read(self, limit: int) -> bytes:
        """Up to ``limit`` (> 0) bytes; b"" only at the announced end."""
        if not self._rest:
            chunk = self._take()
            if chunk is None:
                return b""
            if len(chunk) <= limit:
                return chunk
            self._rest = memoryview(chunk)
        piece, self._rest = self._rest[:limit], self._rest[limit:]
        return bytes(piece)

    def read_exactly(self, count: int) -> bytes:
        """The next ``count`` bytes (StoreSizeMismatchError if the chunks end first)."""
        pieces: list[bytes] = []
        left = count
        while left:
            piece = self.read(left)
            if not piece:
                raise StoreSizeMismatchError(f"the chunks ended after {self.taken} of {self.size} bytes")
            pieces.append(piece)
            left -= len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def finish(self) -> None:
        """Check that the chunks end at the announced size (taking any that remain)."""
        if self._rest or self._take() is not None:
            raise StoreSizeMismatchError(f"the chunks carry more than the announced {self.size} bytes")


class Window:
    """A file-like view of the next ``length`` bytes of a source: one request body (a PUT, a segment).

    HTTP clients wrap what a body's ``read`` raises (and may try to resend the body): ``failure`` keeps the
    original, ``started`` says whether anything was read, for a driver to raise the original instead.
    """

    def __init__(self, source: SizedSource, length: int, *, md5: bool = False) -> None:
        self._source = source
        self._left = length
        self.length = length
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self.started = False
        self.failure: BaseException | None = None

    def __len__(self) -> int:
        return self.length

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes of the window (all that is left when negative or None); b"" at its end."""
        self.started = True
        try:
            want = self._left if size is None or size < 0 else min(size, self._left)
            if want <= 0:
                return b""
            piece = self._source.read(want)
            if not piece:
                raise StoreSizeMismatchError(f"the chunks ended {self._left} bytes before the end of a request body")
        except BaseException as exc:
            self.failure = exc
            raise
        self._left -= len(piece)
        if self.md5 is not None:
            self.md5.update(piece)
        return piece
