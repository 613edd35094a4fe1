"""The S3 store against moto's server: the store contract, then what only S3 shows (credentials, the primary
store's longer keys, streaming, part checks, error mapping)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.stores.config import MiB, S3StoreConfig
from shared.stores.errors import StoreConfigError, StoreIntegrityError, StoreNotFoundError, StoreUnavailableError
from shared.stores.registry import build_store
from shared.stores.s3_store import S3Store
from tests.stores.contract import Inventory, StoreContract, chunked, new_image_id, read_all

pytestmark = pytest.mark.integration

ACCESS_KEY = "AKIASGLANCESTORETEST"
SECRET_KEY = "sglance-store-secret-never-in-urls"


def s3_inventory(client: Any, bucket: str) -> set[str]:
    """Every object and unfinished multipart upload in ``bucket``."""
    objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return {o["Key"] for o in objects} | {f"upload:{u['Key']}:{u['UploadId']}" for u in uploads}


@pytest.fixture
def bucket(moto_reset: str, aws_client: Callable[[str], Any]) -> str:
    """A fresh bucket on an emptied moto server."""
    name = f"sglance-store-{uuid.uuid4().hex[:12]}"
    aws_client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def make_store(moto_reset: str, bucket: str) -> Iterator[Callable[..., S3Store]]:
    """Builds S3 stores on the bucket as the registry does (inline credentials); closes them after the test."""
    made: list[S3Store] = []

    def make(**overrides: Any) -> S3Store:
        settings: dict[str, Any] = {
            "bucket": bucket,
            "endpoint_url": moto_reset,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "prefix": "copies/",
            **overrides,
        }
        store = build_store("s3copy", S3StoreConfig(**settings))
        assert isinstance(store, S3Store)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


class TestS3Store(StoreContract):
    """The contract on moto's server; the large path is multipart with 5 MiB parts, two at a time."""

    @pytest.fixture
    def driver(self, make_store: Callable[..., S3Store]) -> S3Store:
        return make_store()

    @pytest.fixture
    def large_driver(self, make_store: Callable[..., S3Store]) -> S3Store:
        return make_store(large_object_size=5 * MiB, part_size=5 * MiB, upload_threads=2)

    @pytest.fixture
    def inventory(self, aws_client: Callable[[str], Any], bucket: str) -> Inventory:
        client = aws_client("s3")
        return lambda: s3_inventory(client, bucket)

    @pytest.fixture
    def foreign_urls(self, bucket: str) -> list[str]:
        return [f"s3://{bucket}-other/copies/x", f"s3://{bucket}", f"s3://{bucket}/", f"s4://{bucket}/copies/x"]

    @pytest.fixture
    def secrets(self) -> list[str]:
        return [ACCESS_KEY, SECRET_KEY]


# -- locations -------------------------------------------------------------------------------------


def test_add__writes_prefix_plus_image_id(make_store: Callable[..., S3Store], bucket: str) -> None:
    image_id = new_image_id()

    result = make_store().add(image_id, [b"abc"], 3, "sha512")

    assert result.url == f"s3://{bucket}/copies/{image_id}"


def test_primary_store_keys__are_read_sized_and_deleted(
    make_store: Callable[..., S3Store], aws_client: Callable[[str], Any], bucket: str
) -> None:
    # The primary store's objects are images/<image id>/<session id>, written by presigned uploads.
    key = f"images/{uuid.uuid4()}/{uuid.uuid4().hex}"
    aws_client("s3").put_object(Bucket=bucket, Key=key, Body=b"uploaded by a client")
    store = make_store(prefix="images/")
    url = f"s3://{bucket}/{key}"

    assert store.owns(url)
    assert store.get_size(url) == 20
    assert read_all(store.get(url, 12)) == b"a client"
    store.delete(url)
    with pytest.raises(StoreNotFoundError):
        store.get_size(url)


def test_properties__are_glances_s3_detail(make_store: Callable[..., S3Store], bucket: str) -> None:
    store = make_store(large_object_size=100 * MiB, part_size=16 * MiB, upload_threads=3)

    assert store.properties() == {
        "bucket": bucket,
        "s3_store_large_object_size": 100,
        "s3_store_large_object_chunk_size": 16,
        "s3_store_thread_pools": 3,
    }


# -- credentials -----------------------------------------------------------------------------------


def test_credentials__from_the_secret(make_store: Callable[..., S3Store]) -> None:
    asked: list[str] = []

    def secrets(arn: str) -> dict[str, str]:
        asked.append(arn)
        return {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:s3copy"
    config = make_store().config.model_copy(
        update={"access_key_id": None, "secret_access_key": None, "secret_arn": arn}
    )
    store = S3Store.from_config("s3copy", config, secrets)
    try:
        assert asked == []  # nothing read until the client is needed
        result = store.add(new_image_id(), [b"x"], 1, "sha512")
        assert read_all(store.get(result.url)) == b"x"
        assert store.client._request_signer._credentials.access_key == ACCESS_KEY
        assert asked == [arn]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("inline", "secret_fields"),
    [({"access_key_id": ACCESS_KEY}, None), ({}, {"access_key_id": ACCESS_KEY}), ({}, None)],
    ids=["half-inline", "secret-without-its-key", "secret-arn-without-reader"],
)
def test_credentials__incomplete__raise_config_error_naming_no_value(
    make_store: Callable[..., S3Store], inline: dict[str, str], secret_fields: dict[str, str] | None
) -> None:
    update: dict[str, Any] = {"access_key_id": None, "secret_access_key": None, **inline}
    if not inline:
        update["secret_arn"] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:s3copy"
    config = make_store().config.model_copy(update=update)
    reader = None if secret_fields is None else (lambda arn: secret_fields)
    store = S3Store.from_config("s3copy", config, reader)

    with pytest.raises(StoreConfigError) as raised:
        store.get_size(f"s3://{config.bucket}/copies/x")

    assert ACCESS_KEY not in str(raised.value)


