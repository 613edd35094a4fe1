"""Interoperable import over HTTP: PUT /stage + glance-direct, /v2/info/import, the import lock."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from typing import Any

import pytest

from tests.api.conftest import WebServer
from tests.api.support import A_MEMBER, GlanceHttp
from tests.support.image_corpus import qcow2_with_backing_file

pytestmark = pytest.mark.api

MiB = 1024 * 1024


def _create(http: GlanceHttp, tag: str, **extra: Any) -> str:
    body = {"name": f"imp-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag], **extra}
    return str(http.create(A_MEMBER, **body)["id"])


def _stage(http: GlanceHttp, image_id: str, payload: bytes) -> Any:
    return http.request(
        "PUT",
        f"/v2/images/{image_id}/stage",
        persona=A_MEMBER,
        headers={"Content-Type": "application/octet-stream"},
        data=payload,
    )


def _import(http: GlanceHttp, image_id: str, method: dict[str, Any] | None = None, **body: Any) -> Any:
    payload = {"method": method or {"name": "glance-direct"}, **body}
    return http.request("POST", f"/v2/images/{image_id}/import", persona=A_MEMBER, json=payload)


def _wait_final(http: GlanceHttp, image_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        image: dict[str, Any] = http.show(image_id, A_MEMBER).json()
        if image["status"] in ("active", "queued") or time.monotonic() > deadline:
            return image
        time.sleep(0.2)


def test_info_import__lists_the_enabled_methods_and_create_advertises_them(http: GlanceHttp, tag: str) -> None:
    info = http.request("GET", "/v2/info/import", persona=A_MEMBER).json()
    created = http.request("POST", "/v2/images", persona=A_MEMBER, json={"name": f"h-{tag}", "tags": [tag]})

    assert info == {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": ["glance-direct", "web-download", "copy-image", "glance-download"],
        }
    }
    assert created.headers["OpenStack-image-import-methods"] == "glance-direct,web-download,copy-image,glance-download"
    assert created.headers["OpenStack-image-store-ids"] == "s3,file1,file2"


def test_stage_then_glance_direct__ends_active_with_the_hashes_of_the_staged_bytes(http: GlanceHttp, tag: str) -> None:
    payload = os.urandom(2 * MiB + 1)
    image_id = _create(http, tag)

    assert _stage(http, image_id, payload).status_code == 204
    assert http.show(image_id, A_MEMBER).json()["status"] == "uploading"
    assert _import(http, image_id).status_code == 202
    image = _wait_final(http, image_id)

    assert image["status"] == "active"
    assert image["size"] == len(payload)
    assert image["os_hash_value"] == hashlib.sha512(payload).hexdigest()
    download = http.request("GET", f"/v2/images/{image_id}/file", persona=A_MEMBER)
    assert download.content == payload


def test_import__preconditions_and_bad_bodies__answer_as_glance(http: GlanceHttp, tag: str) -> None:
    queued = _create(http, tag)
    no_formats = str(http.create(A_MEMBER, name=f"nf-{tag}", tags=[tag])["id"])
    assert _stage(http, no_formats, b"abc").status_code == 204

    assert _import(http, queued).status_code == 409  # glance-direct needs staged data
    assert _import(http, no_formats).status_code == 409  # formats must be set
    assert _import(http, queued, {"name": "glance-download"}).status_code == 400  # no glance_region
    bad_uuid = {"name": "glance-download", "glance_region": "RegionOne", "glance_image_id": "foo"}
    refused = _import(http, queued, bad_uuid)
    assert refused.status_code == 400
    assert "image id does not look like a UUID" in refused.text
    assert http.request("POST", f"/v2/images/{queued}/import", persona=A_MEMBER, json={}).status_code == 400
    assert _import(http, queued, all_stores="yes").status_code == 400
    web = {"name": "web-download", "uri": "http://169.254.169.254/latest/meta-data/"}
    assert _import(http, queued, web).status_code == 400
    assert http.show(queued, A_MEMBER).json()["status"] == "queued"


def test_concurrent_imports__one_wins_the_other_gets_409(http: GlanceHttp, tag: str) -> None:
    image_id = _create(http, tag)
    assert _stage(http, image_id, b"\0" * 4096).status_code == 204
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def fire() -> None:
        barrier.wait()
        statuses.append(_import(http, image_id).status_code)

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [202, 409, 409, 409]
    assert _wait_final(http, image_id)["status"] == "active"
    assert _import(http, image_id).status_code == 409  # active images cannot be import targets


def test_unsafe_staged_image__import_returns_it_to_queued_with_the_reason(http: GlanceHttp, tag: str) -> None:
    image_id = _create(http, tag, disk_format="qcow2")
    assert _stage(http, image_id, qcow2_with_backing_file()).status_code == 204

    assert _import(http, image_id).status_code == 202
    image = _wait_final(http, image_id)

    assert image["status"] == "queued"
    assert "backing_file" in image["os_glance_upload_error"]


def test_glanceclient__stage_and_import(glance_a_member: Any, tag: str, http: GlanceHttp) -> None:
    payload = os.urandom(MiB)
    image = glance_a_member.images.create(name=f"gc-imp-{tag}", disk_format="raw", container_format="bare", tags=[tag])

    glance_a_member.images.stage(image["id"], io.BytesIO(payload), image_size=len(payload))
    glance_a_member.images.image_import(image["id"], method="glance-direct")
    final = _wait_final(http, image["id"])

    assert final["status"] == "active"
    assert final["checksum"] == hashlib.md5(payload).hexdigest()


def test_web_download__fetches_the_url_and_ends_active(http: GlanceHttp, tag: str, web_server: WebServer) -> None:
    payload = os.urandom(3 * MiB)
    (web_server.root / f"{tag}.raw").write_bytes(payload)
    image_id = _create(http, tag)

    response = _import(http, image_id, {"name": "web-download", "uri": f"{web_server.url}/{tag}.raw"})
    image = _wait_final(http, image_id)

    assert response.status_code == 202
    assert image["status"] == "active"
    assert image["os_hash_value"] == hashlib.sha512(payload).hexdigest()
    assert http.request("GET", f"/v2/images/{image_id}/file", persona=A_MEMBER).content == payload


def test_web_download__unsafe_content_or_a_dead_url__queued_with_the_reason(
    http: GlanceHttp, tag: str, web_server: WebServer
) -> None:
    (web_server.root / f"{tag}.qcow2").write_bytes(qcow2_with_backing_file())
    unsafe = _create(http, tag, disk_format="qcow2")
    missing = _create(http, tag)

    assert _import(http, unsafe, {"name": "web-download", "uri": f"{web_server.url}/{tag}.qcow2"}).status_code == 202
    assert _import(http, missing, {"name": "web-download", "uri": f"{web_server.url}/nope"}).status_code == 202

    assert "backing_file" in _wait_final(http, unsafe)["os_glance_upload_error"]
    dead = _wait_final(http, missing)
    assert dead["status"] == "queued"
    assert "web-download failed" in dead["os_glance_upload_error"]
