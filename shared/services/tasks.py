"""Task records: created by the API, moved by the workers (pending -> processing -> success | failure).

Every change goes through the unit of work (a conditional write, re-read and re-applied after a lost race); a
redelivered job, or a job whose task already finished, changes nothing. Each change publishes Glance's task
event (task.create, task.run, task.processing, task.success, task.failure) after it is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.domain.errors import NotFoundError
from shared.domain.location import LocationStatus
from shared.domain.status import ImageStatus
from shared.domain.task import Task, TaskStatus
from shared.domain.upload import UPLOAD_ERROR_PROPERTY

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import timedelta

    from shared.data.base import ImageRepository
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.domain.listing import Page, TaskQuery
    from shared.jobs import ImportJob
    from shared.services.unit_of_work import TaskUnitOfWork

API_IMAGE_IMPORT = "api_image_import"
# The legacy POST /v2/tasks type.
LEGACY_IMPORT = "import"


@dataclass
class TaskService:
    """Creates, reads and moves task records."""

    uow: TaskUnitOfWork
    ttl: timedelta

    def create(self, ctx: RequestContext, task_type: str, task_input: dict[str, Any], image_id: str | None) -> Task:
        """A pending task of ``ctx``'s project, recorded with the request id and user (task.create, task.run)."""
        task = Task.new(task_type, ctx.owner, task_input, image_id, ctx.request_id, ctx.user_id)
        return self.uow.add(task, ctx.request_id)

    def get(self, task_id: str) -> Task:
        """One unexpired task (NotFoundError otherwise)."""
        return self.uow.repo.get(task_id)

    def for_image(self, image_id: str) -> list[Task]:
        """The unexpired tasks of one image, oldest first."""
        return self.uow.repo.for_image(image_id)

    def list(self, query: TaskQuery) -> Page[Task]:
        """One page of tasks."""
        return self.uow.repo.list_page(query)

    def processing(self, task_id: str | None, request_id: str | None) -> None:
        """pending -> processing (task.processing)."""
        self._change(task_id, request_id, lambda t: t.begin_processing(), (TaskStatus.PENDING,))

    def succeed(self, task_id: str | None, result: dict[str, Any], request_id: str | None) -> None:
        """-> success with ``result`` (task.success); a pending task passes through processing."""
        self._change(
            task_id, request_id, lambda t: t.finish(result, self.ttl), (TaskStatus.PENDING, TaskStatus.PROCESSING)
        )

    def fail(self, task_id: str | None, message: str, request_id: str | None) -> None:
        """-> failure with ``message`` (task.failure)."""
        self._change(
            task_id, request_id, lambda t: t.fail(message, self.ttl), (TaskStatus.PENDING, TaskStatus.PROCESSING)
        )

    def _change(
        self,
        task_id: str | None,
        request_id: str | None,
        change: Callable[[Task], None],
        from_states: tuple[TaskStatus, ...],
    ) -> None:
        if not task_id:
            return

        def apply(task: Task) -> None:
            if task.status in from_states:  # else a redelivery, or the task already finished
                change(task)

        try:
            self.uow.update(task_id, apply, request_id)
        except NotFoundError:
            return

    # -- how imports and copies finish their tasks --------------------------------------------------

    def record_import_outcome(self, images: ImageRepository, job: ImportJob, outcome: str) -> None:
        """Finish the job's task from the import worker's outcome (``shared.services.finalize.Outcome`` values)."""
        task_id, image_id, request_id = job.task_id, job.image_id, job.request_id
        if outcome in ("deferred", "ignored", "handed_off"):
            return  # not decided yet: a later delivery (or the job that took the work over) finishes it
        image = _image_or_none(images, image_id)
        if image is None or image.is_deleted():
            self.fail(task_id, "The image was deleted before the import finished.", request_id)
        elif image.status is ImageStatus.ACTIVE and outcome in ("active", "duplicate"):
            if any(loc.batch == task_id for loc in image.locations):
                # an import to more stores: the task settles with its copies (store_sync), as Glance's does
                self.settle_copy_task(images, image_id, task_id, request_id)
            else:
                self.succeed(task_id, {"image_id": image_id}, request_id)
        elif outcome in ("refused", "over_quota"):
            reason = image.extra_properties.get(UPLOAD_ERROR_PROPERTY, "the image data was refused")
            self.fail(task_id, f"Import failed: {reason}", request_id)
        elif image.status is not ImageStatus.IMPORTING:
            self.fail(task_id, f"The import was superseded: the image is {image.status.value}.", request_id)

    def settle_copy_task(
        self, images: ImageRepository, image_id: str, batch: str | None, request_id: str | None
    ) -> None:
        """After a store_sync copy job: once every copy of a copy-image request (``batch`` = its task id) has
        settled, the task succeeds, or fails naming the stores whose copy failed. Other batches have no task."""
        if batch is None:
            return
        image = _image_or_none(images, image_id)
        if image is None or image.is_deleted():
            self.fail(batch, "The image was deleted before its copies finished.", request_id)
            return
        copies = [loc for loc in image.locations if loc.batch == batch]
        if any(loc.in_progress for loc in copies):
            return
        failed = sorted(loc.store for loc in copies if loc.status is LocationStatus.FAILED)
        if failed:
            self.fail(batch, f"Copying the image failed for stores: {', '.join(failed)}", request_id)
        else:
            self.succeed(batch, {"image_id": image_id, "stores": sorted(loc.store for loc in copies)}, request_id)


def _image_or_none(images: ImageRepository, image_id: str) -> Image | None:
    try:
        return images.get(image_id)
    except NotFoundError:
        return None
