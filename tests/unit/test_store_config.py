"""Store configuration: SGLANCE_STORES parsing and validation, replicate_to, download order, the driver registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import Settings
from shared.stores.base import StoreDriver
from shared.stores.config import CephStoreConfig, FileStoreConfig, RbdStoreConfig, S3StoreConfig, SwiftStoreConfig
from shared.stores.errors import StoreConfigError
from shared.stores.file import FileStore
from shared.stores.registry import DRIVERS, StoreSet, UnknownStoreError, build_store, driver_class

CEPH = {"type": "ceph", "endpoint_url": "http://rgw.example:7480", "bucket": "glance", "weight": 10}
SWIFT = {"type": "swift", "auth_url": "https://keystone.example/v3", "user": "glance", "project_name": "service"}


def settings_from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    """Settings read from the given SGLANCE_* variables (names without the prefix)."""
    for name, value in env.items():
        monkeypatch.setenv(f"SGLANCE_{name.upper()}", value)
    return Settings()


# -- SGLANCE_STORES ------------------------------------------------------------------------------


def test_stores__from_json_env__are_typed_configs_in_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stores = {
        "ceph1": {**CEPH, "secret_access_key": "inline-secret", "access_key_id": "AK"},
        "swift1": SWIFT,
        "file1": {"type": "file", "data_dir": str(tmp_path)},
        "s3-west": {"type": "s3", "bucket": "copies", "region": "us-west-2", "secret_arn": "arn:aws:secretsmanager:x"},
    }

    settings = settings_from_env(monkeypatch, stores=json.dumps(stores))

    configs = settings.store_configs
    assert list(configs) == ["ceph1", "swift1", "file1", "s3-west"]
    assert [type(c) for c in configs.values()] == [CephStoreConfig, SwiftStoreConfig, FileStoreConfig, S3StoreConfig]
    ceph = configs["ceph1"]
    assert isinstance(ceph, CephStoreConfig)
    assert (ceph.bucket, ceph.weight, ceph.prefix, ceph.part_size) == ("glance", 10, "images/", 16 * 1024 * 1024)
    assert "inline-secret" not in repr(settings)
    hash(settings)  # settings stay hashable (get_settings caches them)


@pytest.mark.parametrize(
    "stores",
    [
        {"x": {"type": "nfs", "path": "/x"}},
        {"x": {"type": "ceph", "bucket": "b"}},  # ceph needs its endpoint
        {"x": {**CEPH, "endpoint_url": "rgw.example:7480"}},
        {"x": {**CEPH, "color": "blue"}},
        {"x": {**CEPH, "part_size": 1024}},
        {"x": {**CEPH, "upload_threads": 0}},
        {"x": {"type": "file", "data_dir": "/d", "chunk_size": 1}},
        {"x": {**SWIFT, "auth_url": "keystone:5000"}},
    ],
    ids=[
        "unknown-type",
        "ceph-without-endpoint",
        "endpoint-not-http",
        "unknown-field",
        "tiny-part",
        "no-threads",
        "tiny-chunk",
        "auth-url-not-http",
    ],
)
def test_stores__invalid_config__refuses_to_start(monkeypatch: pytest.MonkeyPatch, stores: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        settings_from_env(monkeypatch, stores=json.dumps(stores))


@pytest.mark.parametrize("store_id", ["bad id", "a/b", "", "x" * 65, "os_glance_staging_store", "ümlaut"])
def test_stores__invalid_store_id__refuses_to_start(monkeypatch: pytest.MonkeyPatch, store_id: str) -> None:
    with pytest.raises(ValidationError, match="store id"):
        settings_from_env(monkeypatch, stores=json.dumps({store_id: CEPH}))


def test_stores__duplicate_ids__refuse_to_start() -> None:
    config = CephStoreConfig.model_validate(CEPH)

    with pytest.raises(ValidationError, match="unique"):
        Settings(stores=(("ceph1", config), ("ceph1", config)))


def test_stores__the_primary_stores_id__refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="primary store"):
        settings_from_env(monkeypatch, stores=json.dumps({"s3": CEPH}))


# -- replicate_to ----------------------------------------------------------------------------------


def test_replicate_to__csv_of_configured_stores__is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(
        monkeypatch, stores=json.dumps({"ceph1": CEPH, "swift1": SWIFT}), replicate_to="ceph1, swift1"
    )

    assert settings.replicate_to == ("ceph1", "swift1")


def test_replicate_to__star__is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_from_env(monkeypatch, stores=json.dumps({"ceph1": CEPH}), replicate_to="*").replicate_to == ("*",)


@pytest.mark.parametrize(("targets", "message"), [("ceph2", "unknown stores: ceph2"), ("s3", "replicate_to")])
def test_replicate_to__unknown_or_primary__refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, targets: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        settings_from_env(monkeypatch, stores=json.dumps({"ceph1": CEPH}), replicate_to=targets)


# -- StoreSet --------------------------------------------------------------------------------------


def store_set(weights: dict[str, int], primary_weight: int = 100) -> StoreSet:
    """A set of file stores with the given weights, after a primary S3 store."""
    primary = S3StoreConfig(bucket="images", weight=primary_weight)
    others = {sid: FileStoreConfig(data_dir=f"/srv/{sid}", weight=w) for sid, w in weights.items()}
    return StoreSet("s3", primary, others)


@pytest.mark.parametrize(
    ("candidates", "prefer", "order"),
    [
        (["a", "b", "c", "s3"], [], ["s3", "b", "a", "c"]),
        (["a", "b", "c", "s3"], ["c"], ["c", "s3", "b", "a"]),
        (["a", "b", "c", "s3"], ["c", "a", "c"], ["c", "a", "s3", "b"]),
        (["a", "c"], ["s3", "nope"], ["a", "c"]),
        (["a", "unknown", "c"], [], ["a", "c"]),
        ([], ["a"], []),
    ],
    ids=[
        "by-weight-ties-in-config-order",
        "preferred-first",
        "several-preferred-deduplicated",
        "preferred-not-a-candidate-ignored",
        "unknown-candidates-dropped",
        "none",
    ],
)
def test_by_preference__orders_candidates(candidates: list[str], prefer: list[str], order: list[str]) -> None:
    stores = store_set({"a": 10, "b": 50, "c": 10})

    assert stores.by_preference(candidates, prefer) == order


def test_for_settings__puts_the_image_bucket_first(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(
        monkeypatch, stores=json.dumps({"ceph1": CEPH}), image_bucket="my-images", primary_store_id="primary"
    )

    stores = StoreSet.for_settings(settings)

    assert stores.ids == ["primary", "ceph1"]
    primary = stores.config("primary")
    assert isinstance(primary, S3StoreConfig)
    assert (primary.bucket, primary.prefix, primary.weight) == ("my-images", "images/", 100)
    assert "ceph1" in stores
    with pytest.raises(UnknownStoreError):
        stores.config("nope")


def test_driver__is_built_once_and_closed(tmp_path: Path) -> None:
    stores = StoreSet("s3", S3StoreConfig(bucket="images"), {"file1": FileStoreConfig(data_dir=str(tmp_path))})

    driver = stores.driver("file1")

    assert isinstance(driver, FileStore)
    assert stores.driver("file1") is driver
    stores.close()
    assert stores.driver("file1") is not driver


# -- the registry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("store_type", sorted(DRIVERS))
def test_driver_class__resolves_for_every_type(store_type: str) -> None:
    cls = driver_class(store_type)

    assert issubclass(cls, StoreDriver)
    assert cls.type_name == store_type


def test_drivers__cover_every_config_type() -> None:
    config_types = {
        c.model_fields["type"].default
        for c in (S3StoreConfig, CephStoreConfig, SwiftStoreConfig, FileStoreConfig, RbdStoreConfig)
    }

    assert config_types == set(DRIVERS)


@pytest.mark.parametrize(
    ("store_type", "config"),
    [
        ("s3", FileStoreConfig(data_dir="/d")),
        ("ceph", S3StoreConfig(bucket="b")),
        ("file", S3StoreConfig(bucket="b")),
        ("rbd", S3StoreConfig(bucket="b")),
    ],
)
def test_from_config__of_another_type__raises_config_error(store_type: str, config: S3StoreConfig) -> None:
    with pytest.raises(StoreConfigError):
        driver_class(store_type).from_config("x", config, None)


def test_build_store__makes_no_client_until_used() -> None:
    # Building a store is free: no credentials resolved, no SDK client made (the secret reader would fail).
    def secrets(arn: str) -> dict[str, str]:
        raise AssertionError("read at build time")

    store = build_store("ceph1", CephStoreConfig.model_validate({**CEPH, "secret_arn": "arn:x"}), secrets)

    assert store.objects._client is None  # type: ignore[attr-defined]
    store.close()


def test_swift_keystone_v3__needs_a_project_name_at_configuration_time() -> None:
    without_project = {key: value for key, value in SWIFT.items() if key != "project_name"}
    with pytest.raises(ValueError, match="needs project_name"):
        Settings(stores={"swift1": without_project})
    tempauth = {**without_project, "auth_version": "1"}
    assert "swift1" in Settings(stores={"swift1": tempauth}).store_configs
