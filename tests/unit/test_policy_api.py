"""Operator policy and property-protection files change API outcomes without code changes."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from functions.api.app import create_app
from shared.config import Settings
from shared.data.memory import MemoryImageRepository

MEMBER = {"X-Project-Id": "project-a", "X-User-Id": "u", "X-Roles": "member,reader", "Accept": "application/json"}
ADMIN = {"X-Project-Id": "project-adm", "X-User-Id": "a", "X-Roles": "admin", "Accept": "application/json"}
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


def _client(**settings: object) -> TestClient:
    app = create_app(Settings(auth_mode="trusted-headers", **settings), {"image_repository": MemoryImageRepository()})
    return TestClient(app)


def test_policy_file__allowing_members_to_publicize__changes_the_answer(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text('"publicize_image": "role:member"\n')

    with _client() as default, _client(policy_file=str(policy)) as overridden:
        refused = default.post("/v2/images", json={"visibility": "public"}, headers=MEMBER)
        allowed = overridden.post("/v2/images", json={"visibility": "public"}, headers=MEMBER)

    assert refused.status_code == 403
    assert allowed.status_code == 201
    assert allowed.json()["visibility"] == "public"


def test_property_protections__hide_and_guard_protected_properties(tmp_path: Path) -> None:
    rules = tmp_path / "property-protections.conf"
    rules.write_text(
        "[^secret_.*]\ncreate = admin\nread = admin\nupdate = admin\ndelete = admin\n\n"
        "[.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n"
    )
    with _client(property_protection_file=str(rules)) as client:
        denied = client.post("/v2/images", json={"secret_key": "x"}, headers=MEMBER)
        image = client.post("/v2/images", json={"plain": "1"}, headers=MEMBER).json()
        added = client.patch(
            f"/v2/images/{image['id']}",
            json=[{"op": "add", "path": "/secret_key", "value": "s"}],
            headers={**ADMIN, **PATCH},
        )
        seen_by_member = client.get(f"/v2/images/{image['id']}", headers=MEMBER).json()
        member_replace = client.patch(
            f"/v2/images/{image['id']}",
            json=[{"op": "replace", "path": "/secret_key", "value": "y"}],
            headers={**MEMBER, **PATCH},
        )
        member_edit_plain = client.patch(
            f"/v2/images/{image['id']}",
            json=[{"op": "add", "path": "/plain", "value": "2"}],
            headers={**MEMBER, **PATCH},
        )
        seen_by_admin = client.get(f"/v2/images/{image['id']}", headers=ADMIN).json()

    assert denied.status_code == 403
    assert added.status_code == 200
    assert "secret_key" not in seen_by_member
    assert member_replace.status_code == 409  # a property you cannot read does not exist for you
    assert member_edit_plain.status_code == 200
    assert seen_by_admin["secret_key"] == "s"  # the member's save kept the hidden property
    assert seen_by_admin["plain"] == "2"
