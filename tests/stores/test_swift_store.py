"""The Swift store against a real Swift on loopback (tests/backends/swift, the ``swift`` fixture).

The store contract runs with the default thresholds (``driver``: plain objects) and with 1 MiB ones
(``large_driver``: Static Large Objects of 1 MiB segments, two upload threads). Then what is Swift's own: the SLO
layout (segments, manifest, ``X-Static-Large-Object``), parallel and single-thread uploads and their memory bound,
Dynamic Large Objects written as Glance writes them, replacing a copy without stale segments, credentials (wrong,
from a secret, never in a URL), Keystone v3 connection arguments, and a proxy killed before and during a write.
Every test works in a container of its own, emptied and removed afterwards.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from swiftclient.client import Connection
from swiftclient.exceptions import ClientException

from shared.stores.config import SwiftStoreConfig
from shared.stores.errors import (
    StoreConfigError,
    StoreError,
    StoreIntegrityError,
    StoreNotFoundError,
    StoreSizeMismatchError,
    StoreUnavailableError,
)
from shared.stores.registry import build_store
from shared.stores.swift import MAX_SEGMENTS, SwiftStore, segment_name
from tests.stores.contract import Inventory, StoreContract, chunked, new_image_id, read_all
from tests.support.swift import SwiftProxy

pytestmark = [pytest.mark.integration, pytest.mark.swift, pytest.mark.timeout(300)]

MiB = 1024 * 1024
STORE_ID = "swift-test"
ConfigFactory = Callable[..., SwiftStoreConfig]


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(swift: dict[str, str]) -> Iterator[Connection]:
    """A plain swiftclient connection of the test account, to look behind the driver's back."""
    connection = Connection(
        authurl=swift["SWIFT_AUTH_URL"], user=swift["SWIFT_USER"], key=swift["SWIFT_KEY"], auth_version="1", retries=2
    )
    yield connection
    connection.close()


def listing(admin: Connection, container: str) -> list[str]:
    """Every object name in ``container`` (empty if it does not exist)."""
    try:
        return [entry["name"] for entry in admin.get_container(container, full_listing=True)[1]]
    except ClientException as exc:
        if exc.http_status == 404:
            return []
        raise


@pytest.fixture
def container(admin: Connection) -> Iterator[str]:
    """A fresh container name; the container and everything in it are removed after the test."""
    name = f"sglance-{uuid.uuid4().hex[:12]}"
    yield name
    for obj in listing(admin, name):
        admin.delete_object(name, obj)
    try:
        admin.delete_container(name)
    except ClientException as exc:
        if exc.http_status != 404:
            raise


@pytest.fixture
def config(swift: dict[str, str], container: str) -> ConfigFactory:
    """The test store's configuration (tempauth, the test's container), with overrides."""

    def make(**overrides: Any) -> SwiftStoreConfig:
        fields: dict[str, Any] = {
            "auth_url": swift["SWIFT_AUTH_URL"],
            "auth_version": "1",
            "user": swift["SWIFT_USER"],
            "key": swift["SWIFT_KEY"],
            "container": container,
            **overrides,
        }
        return config_of(fields)

    return make


def config_of(fields: dict[str, Any]) -> SwiftStoreConfig:
    """A ``SwiftStoreConfig`` validated as ``SGLANCE_STORES`` entries are."""
    return SwiftStoreConfig.model_validate({"type": "swift", **fields})


@pytest.fixture
def make_store(config: ConfigFactory) -> Iterator[Callable[..., SwiftStore]]:
    """Builds stores through the registry (as the service does); all closed after the test."""
    made: list[SwiftStore] = []

    def make(**overrides: Any) -> SwiftStore:
        store = build_store(STORE_ID, config(**overrides))
        assert isinstance(store, SwiftStore)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


SMALL_LARGE = {"large_object_size": 1 * MiB, "segment_size": 1 * MiB}


