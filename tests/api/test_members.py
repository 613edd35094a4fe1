"""Sharing over HTTP: the member lifecycle with python-glanceclient and raw requests, as Glance answers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from glanceclient import exc as glance_exc

from tests.api.support import A_MEMBER, ADMIN, B_MEMBER, B_READER, GlanceHttp, Persona

pytestmark = pytest.mark.api

C_MEMBER = Persona("c-member", uuid.uuid4().hex, ("member", "reader"))


def _shared_image(http: GlanceHttp, tag: str, **extra: Any) -> str:
    body = {"name": f"shared-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag], **extra}
    return str(http.create(A_MEMBER, **body)["id"])


def _members(http: GlanceHttp, image_id: str, persona: Persona) -> Any:
    return http.request("GET", f"/v2/images/{image_id}/members", persona=persona)


def test_member_lifecycle__with_glanceclient(
    glance_a_member: Any, glance_b_member: Any, http: GlanceHttp, tag: str
) -> None:
    image_id = _shared_image(http, tag)
    project_b = B_MEMBER.project_id

    added = glance_a_member.image_members.create(image_id, project_b)
    assert (added["member_id"], added["status"]) == (project_b, "pending")

    # A member sees and can read the image at once; it shows in its list only once accepted.
    assert glance_b_member.images.get(image_id)["id"] == image_id
    assert image_id not in [i["id"] for i in glance_b_member.images.list(filters={"tag": [tag]})]
    pending = glance_b_member.images.list(filters={"tag": [tag], "member_status": "pending"})
    assert [i["id"] for i in pending] == [image_id]

    with pytest.raises(glance_exc.HTTPForbidden):
        glance_a_member.image_members.update(image_id, project_b, "accepted")  # only the member decides
    accepted = glance_b_member.image_members.update(image_id, project_b, "accepted")
    assert accepted["status"] == "accepted"
    assert [i["id"] for i in glance_b_member.images.list(filters={"tag": [tag]})] == [image_id]

    assert [m["member_id"] for m in glance_a_member.image_members.list(image_id)] == [project_b]
    assert [m["member_id"] for m in glance_b_member.image_members.list(image_id)] == [project_b]

    glance_a_member.image_members.delete(image_id, project_b)
    with pytest.raises(glance_exc.HTTPNotFound):
        glance_b_member.images.get(image_id)


def test_members__errors_follow_glance(http: GlanceHttp, tag: str) -> None:
    shared = _shared_image(http, tag)
    private = _shared_image(http, tag, visibility="private")
    path = f"/v2/images/{shared}/members"
    add_b = {"member": B_MEMBER.project_id}

    assert http.request("POST", f"/v2/images/{private}/members", persona=A_MEMBER, json=add_b).status_code == 403
    assert http.request("POST", path, persona=A_MEMBER, json={"nope": 1}).status_code == 400
    assert http.request("POST", path, persona=A_MEMBER, json=add_b).status_code == 200
    assert http.request("POST", path, persona=A_MEMBER, json=add_b).status_code == 409
    assert http.request("POST", path, persona=B_MEMBER, json={"member": C_MEMBER.project_id}).status_code == 403
    bad_status = http.request("PUT", f"{path}/{B_MEMBER.project_id}", persona=B_MEMBER, json={"status": "maybe"})
    assert bad_status.status_code == 400
    assert http.request("GET", f"{path}/{uuid.uuid4().hex}", persona=A_MEMBER).status_code == 404
    assert http.request("DELETE", f"{path}/{uuid.uuid4().hex}", persona=A_MEMBER).status_code == 404
    # A project that is not a member cannot even learn the image exists.
    assert http.show(shared, C_MEMBER).status_code == 404
    assert _members(http, shared, C_MEMBER).status_code == 404
    # A reader of the member project sees the image but cannot accept for its project.
    assert http.show(shared, B_READER).status_code == 200
    reader_accept = http.request("PUT", f"{path}/{B_MEMBER.project_id}", persona=B_READER, json={"status": "accepted"})
    assert reader_accept.status_code == 403
    assert (
        http.request("PUT", f"{path}/{B_MEMBER.project_id}", persona=ADMIN, json={"status": "rejected"}).json()[
            "status"
        ]
        == "rejected"
    )
