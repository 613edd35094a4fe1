"""A chunk stream re-cut into fixed-size blocks (S3 multipart parts, RBD object-sized writes)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def rechunk(chunks: Iterable[bytes], block_size: int) -> Iterator[bytes]:
    """``chunks`` as ``block_size`` blocks, the last one shorter (nothing for an empty stream; empty chunks skipped).

    A chunk of exactly ``block_size`` bytes that starts on a block boundary passes through without a copy; at
    most one block is held back.
    """
    pending = bytearray()
    for chunk in chunks:
        if not chunk:
            continue
        if not pending and len(chunk) == block_size:
            yield chunk
            continue
        pending += chunk
        while len(pending) >= block_size:
            with memoryview(pending) as view:
                block = bytes(view[:block_size])
            del pending[:block_size]
            yield block
    if pending:
        yield bytes(pending)
