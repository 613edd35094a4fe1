"""Glance's JSON shapes of tasks: the task view, the list stub, and the raw rows of /v2/images/{id}/tasks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.domain.task import Task
from shared.notifications.payloads import isotime


def _self(task: Task) -> str:
    return f"/v2/tasks/{task.id}"


def task_view(task: Task) -> dict[str, Any]:
    """``GET /v2/tasks/{id}`` (Glance's ResponseSerializer._format_task)."""
    view: dict[str, Any] = {
        "id": task.id,
        "input": task.input,
        "type": task.type,
        "status": task.status.value,
        "owner": task.owner,
        "message": task.message,
        "result": task.result,
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at),
        "self": _self(task),
        "schema": "/v2/schemas/task",
    }
    for name in ("image_id", "request_id", "user_id"):
        if getattr(task, name):
            view[name] = getattr(task, name)
    if task.expires_at:
        view["expires_at"] = isotime(task.expires_at)
    return view


def task_stub(task: Task) -> dict[str, Any]:
    """One entry of ``GET /v2/tasks``: no input, result or message."""
    view: dict[str, Any] = {
        "id": task.id,
        "type": task.type,
        "status": task.status.value,
        "owner": task.owner,
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at),
        "self": _self(task),
        "schema": "/v2/schemas/task",
    }
    if task.expires_at:
        view["expires_at"] = isotime(task.expires_at)
    return view


def _raw_time(value: datetime | None) -> str | None:
    """Glance serialises the database's naive UTC datetimes with isoformat()."""
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None).isoformat()


def task_raw(task: Task) -> dict[str, Any]:
    """One row of ``GET /v2/images/{id}/tasks``: Glance returns the database rows as they are."""
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status.value,
        "owner": task.owner,
        "expires_at": _raw_time(task.expires_at),
        "created_at": _raw_time(task.created_at),
        "updated_at": _raw_time(task.updated_at),
        "deleted_at": None,
        "deleted": False,
        "image_id": task.image_id,
        "request_id": task.request_id,
        "user_id": task.user_id,
        "input": task.input,
        "result": task.result,
        "message": task.message,
    }
