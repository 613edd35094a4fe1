"""Task records of imports: created by the API, moved by the import worker (pending -> processing -> done).

Every change is a conditional write; a redelivered job, or a job whose task already finished, changes nothing.
Each change sends Glance's task event (task.create, task.run, task.processing, task.success, task.failure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared.data.base import ImageRepository
from shared.data.tasks import TaskRepository
from shared.domain.context import RequestContext
from shared.domain.errors import ConcurrentUpdateError, NotFoundError
from shared.domain.image import ImageStatus, LocationStatus
from shared.domain.task import Task, TaskStatus
from shared.domain.upload import UPLOAD_ERROR_PROPERTY
from shared.notifications.events import Events

API_IMAGE_IMPORT = "api_image_import"
_SAVE_ATTEMPTS = 8


@dataclass
class TaskService:
    """Creates and moves task records."""

    repo: TaskRepository
    events: Events
    ttl: timedelta

    def create(self, ctx: RequestContext, task_type: str, task_input: dict[str, Any], image_id: str | None) -> Task:
        """A pending task of ``ctx``'s project, recorded with the request id and user (task.create, task.run)."""
        task = Task.new(task_type, ctx.owner, task_input, image_id, ctx.request_id, ctx.user_id)
        task = self.repo.add(task)
        self.events.task("task.create", task, ctx.request_id)
        self.events.task("task.run", task, ctx.request_id)
        return task

    def processing(self, task_id: str | None, request_id: str | None) -> None:
        """pending -> processing (task.processing)."""
        self._change(task_id, request_id, "task.processing", lambda t: t.begin_processing(), (TaskStatus.PENDING,))

    def succeed(self, task_id: str | None, result: dict[str, Any], request_id: str | None) -> None:
        """-> success with ``result`` (task.success); a pending task passes through processing."""

        def change(task: Task) -> None:
            if task.status is TaskStatus.PENDING:
                task.begin_processing()
            task.succeed(result, self.ttl)

        self._change(task_id, request_id, "task.success", change, (TaskStatus.PENDING, TaskStatus.PROCESSING))

    def fail(self, task_id: str | None, message: str, request_id: str | None) -> None:
        """-> failure with ``message`` (task.failure)."""
        self._change(
            task_id,
            request_id,
            "task.failure",
            lambda t: t.fail(message, self.ttl),
            (TaskStatus.PENDING, TaskStatus.PROCESSING),
        )

    def _change(
        self,
        task_id: str | None,
        request_id: str | None,
        event: str,
        change: Callable[[Task], None],
        from_states: tuple[TaskStatus, ...],
    ) -> None:
        if not task_id:
            return
        for _ in range(_SAVE_ATTEMPTS):
            try:
                task = self.repo.get(task_id)
            except NotFoundError:
                return
            if task.status not in from_states:
                return  # a redelivery, or the task already finished
            change(task)
            try:
                saved = self.repo.save(task)
            except ConcurrentUpdateError:
                continue
            self.events.task(event, saved, request_id)
            return
        raise ConcurrentUpdateError(image_id=f"(task {task_id})")


def record_task_outcome(tasks: TaskService, images: ImageRepository, job: dict[str, Any], outcome: str) -> None:
    """Finish the job's task from the import worker's outcome (``shared.services.finalize.Outcome`` values)."""
    task_id, image_id, request_id = job.get("task_id"), str(job.get("image_id")), job.get("request_id")
    if outcome in ("deferred", "ignored"):
        return  # not decided yet: a later delivery finishes it
    try:
        image = images.get(image_id)
    except NotFoundError:
        image = None
    if image is None or image.is_deleted():
        tasks.fail(task_id, "The image was deleted before the import finished.", request_id)
    elif image.status is ImageStatus.ACTIVE and outcome in ("active", "duplicate"):
        if any(loc.batch == task_id for loc in image.locations):
            # an import to more stores: the task settles with its copies (store_sync), as Glance's does
            settle_copy_task(tasks, images, image_id, task_id, request_id)
        else:
            tasks.succeed(task_id, {"image_id": image_id}, request_id)
    elif outcome in ("refused", "over_quota"):
        reason = image.extra_properties.get(UPLOAD_ERROR_PROPERTY, "the image data was refused")
        tasks.fail(task_id, f"Import failed: {reason}", request_id)
    elif image.status is not ImageStatus.IMPORTING:
        tasks.fail(task_id, f"The import was superseded: the image is {image.status.value}.", request_id)


def settle_copy_task(
    tasks: TaskService | None, images: ImageRepository, image_id: str, batch: object, request_id: object
) -> None:
    """After a store_sync copy job: once every copy of a copy-image request (``batch`` = its task id) has
    settled, the task succeeds, or fails naming the stores whose copy failed. Other batches have no task."""
    if tasks is None or not isinstance(batch, str):
        return
    rid = request_id if isinstance(request_id, str) else None
    try:
        image = images.get(image_id)
    except NotFoundError:
        image = None
    if image is None or image.is_deleted():
        tasks.fail(batch, "The image was deleted before its copies finished.", rid)
        return
    copies = [loc for loc in image.locations if loc.batch == batch]
    if any(loc.in_progress for loc in copies):
        return
    failed = sorted(loc.store for loc in copies if loc.status is LocationStatus.FAILED)
    if failed:
        tasks.fail(batch, f"Copying the image failed for stores: {', '.join(failed)}", rid)
    else:
        tasks.succeed(batch, {"image_id": image_id, "stores": sorted(loc.store for loc in copies)}, rid)
