"""StreamDigest: md5 and the secure hash in their own threads give hashlib's values, in order, and always stop."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from shared.streams import digest as digest_module
from shared.streams.digest import SizeCapExceededError, StreamDigest
from shared.streams.inspection import ImageInspector

MiB = 1024 * 1024


def _digest_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("digest-")]


def _chunks() -> list[bytes]:
    # Sizes around hashlib's GIL threshold (2047 bytes), empty ones, and more chunks than the queues hold.
    sizes = [0, 1, 2047, 2048, 3 * MiB + 5, 0, 64 * 1024, *([MiB] * (3 * digest_module.QUEUE_CHUNKS + 2)), 7]
    return [os.urandom(n) for n in sizes]


@pytest.mark.parametrize("algo", ["sha512", "sha256"])
def test_hashes_size_and_inspection_match_one_pass_of_hashlib(algo: str) -> None:
    chunks = _chunks()
    data = b"".join(chunks)
    inspector = ImageInspector("raw", "bare")
    with StreamDigest(algo, inspector, size_cap=len(data)) as stream:
        for chunk in chunks:
            stream.feed(chunk)
        assert stream.size == len(data)
        result = stream.finish()
    assert result.size == len(data)
    assert result.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert result.os_hash_algo == algo
    assert result.os_hash_value == hashlib.new(algo, data).hexdigest()
    assert result.inspection is not None
    assert result.inspection.error is None
    assert result.inspection.virtual_size == len(data)
    assert _digest_threads() == []


def test_without_md5_only_the_secure_hash_runs() -> None:
    chunks = _chunks()
    with StreamDigest("sha512", None, size_cap=10**12, md5=False) as stream:
        assert [t.name for t in _digest_threads()] == ["digest-sha512"]
        for chunk in chunks:
            stream.feed(chunk)
        result = stream.finish()
    assert result.checksum == ""
    assert result.os_hash_value == hashlib.sha512(b"".join(chunks)).hexdigest()
    assert result.inspection is None


def test_an_empty_stream_has_the_hashes_of_nothing() -> None:
    with StreamDigest("sha512", None, size_cap=0) as stream:
        result = stream.finish()
    assert (result.size, result.checksum) == (0, hashlib.md5(b"", usedforsecurity=False).hexdigest())
    assert result.os_hash_value == hashlib.sha512(b"").hexdigest()


def test_the_size_cap_stops_the_stream_and_the_threads() -> None:
    with pytest.raises(SizeCapExceededError), StreamDigest("sha512", None, size_cap=3 * MiB) as stream:
        for _ in range(10):
            stream.feed(bytes(MiB))
    assert _digest_threads() == []


def test_an_error_while_feeding_still_stops_the_threads() -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), StreamDigest("sha512", None, size_cap=10**12) as stream:
        for _ in range(3 * digest_module.QUEUE_CHUNKS):
            stream.feed(bytes(MiB))
        raise Boom
    assert _digest_threads() == []


def test_a_failing_update_is_raised_by_finish() -> None:
    class Failing:
        def update(self, chunk: bytes) -> None:
            raise ValueError("no")

        def hexdigest(self) -> str:
            return ""

    with StreamDigest("sha512", None, size_cap=10**12) as stream:
        stream._secure.close()
        stream._secure = digest_module._Hasher(Failing(), "digest-failing")  # type: ignore[arg-type]
        for _ in range(3 * digest_module.QUEUE_CHUNKS):
            stream.feed(bytes(4096))
        with pytest.raises(ValueError, match="no"):
            stream.finish()
    assert _digest_threads() == []
