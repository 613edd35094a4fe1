"""Tasks: /v2/tasks (Glance's deprecated tasks API, admin-only by default) and /v2/images/{id}/tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.api.controllers import visible_image
from functions.api.controllers.image_data import ImageDataController
from functions.api.controllers.images import ImagesController
from functions.api.wire import is_uuid
from shared.config import Settings
from shared.data.base import ImageRepository
from shared.data.tasks import TASK_SORT_KEYS, TaskPage, TaskQuery, TaskRepository, task_sort_value
from shared.domain.context import RequestContext
from shared.domain.errors import ForbiddenError, InvalidInputError, NotFoundError
from shared.domain.task import TASK_TYPES, Task, TaskStatus
from shared.policy import ImagePolicy
from shared.services.tasks import TaskService

LEGACY_IMPORT = "import"


class TasksController:
    """Use cases of the tasks routes."""

    def __init__(
        self,
        repo: TaskRepository,
        service: TaskService,
        images: ImageRepository,
        settings: Settings,
        images_controller: ImagesController,
        data_controller: ImageDataController,
    ) -> None:
        self.repo = repo
        self.service = service
        self.images = images
        self.settings = settings
        self.images_controller = images_controller
        self.data_controller = data_controller

    def _access(self, ctx: RequestContext) -> ImagePolicy:
        policy = ImagePolicy.for_settings(ctx, self.settings)
        policy.enforce("tasks_api_access", "You are not authorized to use the tasks API.")
        return policy

    def for_image(self, ctx: RequestContext, image_id: str) -> list[Task]:
        """``GET /v2/images/{id}/tasks``: the image's tasks (404 for an image the caller cannot see)."""
        visible_image(self.images, self.settings, ctx, image_id)
        return self.repo.for_image(image_id)

    def show(self, ctx: RequestContext, task_id: str) -> Task:
        """``GET /v2/tasks/{id}``: an admin sees every task, others their project's."""
        policy = self._access(ctx)
        task = self.repo.get(task_id)
        if not policy.is_admin and task.owner != ctx.owner:
            raise NotFoundError(kind="task", id=task_id)
        return task

    def index(self, ctx: RequestContext, params: Mapping[str, str]) -> TaskPage:
        """``GET /v2/tasks``: filters ``status`` and ``type``, ``sort_key``/``sort_dir``, ``marker``/``limit``."""
        policy = self._access(ctx)
        sort_dir = params.get("sort_dir", "desc")
        if sort_dir not in ("asc", "desc"):
            raise InvalidInputError(f"Invalid sort direction: {sort_dir}")
        sort_key = params.get("sort_key", "created_at")
        if sort_key not in TASK_SORT_KEYS:
            raise InvalidInputError(f"Invalid sort key: {sort_key}. It must be one of: {', '.join(TASK_SORT_KEYS)}.")
        status = params.get("status") or None
        if status is not None and status not in {s.value for s in TaskStatus}:
            raise InvalidInputError(f"Invalid status value: {status}")
        task_type = params.get("type") or None
        if task_type is not None and task_type != LEGACY_IMPORT:
            raise InvalidInputError(f"Invalid type value: {task_type}")
        limit = _limit(params.get("limit"), self.settings)
        owner = None if policy.is_admin else ctx.owner
        after = None
        marker = params.get("marker")
        if marker is not None:
            if not is_uuid(marker):
                raise InvalidInputError("Invalid marker format")
            try:
                marked = self.repo.get(marker)
            except NotFoundError:
                raise InvalidInputError(f"Task with id {marker} not found") from None
            if owner is not None and marked.owner != owner:
                raise InvalidInputError(f"Task with id {marker} not found")
            after = task_sort_value(marked, sort_key)
        query = TaskQuery(
            owner=owner,
            status=status,
            type=task_type,
            sort_key=sort_key,
            descending=sort_dir == "desc",
            limit=limit,
            after=after,
            budget=self.settings.list_scan_budget,
        )
        return self.repo.list_page(query)

    def create(self, ctx: RequestContext, body: Any) -> Task:
        """``POST /v2/tasks`` with the legacy ``import`` type: a new image, filled by web-download from
        ``input.import_from`` (the same URL policy as web-download); the task's result names the image."""
        self._access(ctx)
        if not isinstance(body, dict):
            raise InvalidInputError("Body expected in request.")
        for key in ("type", "input"):
            if key not in body:
                raise InvalidInputError(f"Task '{key}' is required")
        task_type, task_input = body["type"], body["input"]
        if set(body) - {"type", "input"}:
            raise InvalidInputError(f"Additional properties are not allowed: {sorted(set(body) - {'type', 'input'})}")
        if task_type not in TASK_TYPES:
            raise InvalidInputError(f"Invalid type value: {task_type}")
        if task_type != LEGACY_IMPORT:
            raise ForbiddenError(detail=f"Tasks of type {task_type} are created by the service, not through the API.")
        if not isinstance(task_input, dict):
            raise InvalidInputError("Task 'input' must be an object")
        uri = task_input.get("import_from")
        if not isinstance(uri, str) or not uri:
            raise InvalidInputError("Task input 'import_from' (the URL of the image data) is required")
        if "web-download" not in self.settings.enabled_import_methods:
            raise ForbiddenError(detail="Imports from a URL (web-download) are disabled on this service.")
        from shared.net.ssrf import UrlPolicy, validate_url

        validate_url(uri, UrlPolicy.from_settings(self.settings))
        properties = task_input.get("image_properties") or {}
        if not isinstance(properties, dict):
            raise InvalidInputError("Task input 'image_properties' must be an object")
        image_fields = {"container_format": "bare", **properties}
        fmt = task_input.get("import_from_format")
        if isinstance(fmt, str) and "disk_format" not in image_fields:
            image_fields["disk_format"] = fmt
        image = self.images_controller.create(ctx, image_fields)
        task = self.service.create(ctx, LEGACY_IMPORT, task_input, None)
        method = {"method": {"name": "web-download", "uri": uri}}
        try:
            self.data_controller.import_image(ctx, image.id, method, ctx.request_id, task_id=task.id)
        except Exception as exc:
            self.service.fail(task.id, f"The import could not start: {exc}", ctx.request_id)
            raise
        return self.repo.get(task.id)


def _limit(raw: str | None, settings: Settings) -> int:
    if raw is None:
        return settings.limit_param_default
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidInputError("limit param must be an integer") from None
    if limit < 0:
        raise InvalidInputError("limit param must be positive")
    return min(limit, settings.api_limit_max)
