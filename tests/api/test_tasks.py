"""Task records of imports, /v2/images/{id}/tasks and the /v2/tasks API, over HTTP against the local stack."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import WebServer
from tests.api.events import Event, NotificationQueue, types
from tests.api.support import A_MEMBER, ADMIN, B_MEMBER, GlanceHttp

pytestmark = pytest.mark.api

RAW_FIELDS = {
    "id", "type", "status", "owner", "expires_at", "created_at", "updated_at", "deleted_at", "deleted", "image_id",
    "request_id", "user_id", "input", "result", "message",
}  # fmt: skip


def about_task(task_id: str) -> Callable[[Event], bool]:
    """Events whose payload is the task."""
    return lambda e: isinstance(e["detail"]["payload"], dict) and e["detail"]["payload"].get("id") == task_id


def _create(http: GlanceHttp, tag: str) -> str:
    body = {"name": f"task-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag]}
    return str(http.create(A_MEMBER, **body)["id"])


def _import(http: GlanceHttp, image_id: str, method: dict[str, Any]) -> Any:
    response = http.request("POST", f"/v2/images/{image_id}/import", persona=A_MEMBER, json={"method": method})
    assert response.status_code == 202, response.text
    return response


def _image_tasks(http: GlanceHttp, image_id: str, persona: Any = A_MEMBER) -> Any:
    return http.request("GET", f"/v2/images/{image_id}/tasks", persona=persona)


def _wait_task_done(http: GlanceHttp, image_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        tasks = _image_tasks(http, image_id).json()["tasks"]
        if tasks and tasks[-1]["status"] in ("success", "failure"):
            return dict(tasks[-1])
        assert time.monotonic() < deadline, f"task not finished: {tasks}"
        time.sleep(0.2)


def test_glance_direct_import__leaves_a_successful_api_image_import_task_in_glance_raw_shape(
    http: GlanceHttp, tag: str, notifications: NotificationQueue
) -> None:
    image_id = _create(http, tag)
    staged = http.request(
        "PUT",
        f"/v2/images/{image_id}/stage",
        persona=A_MEMBER,
        headers={"Content-Type": "application/octet-stream"},
        data=os.urandom(1024),
    )
    assert staged.status_code == 204
    call = _import(http, image_id, {"name": "glance-direct"})

    task = _wait_task_done(http, image_id)

    assert set(task) == RAW_FIELDS
    assert task["type"] == "api_image_import"
    assert task["status"] == "success"
    assert task["request_id"] == call.headers["x-openstack-request-id"]
    assert task["user_id"] == A_MEMBER.user_id
    assert task["owner"] == A_MEMBER.project_id
    assert task["image_id"] == image_id
    assert task["input"]["import_req"] == {"method": {"name": "glance-direct"}}
    assert task["result"] == {"image_id": image_id}
    assert task["deleted"] is False and task["deleted_at"] is None
    assert task["expires_at"] is not None  # finished: task_time_to_live from now
    task_events = notifications.wait_for(about_task(task["id"]), 4)
    assert types(task_events) == ["task.create", "task.run", "task.processing", "task.success"]
    assert "input" not in task_events[0]["detail"]["payload"]


def test_web_download_import__task_succeeds(http: GlanceHttp, tag: str, web_server: WebServer) -> None:
    (web_server.root / f"{tag}.raw").write_bytes(os.urandom(4096))
    image_id = _create(http, tag)
    _import(http, image_id, {"name": "web-download", "uri": f"{web_server.url}/{tag}.raw"})

    task = _wait_task_done(http, image_id)

    assert (task["status"], task["result"]) == ("success", {"image_id": image_id})
    assert http.show(image_id, A_MEMBER).json()["status"] == "active"


def test_failing_web_download__task_fails_with_the_reason(http: GlanceHttp, tag: str, web_server: WebServer) -> None:
    image_id = _create(http, tag)
    _import(http, image_id, {"name": "web-download", "uri": f"{web_server.url}/{tag}-missing.raw"})

    task = _wait_task_done(http, image_id)

    assert task["status"] == "failure"
    assert "404" in task["message"] or "web-download failed" in task["message"]
    assert task["result"] is None
    assert http.show(image_id, A_MEMBER).json()["status"] == "queued"


def test_image_tasks__of_an_image_the_caller_cannot_see_is_404(http: GlanceHttp, tag: str) -> None:
    image_id = _create(http, tag)
    assert _image_tasks(http, image_id).json() == {"tasks": []}
    assert _image_tasks(http, image_id, B_MEMBER).status_code == 404


def test_tasks_api__is_admin_only_by_default(http: GlanceHttp) -> None:
    assert http.request("GET", "/v2/tasks", persona=A_MEMBER).status_code == 403
    assert http.request("POST", "/v2/tasks", persona=A_MEMBER, json={"type": "import", "input": {}}).status_code == 403


def test_legacy_import_task__creates_an_image_and_fills_it_from_the_url(
    http: GlanceHttp, tag: str, web_server: WebServer
) -> None:
    payload = os.urandom(2048)
    (web_server.root / f"{tag}-legacy.raw").write_bytes(payload)
    body = {
        "type": "import",
        "input": {
            "import_from": f"{web_server.url}/{tag}-legacy.raw",
            "import_from_format": "raw",
            "image_properties": {"name": f"legacy-{tag}", "tags": [tag]},
        },
    }

    created = http.request("POST", "/v2/tasks", persona=ADMIN, json=body)

    assert created.status_code == 201, created.text
    task = created.json()
    assert created.headers["Location"] == f"/v2/tasks/{task['id']}"
    assert task["type"] == "import" and task["status"] in ("pending", "processing", "success")
    assert task["self"] == f"/v2/tasks/{task['id']}" and task["schema"] == "/v2/schemas/task"
    deadline = time.monotonic() + 30
    while task["status"] not in ("success", "failure"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
        task = http.request("GET", f"/v2/tasks/{task['id']}", persona=ADMIN).json()
    assert task["status"] == "success", task
    image = http.show(task["result"]["image_id"]).json()
    assert (image["status"], image["size"], image["name"]) == ("active", len(payload), f"legacy-{tag}")


def test_legacy_import_task__url_goes_through_the_web_download_url_policy(http: GlanceHttp) -> None:
    body = {"type": "import", "input": {"import_from": "http://169.254.169.254/latest/meta-data/"}}
    refused = http.request("POST", "/v2/tasks", persona=ADMIN, json=body)
    assert refused.status_code == 400, refused.text


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"input": {}}, 400),
        ({"type": "import"}, 400),
        ({"type": "nonsense", "input": {}}, 400),
        ({"type": "import", "input": {"import_from": 5}}, 400),
        ({"type": "import", "input": "x"}, 400),
    ],
)
def test_create_task__bad_bodies_are_400(http: GlanceHttp, body: dict[str, Any], status: int) -> None:
    assert http.request("POST", "/v2/tasks", persona=ADMIN, json=body).status_code == status


def test_list_tasks__pages_with_markers_and_filters(http: GlanceHttp, tag: str, web_server: WebServer) -> None:
    ids = []
    for n in range(3):
        image_id = _create(http, f"{tag}{n}")
        (web_server.root / f"{tag}-{n}.raw").write_bytes(b"x" * 100)
        call = _import(http, image_id, {"name": "web-download", "uri": f"{web_server.url}/{tag}-{n}.raw"})
        assert call.status_code == 202
        ids.append(_wait_task_done(http, image_id)["id"])

    first = http.request("GET", "/v2/tasks", persona=ADMIN, params={"limit": 2, "sort_dir": "desc"}).json()
    assert [t["id"] for t in first["tasks"]] == [ids[2], ids[1]]
    assert set(first["tasks"][0]) == {
        "id", "type", "status", "owner", "created_at", "updated_at", "self", "schema", "expires_at",
    }  # fmt: skip
    assert first["first"] == "/v2/tasks?limit=2&sort_dir=desc" and first["schema"] == "/v2/schemas/tasks"
    second = http.request("GET", first["next"], persona=ADMIN).json()
    assert second["tasks"][0]["id"] == ids[0]
    shown = http.request("GET", f"/v2/tasks/{ids[0]}", persona=ADMIN).json()
    assert shown["input"]["image_id"] and shown["image_id"]
    failed = http.request("GET", "/v2/tasks", persona=ADMIN, params={"status": "failure", "limit": 1000}).json()
    assert not {t["id"] for t in failed["tasks"]} & set(ids)
    assert http.request("GET", "/v2/tasks", persona=ADMIN, params={"status": "bogus"}).status_code == 400
    assert http.request("GET", "/v2/tasks", persona=ADMIN, params={"sort_dir": "up"}).status_code == 400
    assert http.request("GET", "/v2/tasks", persona=ADMIN, params={"marker": "nope"}).status_code == 400
    assert http.request("GET", "/v2/tasks/00000000-0000-0000-0000-000000000000", persona=ADMIN).status_code == 404


def test_delete_task__is_405(http: GlanceHttp, tag: str) -> None:
    response = http.request("DELETE", "/v2/tasks/00000000-0000-0000-0000-000000000000", persona=ADMIN)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