# -- streaming and integrity -----------------------------------------------------------------------


def test_single_put__streams_the_chunks_as_it_sends(make_store: Callable[..., S3Store]) -> None:
    # Had botocore hashed the payload (SigV4 over plain HTTP) or computed a checksum, it would have read every
    # chunk before sending anything; streaming, no chunk is produced before the request goes out.
    store = make_store(large_object_size=64 * MiB)
    data = os.urandom(8 * MiB)
    produced: list[int] = []
    produced_when_sent: list[int] = []
    store.client.meta.events.register(
        "before-send.s3.PutObject", lambda **kwargs: produced_when_sent.append(len(produced))
    )

    def chunks() -> Iterator[bytes]:
        for n, chunk in enumerate(chunked(data, 256 * 1024)):
            produced.append(n)
            yield chunk

    result = store.add(new_image_id(), chunks(), len(data), "sha512")

    assert produced_when_sent == [0]
    assert produced == list(range(32))
    assert result.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert read_all(store.get(result.url)) == data


def test_multipart__a_part_etag_other_than_its_md5__raises_integrity_and_leaves_nothing(
    make_store: Callable[..., S3Store], aws_client: Callable[[str], Any], bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(large_object_size=5 * MiB, part_size=5 * MiB)
    real_upload_part = store.client.upload_part

    def corrupting_upload_part(**kwargs: Any) -> Any:
        response = real_upload_part(**kwargs)
        return {**response, "ETag": '"' + "0" * 32 + '"'} if kwargs["PartNumber"] == 2 else response

    monkeypatch.setattr(store.client, "upload_part", corrupting_upload_part)
    data = os.urandom(11 * MiB)

    with pytest.raises(StoreIntegrityError):
        store.add(new_image_id(), chunked(data, MiB), len(data), "sha512")

    assert s3_inventory(aws_client("s3"), bucket) == set()


def test_multipart__completed_etag_other_than_expected__raises_integrity_and_deletes_the_object(
    make_store: Callable[..., S3Store], aws_client: Callable[[str], Any], bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(large_object_size=5 * MiB, part_size=5 * MiB)
    real_complete = store.client.complete_multipart_upload
    monkeypatch.setattr(
        store.client, "complete_multipart_upload", lambda **kw: {**real_complete(**kw), "ETag": '"abc-2"'}
    )
    data = os.urandom(6 * MiB)

    with pytest.raises(StoreIntegrityError):
        store.add(new_image_id(), chunked(data, MiB), len(data), "sha512")

    assert s3_inventory(aws_client("s3"), bucket) == set()


def test_multipart__holds_at_most_threads_plus_one_parts(make_store: Callable[..., S3Store]) -> None:
    # The chunk iterator is consumed only as parts finish: never more than upload_threads parts ahead.
    store = make_store(large_object_size=5 * MiB, part_size=5 * MiB, upload_threads=2)
    real_upload_part = store.client.upload_part
    produced = 0
    ahead: list[int] = []

    def watching_upload_part(**kwargs: Any) -> Any:
        ahead.append(produced - (kwargs["PartNumber"] - 1) * 5 * MiB)
        return real_upload_part(**kwargs)

    store.client.upload_part = watching_upload_part

    def chunks(data: bytes) -> Iterator[bytes]:
        nonlocal produced
        for chunk in chunked(data, MiB):
            produced += len(chunk)
            yield chunk

    data = os.urandom(26 * MiB)
    store.add(new_image_id(), chunks(data), len(data), "sha512")

    assert max(ahead) <= (2 + 1) * 5 * MiB


# -- errors ----------------------------------------------------------------------------------------


def test_unreachable_endpoint__raises_unavailable() -> None:
    config = S3StoreConfig(
        bucket="b", endpoint_url="http://127.0.0.1:9", access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY
    )
    store = S3Store.from_config("s3copy", config, None)
    try:
        with pytest.raises(StoreUnavailableError):
            store.get_size("s3://b/copies/x")
        with pytest.raises(StoreUnavailableError):
            store.add(new_image_id(), [b"abc"], 3, "sha512")
    finally:
        store.close()


def test_missing_bucket__raises_config_error(make_store: Callable[..., S3Store]) -> None:
    store = make_store(bucket="sglance-no-such-bucket")

    with pytest.raises(StoreConfigError):
        store.add(new_image_id(), [b"abc"], 3, "sha512")


def test_a_url_of_another_bucket__is_refused(make_store: Callable[..., S3Store]) -> None:
    store = make_store()

    with pytest.raises(StoreConfigError):
        store.delete("s3://another-bucket/copies/x")