class TestSwiftStore(StoreContract):
    """The store contract on a real Swift."""

    @pytest.fixture
    def driver(self, make_store: Callable[..., SwiftStore]) -> SwiftStore:
        return make_store()

    @pytest.fixture
    def large_driver(self, make_store: Callable[..., SwiftStore]) -> SwiftStore:
        return make_store(**SMALL_LARGE, upload_threads=2)

    @pytest.fixture
    def inventory(self, admin: Connection, container: str) -> Inventory:
        return lambda: set(listing(admin, container))

    @pytest.fixture
    def foreign_urls(self, container: str) -> list[str]:
        image_id = new_image_id()
        return [
            f"swift+config://other-store/{container}/{image_id}",
            f"swift+config://{STORE_ID}-2/{container}/{image_id}",
            f"swift+config://{STORE_ID}/{container}",
            f"swift+config://{STORE_ID}/{container}/",
            f"swift+config://{STORE_ID}//{image_id}",
            f"swift://{STORE_ID}/{container}/{image_id}",
            f"swift+https://{STORE_ID}/{container}/{image_id}",
        ]

    @pytest.fixture
    def secrets(self, swift: dict[str, str]) -> list[str]:
        return [swift["SWIFT_KEY"]]


# -- Static Large Objects ----------------------------------------------------------------------------


@pytest.mark.parametrize("threads", [1, 3], ids=["one-thread-streaming", "three-threads"])
def test_large_image__is_an_slo_of_numbered_segments__readable_whole_and_across_boundaries(
    make_store: Callable[..., SwiftStore], admin: Connection, container: str, threads: int
) -> None:
    store = make_store(**SMALL_LARGE, upload_threads=threads)
    data = os.urandom(4 * MiB + 333)
    image_id = new_image_id()

    result = store.add(image_id, chunked(data, 700_001), len(data), "sha512")

    assert result.url == f"swift+config://{STORE_ID}/{container}/{image_id}"
    assert (result.size, result.checksum) == (len(data), hashlib.md5(data, usedforsecurity=False).hexdigest())
    assert result.multihash == hashlib.sha512(data).hexdigest()
    assert sorted(listing(admin, container)) == [image_id] + [segment_name(image_id, n) for n in range(1, 6)]
    head = admin.head_object(container, image_id)
    assert head["x-static-large-object"].lower() == "true"
    assert int(head["content-length"]) == len(data)
    assert admin.get_object(container, segment_name(image_id, 5))[1] == data[4 * MiB :]
    assert read_all(store.get(result.url)) == data
    for offset, length in [(MiB - 1, 2), (MiB - 100, 2 * MiB + 200), (3 * MiB, MiB), (4 * MiB - 1, None)]:
        read = store.get(result.url, offset, length)
        want = data[offset : None if length is None else offset + length]
        assert (read.offset, read.length, read.total_size) == (offset, len(want), len(data))
        assert read_all(read) == want


def test_large_image__delete__removes_manifest_and_segments(
    make_store: Callable[..., SwiftStore], admin: Connection, container: str
) -> None:
    store = make_store(**SMALL_LARGE, upload_threads=2)
    keep = store.add(new_image_id(), [b"k" * 100], 100, "sha256")
    result = store.add(new_image_id(), chunked(os.urandom(3 * MiB), MiB), 3 * MiB, "sha256")

    store.delete(result.url)

    assert listing(admin, container) == [keep.url.rsplit("/", 1)[1]]
    with pytest.raises(StoreNotFoundError):
        store.delete(result.url)


