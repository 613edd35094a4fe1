"""Tasks: /v2/tasks (Glance's deprecated tasks API, admin-only by default) and /v2/images/{id}/tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.api.controllers import page_limit, visible_image
from functions.api.wire import is_uuid
from shared.domain.errors import ForbiddenError, InvalidInputError, NotFoundError
from shared.domain.listing import TASK_SORT_KEYS, Page, TaskQuery
from shared.domain.task import TASK_TYPES, Task, TaskStatus
from shared.services.tasks import LEGACY_IMPORT, TaskService

if TYPE_CHECKING:
    from collections.abc import Mapping

    from functions.api.controllers.image_factory import ImageFactory
    from shared.config import Settings
    from shared.domain.context import RequestContext
    from shared.policy import ImagePolicy, Policies
    from shared.services.images import ImageService
    from shared.services.imports import Imports


class TasksController:
    """Use cases of the tasks routes."""

    def __init__(
        self,
        tasks: TaskService,
        images: ImageService,
        imports: Imports,
        factory: ImageFactory,
        policies: Policies,
        settings: Settings,
    ) -> None:
        self.tasks = tasks
        self.images = images
        self.imports = imports
        self.factory = factory
        self.policies = policies
        self.settings = settings

    def _access(self, ctx: RequestContext) -> ImagePolicy:
        policy = self.policies.for_context(ctx)
        policy.enforce("tasks_api_access", "You are not authorized to use the tasks API.")
        return policy

    def for_image(self, ctx: RequestContext, image_id: str) -> list[Task]:
        """``GET /v2/images/{id}/tasks``: the image's tasks (404 for an image the caller cannot see)."""
        visible_image(self.images, self.policies.for_context(ctx), image_id)
        return self.tasks.for_image(image_id)

    def show(self, ctx: RequestContext, task_id: str) -> Task:
        """``GET /v2/tasks/{id}``: an admin sees every task, others their project's."""
        policy = self._access(ctx)
        task = self.tasks.get(task_id)
        if not policy.is_admin and task.owner != ctx.owner:
            raise NotFoundError(kind="task", id=task_id)
        return task

    def index(self, ctx: RequestContext, params: Mapping[str, str]) -> Page[Task]:
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
        limit = page_limit(params.get("limit"), self.settings)
        owner = None if policy.is_admin else ctx.owner
        marker = self._marker(params.get("marker"), owner)
        budget = self.settings.list_scan_budget
        query = TaskQuery(owner, status, task_type, sort_key, sort_dir == "desc", limit, marker, budget)
        return self.tasks.list(query)

    def _marker(self, marker: str | None, owner: str | None) -> Task | None:
        if marker is None:
            return None
        if not is_uuid(marker):
            raise InvalidInputError("Invalid marker format")
        try:
            marked = self.tasks.get(marker)
        except NotFoundError:
            raise InvalidInputError(f"Task with id {marker} not found") from None
        if owner is not None and marked.owner != owner:
            raise InvalidInputError(f"Task with id {marker} not found")
        return marked

    def create(self, ctx: RequestContext, body: Any) -> Task:
        """``POST /v2/tasks`` with the legacy ``import`` type: a new image, filled by web-download from
        ``input.import_from`` (the same URL policy as web-download); the task's result names the image."""
        policy = self._access(ctx)
        task_input = _legacy_import_input(body)
        uri = task_input["import_from"]
        if "web-download" not in self.settings.enabled_import_methods:
            raise ForbiddenError(detail="Imports from a URL (web-download) are disabled on this service.")
        self.imports.check_url(uri)
        properties = task_input.get("image_properties") or {}
        if not isinstance(properties, dict):
            raise InvalidInputError("Task input 'image_properties' must be an object")
        image_fields = {"container_format": "bare", **properties}
        fmt = task_input.get("import_from_format")
        if isinstance(fmt, str) and "disk_format" not in image_fields:
            image_fields["disk_format"] = fmt
        image = self.factory.new(policy, image_fields)
        policy.modify_image(image, "upload image data")
        return self.imports.legacy_task(ctx, image, task_input, uri)


def _legacy_import_input(body: Any) -> dict[str, Any]:
    """The ``input`` of a ``POST /v2/tasks`` body, checked as Glance does (400; 403 for a type only the service
    creates)."""
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
    return task_input
