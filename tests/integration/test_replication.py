"""Replication end to end: a 300 MiB image copied by the store_sync handler to a real Swift and a real Ceph RGW.

The local stack (moto, the API, the SQS event loop running the real handlers) is configured with the operator
policy ``replicate_to=*`` and two stores: ``swift`` (tempauth; images over 100 MiB become Static Large Objects of
64 MiB segments) and ``ceph`` (RGW's S3 API; multipart over 100 MiB). One image goes through every step, in order:

1. upload (PUT /file) -> active in the primary bucket -> copies queued to both stores;
2. the Swift proxy is SIGKILLed while the copy to Swift is being written; the job fails, is retried after the
   backoff, and completes once the proxy is back;
3. downloads through ``?prefer=swift`` and ``?prefer=ceph`` return the image's bytes (sha256 compared);
4. ``DELETE /v2/stores/ceph/{id}`` removes the Ceph copy (the RGW bucket is empty again);
5. ``DELETE /v2/images/{id}`` leaves no object in any backend: the image bucket, the Swift container (segments
   included) and the RGW bucket.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from devstack.stack import DevStack
from functions.api.app import create_app
from shared.data.dynamodb.images import DynamoImageRepository
from shared.data.dynamodb.table import table_models
from shared.domain.image import Image
from shared.domain.location import LocationStatus
from shared.resources import IMAGES_TABLE
from tests.support.serving import serve
from tests.support.swift import SwiftProxy

pytestmark = [pytest.mark.integration, pytest.mark.rgw, pytest.mark.swift, pytest.mark.timeout(900)]

MiB = 1024 * 1024
SIZE = 300 * MiB
CONTAINER = "sglance-replicas"
BUCKET = "sglance-replicas"
HEADERS = {"X-Project-Id": "9f1b2c3d4e5f40718293a4b5c6d7e8f9", "X-Roles": "admin,member,reader"}


@pytest.fixture(scope="module")
def payload() -> bytes:
    """300 MiB of random bytes (a raw image)."""
    return os.urandom(SIZE)


@pytest.fixture(scope="module")
def ceph_client(rgw: dict[str, str]) -> Iterator[Any]:
    """boto3 on the RGW, with the replicas' bucket created."""
    client = boto3.client(
        "s3",
        endpoint_url=rgw["CEPH_S3_ENDPOINT"],
        region_name=rgw["CEPH_S3_REGION"],
        aws_access_key_id=rgw["CEPH_S3_ACCESS_KEY"],
        aws_secret_access_key=rgw["CEPH_S3_SECRET_KEY"],
        config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
    )
    client.create_bucket(Bucket=BUCKET)
    yield client
    client.close()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, swift: dict[str, str], rgw: dict[str, str], ceph_client: Any
) -> Iterator[DevStack]:
    """The local stack replicating every image to Swift and Ceph; a failed copy is retried after 1 s."""
    stores = {
        "swift": {
            "type": "swift",
            "auth_url": swift["SWIFT_AUTH_URL"],
            "auth_version": "1",
            "user": swift["SWIFT_USER"],
            "key": swift["SWIFT_KEY"],
            "container": CONTAINER,
            "large_object_size": 100 * MiB,
            "segment_size": 64 * MiB,
            "timeout_seconds": 10,
        },
        "ceph": {
            "type": "ceph",
            "endpoint_url": rgw["CEPH_S3_ENDPOINT"],
            "region": rgw["CEPH_S3_REGION"],
            "bucket": BUCKET,
            "access_key_id": rgw["CEPH_S3_ACCESS_KEY"],
            "secret_access_key": rgw["CEPH_S3_SECRET_KEY"],
            "large_object_size": 100 * MiB,
            "part_size": 16 * MiB,
        },
    }
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SGLANCE_STORES", json.dumps(stores))
        env.setenv("SGLANCE_REPLICATE_TO", "*")
        env.setenv("SGLANCE_STORE_SYNC_BACKOFF_BASE_SECONDS", "1")
        env.setenv("SGLANCE_STORE_SYNC_MAX_ATTEMPTS", "5")
        state_dir: Path = tmp_path_factory.mktemp("replication-devstack")
        with DevStack(api_port=0, aws_port=0, state_dir=state_dir) as running:
            yield running


def _swift_objects(swift: dict[str, str], prefix: str) -> list[str]:
    from swiftclient.client import Connection

    conn = Connection(authurl=swift["SWIFT_AUTH_URL"], user=swift["SWIFT_USER"], key=swift["SWIFT_KEY"])
    try:
        _, listed = conn.get_container(CONTAINER, prefix=prefix, full_listing=True)
        return [str(o["name"]) for o in listed]
    finally:
        conn.close()


def _until(what: str, check: Callable[[], bool], timeout_s: float = 240, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval_s)


