"""The StoreDriver template on an in-memory driver: what the base class owns, whatever the backend.

The contract suite (tests/stores) runs the same operations against the real backends; these tests hold the
template's own decisions with a driver whose primitives are a dict, so each one can be bent: a backend that
reports a wrong md5, one that holds no ranged reads, one whose SDK raises its own exceptions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from shared.stores.base import AddResult, Opened, StoreCapabilities, StoreDriver
from shared.stores.config import StoreConfig
from shared.stores.credentials import SecretReader
from shared.stores.errors import (
    StoreConfigError,
    StoreError,
    StoreIntegrityError,
    StoreNotFoundError,
    StoreRangeError,
    StoreSizeMismatchError,
    StoreUnavailableError,
)
from shared.stores.sized_source import SizedSource

DATA = bytes(range(256)) * 40  # 10 240 bytes


class BackendDown(Exception):  # noqa: N818 - stands for an SDK's own exception class
    """What the fake backend's "SDK" raises."""


class SourceWentAway(Exception):  # noqa: N818 - stands for the caller's own exception
    """What a caller's chunk iterator raises."""


class MemoryStore(StoreDriver[str]):
    """A store in a dict; ``reported_md5`` and ``fail_writes`` bend the backend."""

    type_name = "memory"
    reserved_id_chars = "@"

    def __init__(self, capabilities: StoreCapabilities | None = None) -> None:
        super().__init__("mem", capabilities or StoreCapabilities(large_object_size=4096, presigned_gets=True))
        self.objects: dict[str, bytes] = {}
        self.large_writes = 0
        self.reported_md5: str | None = None
        self.fail_writes = False
        self.closed_reads = 0

    @classmethod
    def from_config(cls, store_id: str, config: StoreConfig, secrets: SecretReader | None) -> MemoryStore:
        raise NotImplementedError

    def _parse(self, url: str) -> str | None:
        return url.removeprefix("mem://") if url.startswith("mem://") else None

    def _ref_for(self, image_id: str) -> str:
        return image_id

    def _url_for(self, ref: str) -> str:
        return f"mem://{ref}"

    def _write(self, ref: str, source: SizedSource) -> str | None:
        if self.fail_writes:
            raise BackendDown("the backend is down")
        self.objects[ref] = b"".join(source.chunks())
        return self.reported_md5

    def _write_large(self, ref: str, source: SizedSource) -> str | None:
        self.large_writes += 1
        self.objects[ref] = b"".join(source.blocks(1000))
        return None

    def _discard(self, ref: str) -> None:
        self.objects.pop(ref, None)

    def _open(self, ref: str, offset: int, length: int | None) -> Opened:
        data = self._object(ref)
        piece = data[offset:] if length is None else data[offset : offset + length]
        if offset >= len(data) and data:
            raise StoreRangeError("past the end")

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(piece), 1000):
                yield piece[start : start + 1000]

        return Opened(chunks(), len(piece), None if offset == 0 and length is None else len(data), self._closed)

    def _closed(self) -> None:
        self.closed_reads += 1

    def _object(self, ref: str) -> bytes:
        if ref not in self.objects:
            raise StoreNotFoundError(ref)
        return self.objects[ref]

    def _size(self, ref: str) -> int:
        return len(self._object(ref))

    def _delete(self, ref: str) -> None:
        self._object(ref)
        del self.objects[ref]

    def _presign_get(self, ref: str, ttl_seconds: int) -> str:
        return f"https://memory.example/{ref}?ttl={ttl_seconds}"

    def _backend_error(self, exc: Exception, what: str) -> StoreError | None:
        return StoreUnavailableError(f"{what}: {exc}") if isinstance(exc, BackendDown) else None


def chunks_of(data: bytes, size: int = 999) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def add(store: MemoryStore, data: bytes, image_id: str = "img") -> AddResult:
    return store.add(image_id, chunks_of(data), len(data), "sha256")


# -- add ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, len(DATA)], ids=["empty", "one", "below-large", "large", "big"])
def test_add__hashes_exactly_the_bytes_and_takes_the_declared_large_path(size: int) -> None:
    store = MemoryStore()

    result = add(store, DATA[:size])

    assert (result.size, result.checksum, result.multihash) == (
        size,
        hashlib.md5(DATA[:size], usedforsecurity=False).hexdigest(),
        hashlib.sha256(DATA[:size]).hexdigest(),
    )
    assert store.objects["img"] == DATA[:size]
    assert store.large_writes == (1 if size >= 4096 else 0)


@pytest.mark.parametrize("announced", [len(DATA) - 1, len(DATA) + 1, 0], ids=["fewer", "more", "zero"])
def test_add__with_another_size_than_sent__raises_size_mismatch_and_leaves_nothing(announced: int) -> None:
    store = MemoryStore()

    with pytest.raises(StoreSizeMismatchError):
        store.add("img", chunks_of(DATA), announced, "sha256")

    assert store.objects == {}


def test_add__a_longer_stream__fails_before_its_last_announced_byte_is_handed_out() -> None:
    taken: list[int] = []

    class Watching(MemoryStore):
        def _write(self, ref: str, source: SizedSource) -> str | None:
            for chunk in source.chunks():
                taken.append(len(chunk))
            return None

    with pytest.raises(StoreSizeMismatchError):
        Watching(StoreCapabilities()).add("img", iter([b"a" * 10, b"b" * 10, b"c"]), 20, "sha256")

    assert taken == [10]


