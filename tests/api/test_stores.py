"""Multi-store over HTTP with real clients: discovery, uploads to a store, copy-image, downloads by preference,
deleting one copy, deleting the image, and the service-only locations API.

The package's stack has the primary bucket ``s3`` and two file stores, ``file1`` and ``file2`` (folders on this
machine); the store_sync handler runs in the stack's event loop, so every copy here really streams bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.stack import DevStack
from tests.api.support import A_MEMBER, ADMIN, B_MEMBER, NOVA_FOR_A, GlanceFactory, GlanceHttp, SdkFactory

pytestmark = [
    pytest.mark.api,
    # openstacksdk's own image proxy calls what it deprecates
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
]

PAYLOAD = os.urandom(1024 * 1024 + 123)


@pytest.fixture
def aws_s3(stack: DevStack) -> Iterator[Any]:
    """An S3 client on the stack's moto server, to look into the image bucket."""
    client = boto3.client("s3", endpoint_url=stack.aws_endpoint, region_name=stack.settings.aws_region)
    yield client
    client.close()


def _data_dir(stack: DevStack, store: str) -> Path:
    config = stack.settings.store_configs[store]
    assert config.type == "file"
    return Path(config.data_dir)


def _active_image(http: GlanceHttp, tag: str, payload: bytes = PAYLOAD, **headers: str) -> str:
    body = {"name": f"st-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag]}
    image_id = str(http.create(A_MEMBER, **body)["id"])
    response = http.request(
        "PUT",
        f"/v2/images/{image_id}/file",
        persona=A_MEMBER,
        headers={"Content-Type": "application/octet-stream", **headers},
        data=payload,
    )
    assert response.status_code == 204, response.text
    return image_id


def _wait(http: GlanceHttp, image_id: str, done: Any, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        image: dict[str, Any] = http.show(image_id).json()
        if done(image):
            return image
        assert time.monotonic() < deadline, f"timed out; last seen {image}"
        time.sleep(0.1)


def _stores_of(image: dict[str, Any]) -> list[str]:
    return [s for s in image.get("stores", "").split(",") if s]


def test_info_stores__lists_every_store_with_the_primary_as_default(glance: GlanceFactory, sdk: SdkFactory) -> None:
    listed = glance(A_MEMBER).images.get_stores_info()
    assert listed["stores"] == [
        {"id": "s3", "description": "Primary image bucket (uploads land here)", "default": "true"},
        {"id": "file1", "description": "file1"},
        {"id": "file2", "description": "file2"},
    ]
    assert [store.id for store in sdk(A_MEMBER).image.stores()] == ["s3", "file1", "file2"]


def test_info_stores_detail__is_for_admins_and_shows_driver_properties(
    glance: GlanceFactory, http: GlanceHttp, stack: DevStack
) -> None:
    detail = glance(ADMIN).images.get_stores_info_detail()["stores"]
    by_id = {store["id"]: store for store in detail}
    assert by_id["s3"]["type"] == "s3" and by_id["s3"]["weight"] == 100
    assert by_id["s3"]["properties"]["s3_store_large_object_size"] > 0
    assert by_id["file1"]["properties"]["data_dir"] == str(_data_dir(stack, "file1"))
    assert http.request("GET", "/v2/info/stores/detail", persona=A_MEMBER).status_code == 403


def test_upload_with_store_header__lands_in_the_primary_and_is_copied_to_the_store(
    http: GlanceHttp, glance: GlanceFactory, stack: DevStack, tag: str
) -> None:
    body = {"name": f"st-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag]}
    image_id = str(http.create(A_MEMBER, **body)["id"])
    glance(A_MEMBER).images.upload(image_id, io.BytesIO(PAYLOAD), backend="file1")

    image = _wait(http, image_id, lambda i: _stores_of(i) == ["s3", "file1"])
    assert image["os_glance_importing_to_stores"] == "" and image["os_glance_failed_import"] == ""
    assert (_data_dir(stack, "file1") / image_id).read_bytes() == PAYLOAD


def test_upload_with_an_unknown_store__is_400_and_the_image_stays_queued(http: GlanceHttp, tag: str) -> None:
    body = {"name": f"st-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag]}
    image_id = str(http.create(A_MEMBER, **body)["id"])
    response = http.request(
        "PUT",
        f"/v2/images/{image_id}/file",
        persona=A_MEMBER,
        headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": "nowhere"},
        data=b"x",
    )
    assert response.status_code == 400
    assert "Store for identifier nowhere not found" in response.json()["message"]
    assert http.show(image_id).json()["status"] == "queued"


def test_copy_image__by_admin_through_openstacksdk_reaches_every_store(
    http: GlanceHttp, sdk: SdkFactory, stack: DevStack, tag: str
) -> None:
    image_id = _active_image(http, tag)
    conn = sdk(ADMIN)
    conn.image.import_image(conn.image.get_image(image_id), method="copy-image", all_stores=True)

    image = _wait(http, image_id, lambda i: _stores_of(i) == ["s3", "file1", "file2"])
    assert image["os_glance_failed_import"] == ""
    for store in ("file1", "file2"):
        assert (_data_dir(stack, store) / image_id).read_bytes() == PAYLOAD
    # every store already holds it: all_stores is a no-op, a named store is 400
    again = {"method": {"name": "copy-image"}, "all_stores": True}
    assert http.request("POST", f"/v2/images/{image_id}/import", json=again).status_code == 202
    named = {"method": {"name": "copy-image"}, "stores": ["file1"]}
    response = http.request("POST", f"/v2/images/{image_id}/import", json=named)
    assert response.status_code == 400
    assert "already present at store 'file1'" in response.json()["message"]


def test_copy_image__is_refused_to_members_unknown_stores_and_inactive_images(http: GlanceHttp, tag: str) -> None:
    image_id = _active_image(http, tag)
    body = {"method": {"name": "copy-image"}, "stores": ["file1"]}
    assert http.request("POST", f"/v2/images/{image_id}/import", persona=A_MEMBER, json=body).status_code == 403
    # another project cannot even see the private image
    assert http.request("POST", f"/v2/images/{image_id}/import", persona=B_MEMBER, json=body).status_code == 404
    unknown = {"method": {"name": "copy-image"}, "stores": ["nowhere"]}
    assert http.request("POST", f"/v2/images/{image_id}/import", json=unknown).status_code == 409
    both = {"method": {"name": "copy-image"}, "stores": ["file1"], "all_stores": True}
    assert http.request("POST", f"/v2/images/{image_id}/import", json=both).status_code == 400
    queued = http.create(A_MEMBER, name=f"q-{tag}", disk_format="raw", container_format="bare", tags=[tag])
    assert http.request("POST", f"/v2/images/{queued['id']}/import", json=body).status_code == 409


def test_glance_direct_with_stores__copies_after_activation(http: GlanceHttp, stack: DevStack, tag: str) -> None:
    body = {"name": f"st-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag]}
    image_id = str(http.create(A_MEMBER, **body)["id"])
    staged = http.request(
        "PUT",
        f"/v2/images/{image_id}/stage",
        persona=A_MEMBER,
        headers={"Content-Type": "application/octet-stream"},
        data=PAYLOAD,
    )
    assert staged.status_code == 204
    request = {"method": {"name": "glance-direct"}, "stores": ["s3", "file2"], "all_stores_must_succeed": False}
    response = http.request("POST", f"/v2/images/{image_id}/import", persona=A_MEMBER, json=request)
    assert response.status_code == 202, response.text
    importing = http.show(image_id).json()
    assert importing["os_glance_importing_to_stores"] == "file2"

    _wait(http, image_id, lambda i: _stores_of(i) == ["s3", "file2"])
    assert (_data_dir(stack, "file2") / image_id).read_bytes() == PAYLOAD


def test_download_prefer__reads_from_the_preferred_store(http: GlanceHttp, stack: DevStack, tag: str) -> None:
    image_id = _active_image(http, tag, **{"X-Image-Meta-Store": "file1"})
    _wait(http, image_id, lambda i: "file1" in _stores_of(i))
    # Put other bytes of the same length in file1 behind the service's back: a read from file1 shows them.
    marker = bytes(reversed(PAYLOAD))
    (_data_dir(stack, "file1") / image_id).write_bytes(marker)

    default = http.request("GET", f"/v2/images/{image_id}/file", headers={"Accept": "*/*"})
    preferred = http.request("GET", f"/v2/images/{image_id}/file?prefer=file1,s3", headers={"Accept": "*/*"})
    unknown_first = http.request("GET", f"/v2/images/{image_id}/file?prefer=nowhere,file1", headers={"Accept": "*/*"})
    ranged = http.request(
        "GET", f"/v2/images/{image_id}/file?prefer=file1", headers={"Accept": "*/*", "Range": "bytes=10-19"}
    )

    assert default.status_code == 200 and default.content == PAYLOAD
    assert preferred.status_code == 200 and preferred.content == marker
    assert unknown_first.content == marker
    assert ranged.status_code == 206 and ranged.content == marker[10:20]
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{len(PAYLOAD)}"


def test_delete_from_store__drops_one_copy_but_never_the_last(
    http: GlanceHttp, glance: GlanceFactory, stack: DevStack, tag: str
) -> None:
    image_id = _active_image(http, tag, **{"X-Image-Meta-Store": "file1"})
    _wait(http, image_id, lambda i: "file1" in _stores_of(i))
    copy = _data_dir(stack, "file1") / image_id
    assert copy.exists()

    assert http.request("DELETE", f"/v2/stores/file1/{image_id}", persona=A_MEMBER).status_code == 403
    assert http.request("DELETE", f"/v2/stores/nowhere/{image_id}").status_code == 409
    assert http.request("DELETE", f"/v2/stores/file2/{image_id}").status_code == 404
    glance(ADMIN).images.delete_from_store("s3", image_id)
    image = http.show(image_id).json()
    assert _stores_of(image) == ["file1"]
    # the only copy left is in file1, and downloads now come from there
    download = http.request("GET", f"/v2/images/{image_id}/file", headers={"Accept": "*/*"})
    assert download.content == PAYLOAD
    last = http.request("DELETE", f"/v2/stores/file1/{image_id}")
    assert last.status_code == 403
    assert "only store" in last.json()["message"]
    assert copy.exists()


def test_delete_image__removes_the_bytes_from_every_store(
    http: GlanceHttp, stack: DevStack, aws_s3: Any, tag: str
) -> None:
    image_id = _active_image(http, tag)
    copy = {"method": {"name": "copy-image"}, "all_stores": True}
    assert http.request("POST", f"/v2/images/{image_id}/import", json=copy).status_code == 202
    _wait(http, image_id, lambda i: len(_stores_of(i)) == 3)

    assert http.request("DELETE", f"/v2/images/{image_id}").status_code == 204

    deadline = time.monotonic() + 30
    while True:
        left = [s for s in ("file1", "file2") if (_data_dir(stack, s) / image_id).exists()]
        listed = aws_s3.list_objects_v2(Bucket=stack.settings.image_bucket, Prefix=f"images/{image_id}/")
        left += [o["Key"] for o in listed.get("Contents", [])]
        if not left:
            break
        assert time.monotonic() < deadline, f"still stored: {left}"
        time.sleep(0.1)


def test_locations__service_adds_bytes_from_a_store_and_the_image_becomes_active(
    http: GlanceHttp, stack: DevStack, tag: str
) -> None:
    body = {"name": f"loc-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag]}
    image_id = str(http.create(A_MEMBER, **body)["id"])
    placed = _data_dir(stack, "file2") / f"{image_id}-by-nova"
    placed.write_bytes(PAYLOAD)
    url = f"file://{placed}"
    validation = {"os_hash_algo": "sha256", "os_hash_value": hashlib.sha256(PAYLOAD).hexdigest()}

    member = http.request("POST", f"/v2/images/{image_id}/locations", persona=A_MEMBER, json={"url": url})
    assert member.status_code == 403
    foreign = http.request(
        "POST", f"/v2/images/{image_id}/locations", persona=A_MEMBER, headers=NOVA_FOR_A, json={"url": "file:///etc/x"}
    )
    assert foreign.status_code == 400
    bad_hash = {"url": url, "validation_data": {"os_hash_algo": "sha256", "os_hash_value": "zz"}}
    bad = http.request("POST", f"/v2/images/{image_id}/locations", persona=A_MEMBER, headers=NOVA_FOR_A, json=bad_hash)
    assert bad.status_code == 400
    added = http.request(
        "POST",
        f"/v2/images/{image_id}/locations",
        persona=A_MEMBER,
        headers=NOVA_FOR_A,
        json={"url": url, "validation_data": validation},
    )
    assert added.status_code == 202, added.text

    image = _wait(http, image_id, lambda i: i["status"] in ("active", "queued"))
    assert image["status"] == "active"
    assert image["stores"] == "file2"
    assert image["os_hash_algo"] == "sha256" and image["os_hash_value"] == validation["os_hash_value"]
    assert image["checksum"] == hashlib.md5(PAYLOAD, usedforsecurity=False).hexdigest()
    listed = http.request("GET", f"/v2/images/{image_id}/locations", persona=ADMIN)
    assert listed.status_code == 200
    assert listed.json() == [{"url": url, "metadata": {"store": "file2"}}]
    assert http.request("GET", f"/v2/images/{image_id}/locations", persona=A_MEMBER).status_code == 403
    again = http.request(
        "POST", f"/v2/images/{image_id}/locations", persona=A_MEMBER, headers=NOVA_FOR_A, json={"url": url}
    )
    assert again.status_code == 409


def test_locations__bytes_that_do_not_match_the_validation_data_leave_the_image_queued(
    http: GlanceHttp, stack: DevStack, tag: str
) -> None:
    body = {"name": f"loc-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag]}
    image_id = str(http.create(A_MEMBER, **body)["id"])
    placed = _data_dir(stack, "file1") / f"{image_id}-by-nova"
    placed.write_bytes(PAYLOAD)
    wrong = {"os_hash_algo": "md5", "os_hash_value": "0" * 32}
    added = http.request(
        "POST",
        f"/v2/images/{image_id}/locations",
        persona=A_MEMBER,
        headers=NOVA_FOR_A,
        json={"url": f"file://{placed}", "validation_data": wrong},
    )
    assert added.status_code == 202

    image = _wait(http, image_id, lambda i: i["status"] in ("active", "queued") and "os_glance_upload_error" in i)
    assert image["status"] == "queued"
    assert "md5 of the data is" in image["os_glance_upload_error"]
    assert placed.read_bytes() == PAYLOAD, "the service's bytes are never deleted by a refusal"


def test_versions__advertise_the_multi_store_versions(http: GlanceHttp) -> None:
    versions = http.request("GET", "/versions").json()["versions"]
    ids = [v["id"] for v in versions]
    assert ids[:8] == ["v2.17", "v2.15", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8"]
    assert versions[0]["status"] == "CURRENT"


def test_copy_to_a_broken_store__is_retried_then_recorded_failed_and_sent_to_the_dlq(
    http: GlanceHttp, stack: DevStack, tag: str
) -> None:
    image_id = _active_image(http, tag)
    data_dir = _data_dir(stack, "file2")
    parked = data_dir.with_name(data_dir.name + "-parked")
    data_dir.rename(parked)
    data_dir.write_bytes(b"a file where the store's folder should be")
    sqs = boto3.client("sqs", endpoint_url=stack.aws_endpoint, region_name=stack.settings.aws_region)
    try:
        copy = {"method": {"name": "copy-image"}, "stores": ["file2"]}
        assert http.request("POST", f"/v2/images/{image_id}/import", json=copy).status_code == 202

        image = _wait(http, image_id, lambda i: i["os_glance_failed_import"] == "file2")
        assert _stores_of(image) == ["s3"] and image["os_glance_importing_to_stores"] == ""
        dlq = sqs.get_queue_url(QueueName=f"{stack.settings.store_sync_queue_name}-dlq")["QueueUrl"]
        deadline = time.monotonic() + 30
        dead: list[dict[str, Any]] = []
        while not any(job.get("image_id") == image_id for job in dead):
            assert time.monotonic() < deadline, "the failed job did not reach the DLQ"
            received = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            dead += [json.loads(m["Body"]) for m in received.get("Messages", [])]
        assert {"op": "copy", "store": "file2", "image_id": image_id}.items() <= next(
            job for job in dead if job.get("image_id") == image_id
        ).items()
    finally:
        sqs.close()
        data_dir.unlink()
        parked.rename(data_dir)
    # the store works again: asking again copies it
    again = {"method": {"name": "copy-image"}, "stores": ["file2"]}
    assert http.request("POST", f"/v2/images/{image_id}/import", json=again).status_code == 202
    done = _wait(http, image_id, lambda i: _stores_of(i) == ["s3", "file2"])
    assert done["os_glance_failed_import"] == ""


def _import_task(http: GlanceHttp, image_id: str) -> dict[str, Any]:
    tasks = http.request("GET", f"/v2/images/{image_id}/tasks", persona=A_MEMBER).json()["tasks"]
    assert len(tasks) == 1
    task: dict[str, Any] = tasks[0]
    return task


def test_glance_direct_to_more_stores__its_task_settles_with_the_copies(
    http: GlanceHttp, stack: DevStack, tag: str
) -> None:
    def staged_import(stores: list[str]) -> str:
        body = {"name": f"st-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag]}
        image_id = str(http.create(A_MEMBER, **body)["id"])
        headers = {"Content-Type": "application/octet-stream"}
        staged = http.request("PUT", f"/v2/images/{image_id}/stage", persona=A_MEMBER, headers=headers, data=PAYLOAD)
        assert staged.status_code == 204
        request = {"method": {"name": "glance-direct"}, "stores": stores}
        assert http.request("POST", f"/v2/images/{image_id}/import", persona=A_MEMBER, json=request).status_code == 202
        return image_id

    copied = staged_import(["file1"])
    data_dir = _data_dir(stack, "file2")
    parked = data_dir.with_name(data_dir.name + "-parked-task")
    data_dir.rename(parked)
    data_dir.write_bytes(b"not a folder")
    try:
        broken = staged_import(["file2"])
        _wait(http, broken, lambda i: _import_task(http, broken)["status"] == "failure")
    finally:
        data_dir.unlink()
        parked.rename(data_dir)
    _wait(http, copied, lambda i: _import_task(http, copied)["status"] == "success")
    # read after the tasks settled (a task settles after the image change it reports)
    done, failed = http.show(copied).json(), http.show(broken).json()

    assert _stores_of(done) == ["s3", "file1"]
    assert _import_task(http, copied)["result"] == {"image_id": copied, "stores": ["file1"]}
    assert failed["status"] == "active" and _stores_of(failed) == ["s3"]
    assert failed["os_glance_failed_import"] == "file2"
    assert _import_task(http, broken)["message"] == "Copying the image failed for stores: file2"
