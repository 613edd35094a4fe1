"""Format confusion on every upload path, over HTTP: PUT /file, stage + glance-direct, and a presigned upload
finalised from its S3 event. Each payload is one that qemu reads as another format (tests/unit/
test_format_confusion.py holds the inspector to ``qemu-img info`` on the whole corpus) and that oslo's inspector
alone let through as raw, or a container holding such a disk. Every one must end ``queued`` with the reason, its
bytes gone."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.api.support import A_MEMBER, GlanceHttp
from tests.support.archives import ova
from tests.support.image_corpus import qcow2_with_backing_file
from tests.support.qemu_corpus import iso_with, qcow2_header, vmdk_descriptor

pytestmark = pytest.mark.api


# (id, payload, disk_format, container_format, a word the reason names)
CASES = [
    ("vmdk-descriptor-after-a-binary-comment", vmdk_descriptor(before=b"#\x00\xff\x01\n"), "raw", "bare", "vmdk"),
    ("qcow2-header-of-104-bytes", qcow2_header()[:104], "raw", "bare", "qcow2"),
    ("iso-whose-system-area-is-a-vmdk-descriptor", iso_with(vmdk_descriptor()), "iso", "bare", "vmdk"),
    (
        "qcow2-backed-by-a-host-file-in-an-ova",
        ova(qcow2_with_backing_file(), "disk1.qcow2"),
        "qcow2",
        "ova",
        "backing_file",
    ),
    ("qcow2-backed-by-a-host-file-as-docker", qcow2_with_backing_file(), "raw", "docker", "qcow2"),
]


def _create(http: GlanceHttp, tag: str, disk_format: str, container_format: str) -> str:
    body = {"name": f"hostile-{tag}", "disk_format": disk_format, "container_format": container_format, "tags": [tag]}
    return str(http.create(A_MEMBER, **body)["id"])


def _settled(http: GlanceHttp, image_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """The image once no upload or import is in progress (or after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        image: dict[str, Any] = http.show(image_id, A_MEMBER).json()
        if image["status"] in ("active", "queued") and image.get("os_glance_upload_error") is not None:
            return image
        if image["status"] == "active" or time.monotonic() > deadline:
            return image
        time.sleep(0.2)


def _put_bytes(http: GlanceHttp, image_id: str, target: str, payload: bytes) -> requests.Response:
    """``PUT /v2/images/{id}/{target}`` (``file`` or ``stage``) with ``payload`` as the body."""
    headers = {"Content-Type": "application/octet-stream"}
    return http.request("PUT", f"/v2/images/{image_id}/{target}", persona=A_MEMBER, headers=headers, data=payload)


def _put_file(http: GlanceHttp, image_id: str, payload: bytes) -> None:
    response = _put_bytes(http, image_id, "file", payload)
    assert response.status_code == 415, response.text


def _stage_and_import(http: GlanceHttp, image_id: str, payload: bytes) -> None:
    staged = _put_bytes(http, image_id, "stage", payload)
    assert staged.status_code == 204, staged.text
    imported = http.request(
        "POST", f"/v2/images/{image_id}/import", persona=A_MEMBER, json={"method": {"name": "glance-direct"}}
    )
    assert imported.status_code == 202, imported.text


def _presigned(http: GlanceHttp, image_id: str, payload: bytes) -> None:
    opened = http.request(
        "POST", f"/v2/images/{image_id}/upload", persona=A_MEMBER, json={"size": len(payload), "method": "single"}
    )
    assert opened.status_code == 201, opened.text
    upload = opened.json()["request"]
    put = requests.request(upload["method"], upload["url"], data=payload, headers=upload["headers"], timeout=30)
    assert put.status_code == 200, put.text


PATHS: dict[str, Callable[[GlanceHttp, str, bytes], None]] = {
    "put-file": _put_file,
    "stage-import": _stage_and_import,
    "presigned-upload": _presigned,
}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize(("payload", "disk_format", "container_format", "named"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])  # fmt: skip
def test_payload_qemu_reads_as_another_format__ends_queued_with_the_reason_on_every_path(
    http: GlanceHttp, tag: str, path: str, payload: bytes, disk_format: str, container_format: str, named: str
) -> None:
    image_id = _create(http, tag, disk_format, container_format)

    PATHS[path](http, image_id, payload)
    image = _settled(http, image_id)

    assert image["status"] == "queued", image
    assert named in image["os_glance_upload_error"]
    assert http.request("GET", f"/v2/images/{image_id}/file", persona=A_MEMBER).status_code == 204