def test_segment_size__grows_so_an_slo_never_lists_more_than_1000_segments(
    make_store: Callable[..., SwiftStore],
) -> None:
    store = make_store(**SMALL_LARGE)

    assert store._segment_size(10 * MiB) == MiB
    assert store._segment_size(MAX_SEGMENTS * MiB) == MiB
    grown = store._segment_size(MAX_SEGMENTS * MiB + 1)
    assert grown > MiB
    assert -(-(MAX_SEGMENTS * MiB + 1) // grown) <= MAX_SEGMENTS


class _RecordingConnection(Connection):  # type: ignore[misc]
    """A real connection that records concurrent segment PUTs and how far the source was read ahead of them."""

    def __init__(self, record: dict[str, Any], **options: Any) -> None:
        super().__init__(**options)
        self.record = record

    def put_object(self, container: str, obj: str, contents: Any = None, **kwargs: Any) -> Any:
        record = self.record
        with record["lock"]:
            record["in_flight"] += 1
            record["max_in_flight"] = max(record["max_in_flight"], record["in_flight"])
            record["max_ahead"] = max(record["max_ahead"], record["produced"][0] - record["stored"])
        try:
            time.sleep(0.05)  # slow enough for the reader to run ahead if nothing held it back
            return super().put_object(container, obj, contents, **kwargs)
        finally:
            with record["lock"]:
                record["in_flight"] -= 1
                record["stored"] += kwargs.get("content_length") or 0


def test_parallel_upload__holds_at_most_threads_plus_one_segments_in_memory(
    config: ConfigFactory, swift: dict[str, str]
) -> None:
    threads, segment = 2, MiB
    record: dict[str, Any] = {
        "lock": threading.Lock(),
        "in_flight": 0,
        "max_in_flight": 0,
        "max_ahead": 0,
        "stored": 0,
        "produced": [0],
    }
    cfg = config(**SMALL_LARGE, upload_threads=threads)
    store = SwiftStore(STORE_ID, cfg, swift["SWIFT_KEY"])
    options = store.connections.options()
    store = SwiftStore(
        STORE_ID, cfg, swift["SWIFT_KEY"], connection_factory=lambda: _RecordingConnection(record, **options)
    )
    data = os.urandom(10 * segment)

    def counted() -> Iterator[bytes]:
        for chunk in chunked(data, 256 * 1024):
            record["produced"][0] += len(chunk)
            yield chunk

    try:
        result = store.add(new_image_id(), counted(), len(data), "sha256")
        assert read_all(store.get(result.url)) == data
    finally:
        store.close()
    assert record["max_in_flight"] == threads
    # bytes read but not yet stored: the segments in flight, plus the one being read, plus the manifest's own PUT
    assert record["max_ahead"] <= (threads + 1) * segment


def test_segment_etag_mismatch__raises_integrity_error_and_leaves_nothing(
    config: ConfigFactory, swift: dict[str, str], admin: Connection, container: str
) -> None:
    cfg = config(**SMALL_LARGE, upload_threads=1)
    options = SwiftStore(STORE_ID, cfg, swift["SWIFT_KEY"]).connections.options()

    class CorruptingConnection(Connection):  # type: ignore[misc]
        def put_object(self, container: str, obj: str, contents: Any = None, **kwargs: Any) -> Any:
            etag = super().put_object(container, obj, contents, **kwargs)
            return "0" * 32 if obj.endswith("-00002") else etag

    store = SwiftStore(STORE_ID, cfg, swift["SWIFT_KEY"], connection_factory=lambda: CorruptingConnection(**options))
    try:
        with pytest.raises(StoreIntegrityError):
            store.add(new_image_id(), chunked(os.urandom(3 * MiB), MiB), 3 * MiB, "sha256")
    finally:
        store.close()
    assert listing(admin, container) == []


@pytest.mark.parametrize("threads", [1, 2])
def test_large_image__chunks_ending_early__raise_size_mismatch_and_leave_nothing(
    make_store: Callable[..., SwiftStore], admin: Connection, container: str, threads: int
) -> None:
    store = make_store(**SMALL_LARGE, upload_threads=threads)

    with pytest.raises(StoreSizeMismatchError):
        store.add(new_image_id(), chunked(os.urandom(3 * MiB), MiB), 4 * MiB, "sha256")

    assert listing(admin, container) == []


# -- replacing a copy ------------------------------------------------------------------------------


def test_add_again__smaller_slo_then_plain__leaves_no_stale_segments(
    make_store: Callable[..., SwiftStore], admin: Connection, container: str
) -> None:
    store = make_store(**SMALL_LARGE, upload_threads=2)
    image_id = new_image_id()
    store.add(image_id, chunked(os.urandom(5 * MiB), MiB), 5 * MiB, "sha256")
    assert len(listing(admin, container)) == 6

    smaller = os.urandom(2 * MiB + 1)
    result = store.add(image_id, chunked(smaller, MiB), len(smaller), "sha256")

    assert sorted(listing(admin, container)) == [image_id] + [segment_name(image_id, n) for n in (1, 2, 3)]
    assert read_all(store.get(result.url)) == smaller

    plain = b"now a plain object"
    result = store.add(image_id, [plain], len(plain), "sha256")

    assert listing(admin, container) == [image_id]
    assert "x-static-large-object" not in admin.head_object(container, image_id)
    assert read_all(store.get(result.url)) == plain


# -- Dynamic Large Objects, as Glance writes them ------------------------------------------------------


def test_glance_dlo__is_read_whole_and_by_range__and_deleted_with_its_segments(
    make_store: Callable[..., SwiftStore], admin: Connection, container: str
) -> None:
    store = make_store()
    image_id = new_image_id()
    segments = [os.urandom(300_000), os.urandom(300_000), os.urandom(12_345)]
    admin.put_container(container)
    for n, segment in enumerate(segments, 1):
        admin.put_object(container, segment_name(image_id, n), contents=segment)
    admin.put_object(container, image_id, contents=b"", headers={"X-Object-Manifest": f"{container}/{image_id}-"})
    data = b"".join(segments)
    url = store.url_for(image_id)
    keep = store.add(new_image_id(), [b"other image"], 11, "sha256")

    assert store.get_size(url) == len(data)
    assert read_all(store.get(url)) == data
    read = store.get(url, 299_990, 20)
    assert (read.length, read.total_size, read_all(read)) == (20, len(data), data[299_990:300_010])

    store.delete(url)

    assert listing(admin, container) == [keep.url.rsplit("/", 1)[1]]
    with pytest.raises(StoreNotFoundError):
        store.get_size(url)


# -- credentials --------------------------------------------------------------------------------------


def test_wrong_key__raises_a_store_error_not_a_crash(make_store: Callable[..., SwiftStore]) -> None:
    store = make_store(key="not-the-key")

    with pytest.raises(StoreConfigError):
        store.add(new_image_id(), [b"data"], 4, "sha256")
    with pytest.raises(StoreError):
        store.get_size(store.url_for(new_image_id()))


def test_key_from_secret_arn__works_and_is_never_in_urls_or_properties(
    config: ConfigFactory, swift: dict[str, str]
) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:swift-test"
    asked: list[str] = []

    def secrets(secret_arn: str) -> dict[str, str]:
        asked.append(secret_arn)
        return {"key": swift["SWIFT_KEY"]}

    cfg = config(key=None, secret_arn=arn)
    store = build_store(STORE_ID, cfg, secrets)
    assert asked == []  # read on first use, not when the store is built
    try:
        result = store.add(new_image_id(), [b"from a secret"], 13, "sha256")
        assert read_all(store.get(result.url)) == b"from a secret"
        assert asked == [arn]
        assert swift["SWIFT_KEY"] not in result.url
        assert swift["SWIFT_KEY"] not in repr(store.properties())
        assert swift["SWIFT_KEY"] not in repr(cfg)
    finally:
        store.close()


def test_from_config__without_any_key__refuses(config: ConfigFactory) -> None:
    with pytest.raises(StoreConfigError):
        SwiftStore.from_config(STORE_ID, config(key=None), None)
    with pytest.raises(StoreConfigError):
        SwiftStore.from_config(STORE_ID, config(key=None, secret_arn="arn:aws:secretsmanager:x"), None)
    store = SwiftStore.from_config(STORE_ID, config(key=None, secret_arn="arn:x"), lambda arn: {"user": "u"})
    with pytest.raises(StoreConfigError):
        store.add(new_image_id(), [b"x"], 1, "sha256")
    store.close()


def test_user_from_the_secret__replaces_the_configured_user(config: ConfigFactory, swift: dict[str, str]) -> None:
    fields = {"user": swift["SWIFT_USER2"], "key": swift["SWIFT_KEY2"]}
    store = SwiftStore.from_config(
        STORE_ID, config(user="nobody:nobody", key=None, secret_arn="arn:y"), lambda arn: fields
    )
    try:
        result = store.add(new_image_id(), [b"account two"], 11, "sha256")
        assert read_all(store.get(result.url)) == b"account two"
        assert store.connections.get().url.endswith("/AUTH_test2")
        store.delete(result.url)
    finally:
        store.close()


def test_keystone_v3__connection_uses_a_keystone_session_with_project_domains_region_and_interface() -> None:
    cfg = config_of(
        {
            "auth_url": "https://keystone.example/v3",
            "auth_version": "3",
            "user": "glance",
            "key": SecretStr("service-password"),
            "project_name": "service",
            "user_domain_name": "UserDom",
            "project_domain_name": "ProjDom",
            "region_name": "RegionTwo",
            "endpoint_type": "internalURL",
            "timeout_seconds": 7,
        }
    )
    store = SwiftStore.from_config(STORE_ID, cfg, None)
    try:
        options = store.connections.options()
        auth = store.connections.keystone_auth_options()
        session = options.pop("session")
    finally:
        store.close()

    assert options["auth_version"] == "3"
    assert options["os_options"] == {
        "service_type": "object-store",
        "endpoint_type": "internalURL",
        "region_name": "RegionTwo",
    }
    assert options["timeout"] == 7
    assert "key" not in options  # the password lives in the keystoneauth plugin only
    assert auth == {
        "auth_url": "https://keystone.example/v3",
        "username": "glance",
        "password": "service-password",
        "project_name": "service",
        "user_domain_name": "UserDom",
        "project_domain_name": "ProjDom",
    }
    assert type(session).__module__ == "keystoneauth1.session"
    assert session.auth.auth_url == "https://keystone.example/v3"


def test_keystone_v3__without_project__is_refused_by_the_configuration() -> None:
    with pytest.raises(ValueError, match="needs project_name"):
        config_of({"auth_url": "https://k.example/v3", "user": "glance", "key": "pw"})


def test_import__does_not_load_swiftclient() -> None:
    code = "import sys, shared.stores.swift; sys.exit('swiftclient' in sys.modules or 'keystoneauth1' in sys.modules)"

    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


# -- the proxy going away -------------------------------------------------------------------------------


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=2) as answer:
            return answer.read() == b"OK"
    except (urllib.error.URLError, OSError):
        return False


