"""Members API limits and views with an in-memory repository (the HTTP behaviour is in tests/api)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from functions.api.app import create_app
from shared.config import Settings
from shared.data.memory import MemoryImageRepository

OWNER = {"X-Project-Id": "project-a", "X-User-Id": "u", "X-Roles": "member,reader", "Accept": "application/json"}


def test_members__past_the_member_quota__is_413_and_nothing_is_added() -> None:
    app = create_app(
        Settings(auth_mode="trusted-headers", image_member_quota=3), {"image_repository": MemoryImageRepository()}
    )
    with TestClient(app, headers=OWNER) as client:
        image_id = client.post("/v2/images", json={"name": "s"}).json()["id"]
        codes = [client.post(f"/v2/images/{image_id}/members", json={"member": f"p{n}"}).status_code for n in range(4)]
        listed = client.get(f"/v2/images/{image_id}/members").json()

    assert codes == [200, 200, 200, 413]
    assert [m["member_id"] for m in listed["members"]] == ["p0", "p1", "p2"]
    assert listed["members"][0]["schema"] == "/v2/schemas/member"
