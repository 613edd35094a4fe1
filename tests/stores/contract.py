"""The contract every store driver passes: one suite, run against each backend by a small subclass.

Modelled on glance_store's functional base class: the same tests, written once against the ``StoreDriver``
interface, run against S3 (moto server), Ceph RGW and Swift (real servers on loopback) and the filesystem. A
backend's test module subclasses ``StoreContract`` (its name must start with ``Test``) and provides:

``driver`` (fixture)
    A ``StoreDriver`` on an empty namespace (bucket, container, directory) of its own, closed after the test.
``large_driver`` (fixture)
    The same store configured so that an image of ``large_size`` bytes takes the large-object path (S3 multipart,
    Swift SLO) with several parts. A backend without one (the filesystem) skips: ``pytest.skip(...)``.
``inventory`` (fixture)
    A callable returning everything the backend holds in that namespace, as names: objects, and also what an
    interrupted write can leave (unfinished multipart uploads, segments, temporary files). "Nothing is left
    behind" is checked as ``inventory()`` unchanged, so it must see what the driver itself would not.
``foreign_urls`` (fixture, optional)
    More URLs the driver must not claim with ``owns()``, besides ``FOREIGN_URLS`` (other schemes and namespaces):
    the near misses that matter to the backend (another bucket, a path outside the directory).
``secrets`` (fixture, optional)
    Credential strings of the store's configuration that must never appear in a URL or in ``properties()``.

What is held:

* ``add`` then ``get`` returns the bytes sent, for 0, 1, odd and a few MiB worth of bytes in chunks of odd sizes;
  ``AddResult`` carries the size, the md5 and the multihash of exactly those bytes (compared with hashlib's).
* An announced size that the chunks do not match, in either direction, raises ``StoreSizeMismatchError`` and leaves
  nothing; so does a chunk iterator that fails midway, and then the iterator's own exception reaches the caller
  unchanged (a replication reading from another store must still see that store's ``StoreUnavailableError``).
* Ranged reads: the start, the middle, the last byte, to the end, a length past the end (clipped); an offset past
  the end raises ``StoreRangeError``. ``StoreRead`` reports offset, length and total size.
* ``get_size``; ``delete`` then ``get``/``get_size``/``delete`` raise ``StoreNotFoundError``; a URL that was never
  written raises it too.
* ``add`` of the same image twice replaces the first copy and leaves one copy.
* The large-object path: a round trip, ranged reads across part boundaries, size mismatches and a failing iterator
  leaving nothing (no parts, no segments, no unfinished upload), delete removing everything.
* URLs carry no credentials; ``owns()`` is true for the driver's own URLs and false for foreign ones.
* Two images added at once from two threads through one driver both round-trip (drivers are shared per process).
* What the driver declares in ``capabilities`` holds: a store with presigned GETs gives a URL that serves the
  bytes over plain HTTP, one without refuses; a store with a large-object path takes it for ``large_size``.
* A read closed before its chunks are read releases the backend's stream and yields nothing.

Every test reads streams to the end (``read_all``), so no connection is left open.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests

from shared.stores.base import AddResult, StoreDriver, StoreRead
from shared.stores.errors import StoreConfigError, StoreNotFoundError, StoreRangeError, StoreSizeMismatchError

MiB = 1024 * 1024
# URLs no driver may claim, whatever its backend: other schemes, namespaces no test store uses, no URL at all.
FOREIGN_URLS = [
    "s3://sglance-contract-foreign-bucket/images/0d0c3c5e-0000-4000-8000-000000000000",
    "file:///sglance-contract-foreign/0d0c3c5e-0000-4000-8000-000000000000",
    "swift+https://swift.invalid/v1/AUTH_x/glance/0d0c3c5e-0000-4000-8000-000000000000",
    "https://example.invalid/images/0d0c3c5e-0000-4000-8000-000000000000",
    "",
]
Inventory = Callable[[], set[str]]


class SourceFailedError(Exception):
    """Raised by a chunk iterator midway, standing for a source that went away."""


def chunked(data: bytes, chunk_size: int) -> Iterator[bytes]:
    """``data`` in chunks of ``chunk_size`` bytes (the last one shorter)."""
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


def failing_after(data: bytes, chunk_size: int, fail_at: int) -> Iterator[bytes]:
    """``data`` in chunks, raising ``SourceFailedError`` once at least ``fail_at`` bytes were produced."""
    produced = 0
    for chunk in chunked(data, chunk_size):
        if produced >= fail_at:
            raise SourceFailedError(f"source failed after {produced} bytes")
        produced += len(chunk)
        yield chunk
    raise SourceFailedError("source failed at its end")


def read_all(read: StoreRead) -> bytes:
    """Every byte of an open read (which closes it)."""
    return b"".join(read.chunks)


def new_image_id() -> str:
    """A fresh image id, as the API makes them."""
    return str(uuid.uuid4())


def expected(data: bytes, algo: str = "sha512") -> tuple[int, str, str]:
    """(size, md5, multihash) hashlib computes for ``data``."""
    return len(data), hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.new(algo, data).hexdigest()


def sibling_url(result: AddResult, image_id: str, other_id: str) -> str:
    """The URL the driver would give ``other_id``: ``result.url`` with its image id swapped."""
    assert result.url.count(image_id) == 1, "a location URL names its image id once"
    return result.url.replace(image_id, other_id)


class StoreContract:
    """The store driver contract; subclass as ``Test<Backend>Store`` and provide the fixtures named above."""

    # Large enough for three parts of the 5 MiB minimum S3 part size (the last one short and odd).
    large_size = 2 * 5 * MiB + 12_345
    hashing_algo = "sha512"

    @pytest.fixture
    def foreign_urls(self) -> list[str]:
        """The backend's near misses (another bucket, a path outside the directory); ``FOREIGN_URLS`` apply too."""
        return []

    @pytest.fixture
    def secrets(self) -> list[str]:
        """Credential strings of the store's configuration (none by default)."""
        return []

    # -- helpers ---------------------------------------------------------------------------------

    def add(self, driver: StoreDriver, data: bytes, chunk_size: int = 65_537, image_id: str | None = None) -> AddResult:
        """Add ``data`` as a fresh image (or ``image_id``) in chunks of ``chunk_size``."""
        return driver.add(image_id or new_image_id(), chunked(data, chunk_size), len(data), self.hashing_algo)

    def assert_round_trip(self, driver: StoreDriver, result: AddResult, data: bytes) -> None:
        """``result`` describes ``data`` and the store gives ``data`` back."""
        assert (result.size, result.checksum, result.multihash) == expected(data, self.hashing_algo)
        read = driver.get(result.url)
        assert (read.offset, read.length, read.total_size) == (0, len(data), len(data))
        assert read_all(read) == data
        assert driver.get_size(result.url) == len(data)

    # -- add / get ----------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("size", "chunk_size"),
        [(0, 1024), (1, 1024), (7, 3), (65_537, 4096), (1_000_003, 65_537), (3 * MiB + 5, 1 * MiB)],
        ids=["empty", "one-byte", "odd-tiny-chunks", "odd", "odd-1MB", "3MiB-odd"],
    )
    def test_add__then_get__returns_the_bytes_and_their_hashes(
        self, driver: StoreDriver, size: int, chunk_size: int
    ) -> None:
        data = os.urandom(size)

        result = self.add(driver, data, chunk_size)

        self.assert_round_trip(driver, result, data)

    def test_add__with_sha256__reports_that_multihash(self, driver: StoreDriver) -> None:
        data = os.urandom(10_000)

        result = driver.add(new_image_id(), chunked(data, 999), len(data), "sha256")

        assert result.multihash == hashlib.sha256(data).hexdigest()
        assert result.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()

    def test_add__with_empty_chunks_between__ignores_them(self, driver: StoreDriver) -> None:
        data = os.urandom(5000)
        chunks = [b"", data[:1000], b"", b"", data[1000:], b""]

        result = driver.add(new_image_id(), iter(chunks), len(data), self.hashing_algo)

        self.assert_round_trip(driver, result, data)

    @pytest.mark.parametrize(
        "announced_delta", [1, -1, 100_000, -4999], ids=["one-more", "one-fewer", "many-more", "all-but-one-fewer"]
    )
    def test_add__with_another_size_than_sent__raises_size_mismatch_and_leaves_nothing(
        self, driver: StoreDriver, inventory: Inventory, announced_delta: int
    ) -> None:
        # announced = sent + delta: a positive delta announces more than is sent.
        data = os.urandom(5000)
        before = inventory()

        with pytest.raises(StoreSizeMismatchError):
            driver.add(new_image_id(), chunked(data, 1000), len(data) + announced_delta, self.hashing_algo)

        assert inventory() == before

    def test_add__when_the_chunks_fail_midway__raises_their_error_and_leaves_nothing(
        self, driver: StoreDriver, inventory: Inventory
    ) -> None:
        data = os.urandom(300_000)
        before = inventory()

        with pytest.raises(SourceFailedError):
            driver.add(new_image_id(), failing_after(data, 50_000, 150_000), len(data), self.hashing_algo)

        assert inventory() == before

    def test_add__twice_for_one_image__replaces_the_first_copy(self, driver: StoreDriver, inventory: Inventory) -> None:
        image_id = new_image_id()
        first = self.add(driver, os.urandom(20_000), image_id=image_id)
        held = inventory()
        data = os.urandom(7_001)

        second = self.add(driver, data, image_id=image_id)

        self.assert_round_trip(driver, second, data)
        assert driver.get_size(first.url) == len(data)
        assert inventory() == held

    def test_add__from_two_threads_at_once__stores_both(self, driver: StoreDriver) -> None:
        bodies = [os.urandom(1_500_000), os.urandom(1_000_001)]
        results: list[AddResult | BaseException] = [RuntimeError("not run")] * 2
        start = threading.Barrier(2)

        def run(n: int) -> None:
            try:
                start.wait(10)
                results[n] = self.add(driver, bodies[n], 100_000)
            except BaseException as exc:  # handed to the main thread, which fails the test with it
                results[n] = exc

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

        for result, data in zip(results, bodies, strict=True):
            if isinstance(result, BaseException):
                raise result
            self.assert_round_trip(driver, result, data)

    # -- ranged reads ---------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("offset", "length"),
        [
            (0, 1),
            (0, 1000),
            (123_456, 77_777),
            (299_999, 1),
            (299_999, None),
            (100_000, None),
            (250_000, 100_000),
            (0, None),
            (1, 299_999),
        ],
        ids=[
            "first-byte",
            "start",
            "middle",
            "last-byte",
            "last-byte-to-end",
            "to-end",
            "past-end-clipped",
            "all",
            "all-but-first",
        ],
    )
    def test_get__a_range__returns_those_bytes(self, driver: StoreDriver, offset: int, length: int | None) -> None:
        data = os.urandom(300_000)
        result = self.add(driver, data)

        read = driver.get(result.url, offset, length)

        want = data[offset : None if length is None else offset + length]
        assert (read.offset, read.length, read.total_size) == (offset, len(want), len(data))
        assert read_all(read) == want

    @pytest.mark.parametrize("offset", [1000, 1001, 10**9], ids=["at-end", "one-past", "far-past"])
    def test_get__an_offset_past_the_end__raises_range_error(self, driver: StoreDriver, offset: int) -> None:
        result = self.add(driver, os.urandom(1000))

        with pytest.raises(StoreRangeError):
            read_all(driver.get(result.url, offset))

    def test_get__of_an_empty_image_from_the_start__is_empty(self, driver: StoreDriver) -> None:
        result = self.add(driver, b"")

        read = driver.get(result.url, 0, 10)

        assert (read.length, read.total_size, read_all(read)) == (0, 0, b"")

    # -- size, delete, not found -----------------------------------------------------------------

    def test_get_size__is_the_size_added(self, driver: StoreDriver) -> None:
        result = self.add(driver, os.urandom(12_345))

        assert driver.get_size(result.url) == 12_345

    def test_delete__then_reads__raise_not_found(self, driver: StoreDriver, inventory: Inventory) -> None:
        before = inventory()
        result = self.add(driver, os.urandom(4096))

        driver.delete(result.url)

        with pytest.raises(StoreNotFoundError):
            read_all(driver.get(result.url))
        with pytest.raises(StoreNotFoundError):
            driver.get_size(result.url)
        assert inventory() == before

    def test_delete__twice__raises_not_found(self, driver: StoreDriver) -> None:
        result = self.add(driver, b"bytes")
        driver.delete(result.url)

        with pytest.raises(StoreNotFoundError):
            driver.delete(result.url)

    def test_never_written_url__raises_not_found_everywhere(self, driver: StoreDriver) -> None:
        image_id = new_image_id()
        url = sibling_url(self.add(driver, b"x", image_id=image_id), image_id, new_image_id())

        with pytest.raises(StoreNotFoundError):
            read_all(driver.get(url))
        with pytest.raises(StoreNotFoundError):
            driver.get_size(url)
        with pytest.raises(StoreNotFoundError):
            driver.delete(url)

    def test_delete__leaves_other_images(self, driver: StoreDriver) -> None:
        keep, drop = self.add(driver, b"keep me"), self.add(driver, b"drop me")

        driver.delete(drop.url)

        assert read_all(driver.get(keep.url)) == b"keep me"

    def test_get__closed_before_its_chunks_are_read__yields_nothing(self, driver: StoreDriver) -> None:
        result = self.add(driver, os.urandom(300_000))
        read = driver.get(result.url)

        read.close()

        assert list(read.chunks) == []
        assert read_all(driver.get(result.url, 299_999)) == read_all(driver.get(result.url))[-1:]

    # -- capabilities ---------------------------------------------------------------------------

    def test_presign_get__of_a_store_declaring_it__serves_the_bytes_over_http(self, driver: StoreDriver) -> None:
        if not driver.capabilities.presigned_gets:
            pytest.skip(f"{type(driver).__name__} declares no presigned GETs")
        data = os.urandom(10_000)
        result = self.add(driver, data)

        response = requests.get(driver.presign_get(result.url, 60), headers={"Range": "bytes=10-19"}, timeout=30)

        assert response.status_code == 206
        assert response.content == data[10:20]

    def test_presign_get__of_a_store_without_it__is_refused(self, driver: StoreDriver) -> None:
        if driver.capabilities.presigned_gets:
            pytest.skip(f"{type(driver).__name__} declares presigned GETs")
        result = self.add(driver, b"x")

        with pytest.raises(StoreConfigError):
            driver.presign_get(result.url, 60)

    def test_large__size__takes_the_declared_large_object_path(self, large_driver: StoreDriver) -> None:
        threshold = large_driver.capabilities.large_object_size
        if threshold is None:
            pytest.skip(f"{type(large_driver).__name__} has one write path; large images span many backend objects")

        assert threshold <= self.large_size

    # -- URLs and properties --------------------------------------------------------------------

    def test_url__carries_no_credentials(self, driver: StoreDriver, secrets: list[str]) -> None:
        url = self.add(driver, b"x").url

        parts = urlsplit(url)
        assert parts.username is None
        assert parts.password is None
        assert not parts.query
        for secret in secrets:
            assert secret not in url

    def test_owns__its_own_urls_and_not_foreign_ones(self, driver: StoreDriver, foreign_urls: list[str]) -> None:
        image_id = new_image_id()
        result = self.add(driver, b"x", image_id=image_id)

        assert driver.owns(result.url)
        assert driver.owns(sibling_url(result, image_id, new_image_id()))
        assert [url for url in [*FOREIGN_URLS, *foreign_urls] if driver.owns(url)] == []

    def test_properties__are_json_without_credentials(self, driver: StoreDriver, secrets: list[str]) -> None:
        shown = json.dumps(driver.properties())

        for secret in secrets:
            assert secret not in shown

    # -- the large-object path ------------------------------------------------------------------

    def large_data(self) -> bytes:
        """An image that takes the large-object path of ``large_driver``."""
        return os.urandom(self.large_size)

    def test_large__add_then_get__round_trips(self, large_driver: StoreDriver) -> None:
        data = self.large_data()

        result = self.add(large_driver, data, chunk_size=1_000_003)

        self.assert_round_trip(large_driver, result, data)

    def test_large__ranges_across_parts__return_those_bytes(self, large_driver: StoreDriver) -> None:
        data = self.large_data()
        result = self.add(large_driver, data, chunk_size=1 * MiB)
        boundary = 5 * MiB

        for offset, length in [(boundary - 10, 20), (0, boundary + 1), (len(data) - 1, None), (boundary * 2 - 1, 5)]:
            read = large_driver.get(result.url, offset, length)
            want = data[offset : None if length is None else offset + length]
            assert (read.length, read.total_size) == (len(want), len(data))
            assert read_all(read) == want

    @pytest.mark.parametrize(
        "announced_delta", [1, -1, 6 * MiB, -6 * MiB], ids=["one-more", "one-fewer", "a-part-more", "a-part-fewer"]
    )
    def test_large__with_another_size_than_sent__raises_size_mismatch_and_leaves_nothing(
        self, large_driver: StoreDriver, inventory: Inventory, announced_delta: int
    ) -> None:
        data = self.large_data()
        before = inventory()

        with pytest.raises(StoreSizeMismatchError):
            large_driver.add(new_image_id(), chunked(data, MiB), len(data) + announced_delta, self.hashing_algo)

        assert inventory() == before

    def test_large__when_the_chunks_fail_after_parts_were_written__leaves_nothing(
        self, large_driver: StoreDriver, inventory: Inventory
    ) -> None:
        data = self.large_data()
        before = inventory()

        with pytest.raises(SourceFailedError):
            large_driver.add(new_image_id(), failing_after(data, MiB, 7 * MiB), len(data), self.hashing_algo)

        assert inventory() == before

    def test_large__delete__removes_everything(self, large_driver: StoreDriver, inventory: Inventory) -> None:
        before = inventory()
        result = self.add(large_driver, self.large_data(), chunk_size=2 * MiB)

        large_driver.delete(result.url)

        assert inventory() == before
        with pytest.raises(StoreNotFoundError):
            large_driver.get_size(result.url)

    def test_large__add_twice__replaces_and_leaves_one_copy(
        self, large_driver: StoreDriver, inventory: Inventory
    ) -> None:
        image_id = new_image_id()
        self.add(large_driver, self.large_data(), chunk_size=2 * MiB, image_id=image_id)
        held = inventory()
        data = self.large_data()[: self.large_size - 7]

        result = self.add(large_driver, data, chunk_size=2 * MiB, image_id=image_id)

        self.assert_round_trip(large_driver, result, data)
        assert inventory() == held