def test_proxy_helper__kills_then_restarts_the_proxy_with_its_command_line(swift_proxy: SwiftProxy) -> None:
    before = swift_proxy.pid()
    assert before is not None
    command = Path(f"/proc/{before}/cmdline").read_bytes()

    swift_proxy.kill()

    assert not _healthy(swift_proxy.port)
    assert swift_proxy.pid() is None

    swift_proxy.start()

    after = swift_proxy.pid()
    assert after is not None
    assert after != before
    assert Path(f"/proc/{after}/cmdline").read_bytes() == command
    assert _healthy(swift_proxy.port)
    assert str(after) in (swift_proxy.run_dir / "pids").read_text().split()


def test_proxy_down__every_operation_raises_unavailable(
    make_store: Callable[..., SwiftStore], swift_proxy: SwiftProxy
) -> None:
    store = make_store()
    result = store.add(new_image_id(), [b"before"], 6, "sha256")
    store.close()  # the next calls open new connections, to a proxy that is gone

    with swift_proxy.killed():
        with pytest.raises(StoreUnavailableError):
            store.add(new_image_id(), [b"data"], 4, "sha256")
        with pytest.raises(StoreUnavailableError):
            store.get(result.url)
        with pytest.raises(StoreUnavailableError):
            store.get_size(result.url)
        with pytest.raises(StoreUnavailableError):
            store.delete(result.url)

    assert read_all(store.get(result.url)) == b"before"


@pytest.mark.parametrize("threads", [1, 2], ids=["streaming", "parallel"])
def test_proxy_killed_mid_write__raises_unavailable__and_delete_after_restart_leaves_nothing(
    make_store: Callable[..., SwiftStore], swift_proxy: SwiftProxy, admin: Connection, container: str, threads: int
) -> None:
    store = make_store(**SMALL_LARGE, upload_threads=threads)
    data = os.urandom(6 * MiB)
    image_id = new_image_id()

    def killing_midway() -> Iterator[bytes]:
        for n, chunk in enumerate(chunked(data, 512 * 1024)):
            if n == 7:  # segments 1-3 are written or on their way
                swift_proxy.kill()
            yield chunk

    with pytest.raises(StoreUnavailableError):
        store.add(image_id, killing_midway(), len(data), "sha256")

    swift_proxy.start()
    # the failed write could not clean up (the proxy was gone): finished segments remain, and no manifest
    left = listing(admin, container)
    assert left
    assert image_id not in left
    assert all(name.startswith(f"{image_id}-") for name in left)

    store.delete(store.url_for(image_id))

    assert listing(admin, container) == []
