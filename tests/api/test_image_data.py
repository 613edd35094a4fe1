"""Image bytes through unmodified clients: PUT /file and GET /file with openstacksdk, glanceclient and the CLI."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path
from typing import Any

import glanceclient
import openstack.connection
import pytest
import requests
from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session

from tests.api.support import A_MEMBER, A_READER, ADMIN, GlanceHttp
from tests.api.test_openstack_cli import _openstack, _openstack_json
from tests.support.image_corpus import qcow2_with_backing_file

pytestmark = pytest.mark.api

MiB = 1024 * 1024


def _payload(size: int) -> bytes:
    return os.urandom(size)


def _create(http: GlanceHttp, tag: str, **extra: Any) -> str:
    body = {"name": f"data-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag], **extra}
    return str(http.create(A_MEMBER, **body)["id"])


def _put_file(http: GlanceHttp, image_id: str, payload: bytes, **headers: str) -> Any:
    return http.request(
        "PUT",
        f"/v2/images/{image_id}/file",
        persona=A_MEMBER,
        headers={"Content-Type": "application/octet-stream", **headers},
        data=payload,
    )


def _wait_status(http: GlanceHttp, image_id: str, wanted: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        image: dict[str, Any] = http.show(image_id, A_MEMBER).json()
        if image["status"] == wanted or time.monotonic() > deadline:
            return image
        time.sleep(0.2)


def test_put_file__returns_with_the_image_active_and_hashed(http: GlanceHttp, tag: str) -> None:
    payload = _payload(3 * MiB + 17)
    image_id = _create(http, tag)

    response = _put_file(http, image_id, payload)

    assert response.status_code == 204, response.text
    image = http.show(image_id, A_MEMBER).json()
    assert image["status"] == "active"
    assert image["size"] == len(payload)
    assert image["checksum"] == hashlib.md5(payload).hexdigest()
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(payload).hexdigest()
    assert image["stores"] == "s3"


def test_put_file__errors_follow_glance(http: GlanceHttp, tag: str) -> None:
    image_id = _create(http, tag)
    no_formats = str(http.create(A_MEMBER, name=f"nf-{tag}", tags=[tag])["id"])

    assert _put_file(http, image_id, b"x", **{"Content-Type": "application/json"}).status_code == 415
    assert _put_file(http, no_formats, b"x").status_code == 400
    assert _put_file(http, image_id, b"abc", **{"x-openstack-image-size": "4"}).status_code == 400
    assert http.show(image_id, A_MEMBER).json()["status"] == "queued"
    assert _put_file(http, image_id, b"abcd").status_code == 204
    assert _put_file(http, image_id, b"abcd").status_code == 409
    reader = http.request("PUT", f"/v2/images/{image_id}/file", persona=A_READER, data=b"x",
                          headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    assert reader.status_code == 403


def test_put_file__unsafe_image__is_415_and_the_image_is_queued_with_the_reason(http: GlanceHttp, tag: str) -> None:
    image_id = _create(http, tag, disk_format="qcow2")

    response = _put_file(http, image_id, qcow2_with_backing_file())

    assert response.status_code == 415
    assert "backing_file" in response.json()["message"]
    image = http.show(image_id, A_MEMBER).json()
    assert image["status"] == "queued"
    assert "backing_file" in image["os_glance_upload_error"]
    assert http.request("GET", f"/v2/images/{image_id}/file", persona=A_MEMBER).status_code == 204


def test_get_file__whole_and_ranged_and_deactivated(http: GlanceHttp, tag: str) -> None:
    payload = _payload(1 * MiB)
    image_id = _create(http, tag)
    queued = http.request("GET", f"/v2/images/{image_id}/file", persona=A_MEMBER)
    assert queued.status_code == 204
    assert _put_file(http, image_id, payload).status_code == 204
    path = f"/v2/images/{image_id}/file"

    whole = http.request("GET", path, persona=A_MEMBER)
    ranged = http.request("GET", path, persona=A_MEMBER, headers={"Range": "bytes=100-199"})
    suffix = http.request("GET", path, persona=A_MEMBER, headers={"Range": "bytes=-10"})
    beyond = http.request("GET", path, persona=A_MEMBER, headers={"Range": f"bytes={len(payload) + 5}-"})
    multi = http.request("GET", path, persona=A_MEMBER, headers={"Range": "bytes=0-1,5-6"})

    assert (whole.status_code, whole.content) == (200, payload)
    assert whole.headers["Content-MD5"] == hashlib.md5(payload).hexdigest()
    assert whole.headers["Content-Length"] == str(len(payload))
    assert (ranged.status_code, ranged.content) == (206, payload[100:200])
    assert ranged.headers["Content-Range"] == f"bytes 100-199/{len(payload)}"
    assert (suffix.status_code, suffix.content) == (206, payload[-10:])
    assert beyond.status_code == 416
    assert multi.status_code == 400
    assert http.request("GET", path, persona=A_READER).status_code == 403

    assert http.request("POST", f"/v2/images/{image_id}/actions/deactivate", persona=A_MEMBER).status_code == 204
    assert http.request("GET", path, persona=A_MEMBER).status_code == 403
    assert http.request("GET", path, persona=ADMIN).content == payload


@pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning")
@pytest.mark.filterwarnings("ignore:The _compute_attributes method is deprecated:DeprecationWarning")
def test_openstacksdk__uploads_with_put_file_and_downloads_verified(
    sdk_a_member: openstack.connection.Connection, tag: str, tmp_path: Path
) -> None:
    payload = _payload(2 * MiB)
    source = tmp_path / "in.raw"
    source.write_bytes(payload)

    # filename= would leave the SDK's own file handle open; hand it one we close.
    with source.open("rb") as data:
        image = sdk_a_member.image.create_image(
            name=f"sdk-{tag}", data=data, disk_format="raw", container_format="bare", tags=[tag],
            allow_duplicates=True,
        )  # fmt: skip
    fetched = sdk_a_member.image.get_image(image.id)
    downloaded = sdk_a_member.image.download_image(fetched)

    assert fetched.status == "active"
    assert fetched.hash_value == hashlib.sha512(payload).hexdigest()
    assert downloaded.content == payload


def test_glanceclient__uploads_and_downloads_with_checksum_verification(glance_a_member: Any, tag: str) -> None:
    payload = _payload(2 * MiB + 3)
    image = glance_a_member.images.create(name=f"gc-{tag}", disk_format="raw", container_format="bare", tags=[tag])

    glance_a_member.images.upload(image["id"], io.BytesIO(payload), image_size=len(payload))
    body = glance_a_member.images.data(image["id"])  # glanceclient checks Content-MD5 / os_hash_value as it reads
    data = b"".join(body)
    shown = glance_a_member.images.get(image["id"])

    assert data == payload
    assert shown["status"] == "active"
    assert shown["checksum"] == hashlib.md5(payload).hexdigest()


def test_openstack_cli__image_create_file_and_image_save(endpoint: str, tag: str, tmp_path: Path) -> None:
    payload = _payload(1 * MiB + 5)
    source, target = tmp_path / "in.raw", tmp_path / "out.raw"
    source.write_bytes(payload)

    created = _openstack_json(
        endpoint, "image", "create", "--disk-format", "raw", "--container-format", "bare", "--tag", tag,
        "--file", str(source), f"cli-data-{tag}",
    )  # fmt: skip
    saved = _openstack(endpoint, "image", "save", "--file", str(target), created["id"])

    assert created["status"] == "active"
    assert saved.returncode == 0, saved.stderr
    assert target.read_bytes() == payload


@pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning")
def test_redirect_mode__every_client_follows_the_presigned_get_and_verifies_the_bytes(
    http: GlanceHttp, tag: str, redirect_endpoint: str, tmp_path: Path
) -> None:
    payload = _payload(1 * MiB + 9)
    image_id = _create(http, tag)
    assert _put_file(http, image_id, payload).status_code == 204
    raw = requests.get(f"{redirect_endpoint}/v2/images/{image_id}/file", headers=A_MEMBER.headers,
                       allow_redirects=False, timeout=30)  # fmt: skip
    assert raw.status_code == 302
    assert "X-Amz-Signature=" in raw.headers["Location"]

    session = ks_session.Session(auth=noauth.NoAuth(), additional_headers=A_MEMBER.headers)
    sdk = openstack.connection.Connection(session=session, image_endpoint_override=redirect_endpoint,
                                          image_api_version="2")  # fmt: skip
    glance = glanceclient.Client("2", session=session, endpoint=redirect_endpoint)
    try:
        via_sdk = sdk.image.download_image(sdk.image.get_image(image_id)).content
        via_glanceclient = b"".join(glance.images.data(image_id))
    finally:
        sdk.close()
        session.session.close()
    target = tmp_path / "cli.raw"
    saved = _openstack(redirect_endpoint, "image", "save", "--file", str(target), image_id)

    assert via_sdk == payload
    assert via_glanceclient == payload
    assert saved.returncode == 0, saved.stderr
    assert target.read_bytes() == payload