def test_a_300_mib_image_is_replicated_survives_a_dead_target_and_leaves_nothing_behind(
    stack: DevStack,
    payload: bytes,
    swift: dict[str, str],
    swift_proxy: SwiftProxy,
    rgw: dict[str, str],
    ceph_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    api = stack.endpoint
    models = table_models(IMAGES_TABLE, stack.settings.table_name, stack.aws_endpoint, stack.settings.aws_region)
    repo = DynamoImageRepository(models)
    aws_s3 = boto3.client("s3", endpoint_url=stack.aws_endpoint, region_name=stack.settings.aws_region)
    http = requests.Session()
    try:
        # 1. upload: active in the primary bucket, copies queued by the replication policy
        created = http.post(
            f"{api}/v2/images",
            json={"name": "replicated", "disk_format": "raw", "container_format": "bare"},
            headers=HEADERS,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        image_id = created.json()["id"]
        uploaded = http.put(
            f"{api}/v2/images/{image_id}/file",
            data=payload,
            headers={**HEADERS, "Content-Type": "application/octet-stream"},
            timeout=300,
        )
        assert uploaded.status_code == 204, uploaded.text

        # 2. the Swift proxy dies while the copy to Swift is being written
        def swift_copy(image: Image) -> LocationStatus | None:
            location = image.location("swift")
            return None if location is None else location.status

        _until("the copy to Swift to start", lambda: swift_copy(repo.get(image_id)) is LocationStatus.UPLOADING)
        time.sleep(0.3)
        swift_proxy.kill()
        _until(
            "the failed copy to be retried",
            lambda: "error" in (repo.get(image_id).location("swift") or _NO_LOCATION).metadata,
        )
        swift_proxy.start()

        def stores() -> list[str]:
            shown = http.get(f"{api}/v2/images/{image_id}", headers=HEADERS, timeout=30).json()
            return sorted(s for s in shown.get("stores", "").split(",") if s)

        _until("both copies", lambda: stores() == ["ceph", "s3", "swift"], interval_s=0.5)
        retries = [r for r in caplog.records if r.getMessage() == "store_sync job failed; retrying"]
        assert retries, "the copy to Swift failed once and was retried"
        shown = http.get(f"{api}/v2/images/{image_id}", headers=HEADERS, timeout=30).json()
        assert shown["os_glance_importing_to_stores"] == "" and shown["os_glance_failed_import"] == ""
        segments = _swift_objects(swift, image_id)
        assert segments[0] == image_id and len(segments) == 1 + 5, "an SLO manifest and 5 segments of 64 MiB"

        # 3. downloads from each store: the image's bytes
        expected = hashlib.sha256(payload).hexdigest()
        for store in ("swift", "ceph", "s3"):
            with http.get(
                f"{api}/v2/images/{image_id}/file?prefer={store}", headers=HEADERS, stream=True, timeout=300
            ) as response:
                assert response.status_code == 200
                digest = hashlib.sha256()
                for chunk in response.iter_content(8 * MiB):
                    digest.update(chunk)
            assert digest.hexdigest() == expected, f"bytes from {store}"
        # behind API Gateway the Ceph copy is served by a presigned GET on RGW (RGW checks the signature)
        redirecting = stack.settings.model_copy(update={"data_delivery": "redirect"})
        with serve(create_app(redirecting)) as gateway_api:
            moved = http.get(
                f"{gateway_api}/v2/images/{image_id}/file?prefer=ceph",
                headers=HEADERS,
                allow_redirects=False,
                timeout=30,
            )
            assert moved.status_code == 302
            assert moved.headers["Location"].startswith(f"{rgw['CEPH_S3_ENDPOINT']}/{BUCKET}/")
            ranged = http.get(moved.headers["Location"], headers={"Range": "bytes=1000-2023"}, timeout=30)
            assert ranged.status_code == 206 and ranged.content == payload[1000:2024]

        # 4. delete the Ceph copy only
        dropped = http.delete(f"{api}/v2/stores/ceph/{image_id}", headers=HEADERS, timeout=30)
        assert dropped.status_code == 204, dropped.text
        assert stores() == ["s3", "swift"]
        _until("the Ceph copy to be deleted", lambda: "Contents" not in ceph_client.list_objects_v2(Bucket=BUCKET))

        # 5. delete the image: nothing is left anywhere
        deleted = http.delete(f"{api}/v2/images/{image_id}", headers=HEADERS, timeout=30)
        assert deleted.status_code == 204

        def leftovers() -> list[str]:
            primary = aws_s3.list_objects_v2(Bucket=stack.settings.image_bucket, Prefix=f"images/{image_id}")
            ceph = ceph_client.list_objects_v2(Bucket=BUCKET)
            return (
                [o["Key"] for o in primary.get("Contents", [])]
                + _swift_objects(swift, image_id)
                + [o["Key"] for o in ceph.get("Contents", [])]
            )

        _until("every copy to be deleted", lambda: leftovers() == [], interval_s=0.5)
        assert repo.get(image_id).locations == [], "the tombstone lists no copy left to delete"
    finally:
        http.close()
        aws_s3.close()


class _NoLocation:
    metadata: dict[str, str] = {}


_NO_LOCATION = _NoLocation()
