"""The Ceph store against a real RADOS Gateway (RGW 16) on loopback: the store contract, then RGW's quirks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from shared.stores.ceph import CephStore
from shared.stores.config import CephStoreConfig, MiB
from shared.stores.registry import build_store
from tests.stores.contract import Inventory, StoreContract, chunked, new_image_id, read_all
from tests.stores.test_s3_store import s3_inventory

pytestmark = [pytest.mark.integration, pytest.mark.rgw, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def rgw_admin(rgw: dict[str, str]) -> Iterator[Any]:
    """A plain boto3 client on the gateway, for making buckets and looking behind the driver."""
    session = boto3.session.Session(
        aws_access_key_id=rgw["CEPH_S3_ACCESS_KEY"],
        aws_secret_access_key=rgw["CEPH_S3_SECRET_KEY"],
        region_name=rgw["CEPH_S3_REGION"],
    )
    config = Config(
        signature_version="s3v4", s3={"addressing_style": "path"}, request_checksum_calculation="when_required"
    )
    client = session.client("s3", endpoint_url=rgw["CEPH_S3_ENDPOINT"], config=config)
    yield client
    client.close()


@pytest.fixture
def bucket(rgw_admin: Any) -> str:
    """A fresh bucket for one test."""
    name = f"sglance-ceph-{uuid.uuid4().hex[:12]}"
    rgw_admin.create_bucket(Bucket=name)
    return name


@pytest.fixture
def make_store(rgw: dict[str, str], bucket: str) -> Iterator[Callable[..., CephStore]]:
    """Builds Ceph stores on the bucket as the registry does; closes them after the test."""
    made: list[CephStore] = []

    def make(**overrides: Any) -> CephStore:
        settings: dict[str, Any] = {
            "bucket": bucket,
            "endpoint_url": rgw["CEPH_S3_ENDPOINT"],
            "region": rgw["CEPH_S3_REGION"],
            "access_key_id": rgw["CEPH_S3_ACCESS_KEY"],
            "secret_access_key": rgw["CEPH_S3_SECRET_KEY"],
            **overrides,
        }
        store = build_store("ceph1", CephStoreConfig(**settings))
        assert isinstance(store, CephStore)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


class TestCephStore(StoreContract):
    """The contract on RGW; the large path is multipart with 5 MiB parts (RGW's minimum), two at a time."""

    @pytest.fixture
    def driver(self, make_store: Callable[..., CephStore]) -> CephStore:
        return make_store()

    @pytest.fixture
    def large_driver(self, make_store: Callable[..., CephStore]) -> CephStore:
        return make_store(large_object_size=5 * MiB, part_size=5 * MiB, upload_threads=2)

    @pytest.fixture
    def inventory(self, rgw_admin: Any, bucket: str) -> Inventory:
        return lambda: s3_inventory(rgw_admin, bucket)

    @pytest.fixture
    def foreign_urls(self, bucket: str) -> list[str]:
        return [f"s3://{bucket}-other/images/x", f"s3://{bucket}", f"rbd://fsid/images/{new_image_id()}/snap"]

    @pytest.fixture
    def secrets(self, rgw: dict[str, str]) -> list[str]:
        return [rgw["CEPH_S3_ACCESS_KEY"], rgw["CEPH_S3_SECRET_KEY"]]


def test_complete_multipart__on_rgw16__has_an_empty_etag_so_the_driver_checks_heads(
    make_store: Callable[..., CephStore], rgw_admin: Any, bucket: str
) -> None:
    """RGW 16 answers CompleteMultipartUpload with ``<ETag></ETag>``; HEAD has the md5-of-parts ETag."""
    store = make_store(large_object_size=5 * MiB, part_size=5 * MiB)
    data = os.urandom(11 * MiB)
    completed: list[str] = []
    store.client.meta.events.register(
        "after-call.s3.CompleteMultipartUpload",
        lambda parsed, **kwargs: completed.append(parsed.get("ETag", "")),
    )

    result = store.add(new_image_id(), chunked(data, MiB), len(data), "sha512")

    assert [etag.strip('"') for etag in completed] == [""]
    head = rgw_admin.head_object(Bucket=bucket, Key=result.url.split("/", 3)[3])
    assert head["ETag"].strip('"').endswith("-3")
    assert read_all(store.get(result.url)) == data


def test_properties__name_the_gateway(make_store: Callable[..., CephStore], rgw: dict[str, str], bucket: str) -> None:
    store = make_store()

    assert store.properties() == {
        "bucket": bucket,
        "endpoint": rgw["CEPH_S3_ENDPOINT"],
        "s3_store_large_object_size": 100,
        "s3_store_large_object_chunk_size": 16,
        "s3_store_thread_pools": 2,
    }
