"""HTTP routes of tasks: /v2/tasks (Glance's glance/api/v2/tasks.py) and /v2/images/{id}/tasks (API 2.12)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from functions.api.deps import ContextDep, ImageIdDep, JsonBody, TaskIdDep, TasksDep
from functions.api.task_wire import task_raw, task_stub, task_view
from functions.api.wire import page_view

router = APIRouter()


@router.get("/v2/images/{image_id}/tasks", response_model=None)
def image_tasks(image_id: ImageIdDep, ctx: ContextDep, tasks: TasksDep) -> dict[str, Any]:
    """The import tasks of an image, as Glance's raw rows."""
    return {"tasks": [task_raw(t) for t in tasks.for_image(ctx, image_id)]}


@router.post("/v2/tasks", status_code=201, response_model=None)
def create_task(ctx: ContextDep, tasks: TasksDep, body: JsonBody) -> JSONResponse:
    """A legacy ``import`` task (201 with Location)."""
    task = tasks.create(ctx, body)
    return JSONResponse(task_view(task), status_code=201, headers={"Location": f"/v2/tasks/{task.id}"})


@router.get("/v2/tasks", response_model=None)
def list_tasks(request: Request, ctx: ContextDep, tasks: TasksDep) -> dict[str, Any]:
    """Task stubs, newest first by default, with Glance's first/next links."""
    params = dict(request.query_params)
    page = tasks.index(ctx, params)
    items = [task_stub(t) for t in page.items]
    return page_view("tasks", items, "/v2/tasks", "/v2/schemas/tasks", params.items(), page.next_marker)


@router.get("/v2/tasks/{task_id}", response_model=None)
def show_task(task_id: TaskIdDep, ctx: ContextDep, tasks: TasksDep) -> dict[str, Any]:
    """One task; tasks are never deleted through the API (DELETE is 405), they expire."""
    return task_view(tasks.show(ctx, task_id))