def test_add__when_the_chunks_fail__raises_their_own_error_and_leaves_nothing() -> None:
    store = MemoryStore()

    def failing() -> Iterator[bytes]:
        yield DATA[:1000]
        raise SourceWentAway("the source store went away")

    with pytest.raises(SourceWentAway):
        store.add("img", failing(), len(DATA), "sha256")

    assert store.objects == {}


def test_add__a_reported_md5_that_differs__raises_integrity_and_discards_the_object() -> None:
    store = MemoryStore(StoreCapabilities())
    store.reported_md5 = "0" * 32

    with pytest.raises(StoreIntegrityError):
        add(store, DATA[:100])

    assert store.objects == {}


def test_add__a_store_declaring_stored_md5__takes_the_backends_md5_as_the_checksum() -> None:
    store = MemoryStore(StoreCapabilities(stored_md5=True))
    store.reported_md5 = '"' + hashlib.md5(b"what the backend stored", usedforsecurity=False).hexdigest() + '"'

    result = add(store, DATA[:100])

    assert result.checksum == hashlib.md5(b"what the backend stored", usedforsecurity=False).hexdigest()
    assert result.multihash == hashlib.sha256(DATA[:100]).hexdigest()


@pytest.mark.parametrize("reported", [None, "", "not-an-md5"])
def test_add__a_store_declaring_stored_md5_without_one__raises_integrity_and_discards(reported: str | None) -> None:
    store = MemoryStore(StoreCapabilities(stored_md5=True))
    store.reported_md5 = reported

    with pytest.raises(StoreIntegrityError):
        add(store, DATA[:100])

    assert store.objects == {}


def test_add__the_backends_own_exception__is_mapped_by_the_drivers_table() -> None:
    store = MemoryStore()
    store.fail_writes = True

    with pytest.raises(StoreUnavailableError, match="adding img"):
        add(store, DATA[:10])


@pytest.mark.parametrize("image_id", ["", "a/b", "nul\0", "at@sign"])
def test_add__an_id_the_store_cannot_name__is_a_config_error(image_id: str) -> None:
    with pytest.raises(StoreConfigError):
        add(MemoryStore(), b"x", image_id=image_id)


# -- get and the rest ----------------------------------------------------------------------------------


def test_get__reports_the_span_and_maps_nothing_it_need_not() -> None:
    store = MemoryStore()
    url = add(store, DATA).url

    read = store.get(url, 100, 2000)

    assert (read.offset, read.length, read.total_size) == (100, 2000, len(DATA))
    assert b"".join(read.chunks) == DATA[100:2100]
    assert store.closed_reads == 1


def test_get__closed_before_reading__releases_the_backend_stream_and_yields_nothing() -> None:
    store = MemoryStore()
    read = store.get(add(store, DATA).url)

    read.close()

    assert store.closed_reads == 1
    assert list(read.chunks) == []


@pytest.mark.parametrize(("offset", "length"), [(-1, None), (0, -1)])
def test_get__a_negative_offset_or_length__is_a_range_error(offset: int, length: int | None) -> None:
    store = MemoryStore()

    with pytest.raises(StoreRangeError):
        store.get(add(store, DATA).url, offset, length)


def test_get__of_zero_bytes__checks_the_offset_against_the_size() -> None:
    store = MemoryStore()
    url = add(store, DATA).url

    assert store.get(url, 10, 0).length == 0
    with pytest.raises(StoreRangeError):
        store.get(url, len(DATA), 0)


def test_get__a_range_of_a_store_without_ranged_reads__is_a_range_error() -> None:
    store = MemoryStore(StoreCapabilities(ranged_reads=False))
    url = add(store, DATA).url

    assert b"".join(store.get(url).chunks) == DATA
    with pytest.raises(StoreRangeError, match="no byte ranges"):
        store.get(url, 1)


def test_get__a_range_the_backend_ignored__is_an_error_not_wrong_bytes() -> None:
    class Ignoring(MemoryStore):
        def _open(self, ref: str, offset: int, length: int | None) -> Opened:
            data = self._object(ref)
            return Opened(iter([data]), len(data), None, self._closed)

    store = Ignoring()
    url = add(store, DATA).url

    with pytest.raises(StoreError, match="ignored the range"):
        store.get(url, 5, 10)
    assert store.closed_reads == 1


def test_foreign_urls__are_refused_by_every_operation() -> None:
    store = MemoryStore()

    for call in (store.get, store.get_size, store.delete):
        with pytest.raises(StoreConfigError):
            call("s3://elsewhere/img")
    assert not store.owns("s3://elsewhere/img")
    assert store.owns(store.url_for("img"))


def test_presign_get__follows_the_declared_capability() -> None:
    capable, incapable = MemoryStore(), MemoryStore(StoreCapabilities())
    url = add(capable, b"x").url
    add(incapable, b"x")

    assert capable.presign_get(url, 60) == "https://memory.example/img?ttl=60"
    with pytest.raises(StoreConfigError, match="no presigned GETs"):
        incapable.presign_get(url, 60)
