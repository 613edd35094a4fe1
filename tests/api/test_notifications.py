"""Glance notifications on the local EventBridge bus, read from the queue its rule forwards them to."""

from __future__ import annotations

import os
import time

import pytest

from tests.api.events import NotificationQueue, about_image, types
from tests.api.support import A_MEMBER, B_MEMBER, GlanceHttp

pytestmark = pytest.mark.api


def _wait_active(http: GlanceHttp, image_id: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while http.show(image_id, A_MEMBER).json()["status"] != "active":
        assert time.monotonic() < deadline, "the image did not become active"
        time.sleep(0.2)


def test_create_upload_share_download_delete__publishes_glance_events_in_order(
    http: GlanceHttp, tag: str, notifications: NotificationQueue
) -> None:
    payload = os.urandom(4096)
    image = http.create(
        A_MEMBER, name=f"events-{tag}", disk_format="raw", container_format="bare", visibility="shared", tags=[tag]
    )
    image_id = image["id"]
    upload = http.request(
        "PUT",
        f"/v2/images/{image_id}/file",
        persona=A_MEMBER,
        headers={"Content-Type": "application/octet-stream"},
        data=payload,
    )
    assert upload.status_code == 204, upload.text
    shared = http.request(
        "POST", f"/v2/images/{image_id}/members", persona=A_MEMBER, json={"member": B_MEMBER.project_id}
    )
    assert shared.status_code == 200, shared.text
    accepted = http.request(
        "PUT",
        f"/v2/images/{image_id}/members/{B_MEMBER.project_id}",
        persona=B_MEMBER,
        json={"status": "accepted"},
    )
    assert accepted.status_code == 200, accepted.text
    download = http.request("GET", f"/v2/images/{image_id}/file", persona=B_MEMBER)
    assert download.content == payload
    deleted = http.request("DELETE", f"/v2/images/{image_id}", persona=A_MEMBER)
    assert deleted.status_code == 204
    expected = [
        "image.create",
        "image.update",  # queued -> uploading (Glance: queued -> saving)
        "image.prepare",
        "image.upload",
        "image.activate",
        "image.update",  # the activating save
        "image.member.create",
        "image.member.update",
        "image.send",
        "image.delete",
    ]

    events = notifications.wait_for(about_image(image_id), len(expected))

    assert types(events) == expected
    by_type = {e["detail-type"]: e for e in events}
    create = by_type["image.create"]
    assert create["source"] == "openstack.glance"
    detail = create["detail"]
    assert detail["publisher_id"] == "image.localhost"
    assert detail["request_id"].startswith("req-")
    assert detail["priority"] == "INFO"
    assert detail["payload"]["owner"] == A_MEMBER.project_id
    assert detail["payload"]["tags"] == [tag]
    assert "locations" not in detail["payload"] and "direct_url" not in detail["payload"]
    assert by_type["image.activate"]["detail"]["payload"]["status"] == "active"
    assert by_type["image.activate"]["detail"]["payload"]["size"] == len(payload)
    assert by_type["image.upload"]["detail"]["payload"]["backend"] == "s3"
    send = by_type["image.send"]["detail"]["payload"]
    assert send == {
        "bytes_sent": len(payload),
        "image_id": image_id,
        "owner_id": A_MEMBER.project_id,
        "receiver_tenant_id": B_MEMBER.project_id,
        "receiver_user_id": B_MEMBER.user_id,
    }
    member = by_type["image.member.update"]["detail"]["payload"]
    assert (member["member_id"], member["status"]) == (B_MEMBER.project_id, "accepted")
    gone = by_type["image.delete"]["detail"]["payload"]
    assert gone["deleted"] is True and gone["deleted_at"] is not None and gone["status"] == "deleted"
    assert by_type["image.create"]["detail"]["request_id"] != by_type["image.delete"]["detail"]["request_id"]


def test_refused_upload__publishes_image_upload_at_error_with_the_reason(
    http: GlanceHttp, tag: str, notifications: NotificationQueue
) -> None:
    image_id = http.create(A_MEMBER, name=f"events-{tag}", disk_format="raw", container_format="bare", tags=[tag])["id"]
    upload = http.request(
        "PUT",
        f"/v2/images/{image_id}/file",
        persona=A_MEMBER,
        headers={"Content-Type": "application/octet-stream", "x-openstack-image-size": "10"},
        data=b"only five",
    )
    assert upload.status_code == 400

    events = notifications.wait_for(about_image(image_id), 5)

    assert types(events) == ["image.create", "image.update", "image.prepare", "image.upload", "image.update"]
    failed = events[3]["detail"]
    assert failed["priority"] == "ERROR"
    assert isinstance(failed["payload"], str) and "size mismatch" in failed["payload"]
