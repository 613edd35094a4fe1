"""copy-image (``POST /v2/images/{id}/import`` with method copy-image): copies of an active image to more stores.

The copies are planned on the image as pending locations in one write, a task records the request (its id is
the copy batch, so store_sync finishes the task when the batch settles), and one store_sync job per copy goes
out after the write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.errors import ConflictError, GlanceError, InvalidInputError
from shared.domain.location import LocationStatus
from shared.domain.status import ImageStatus

if TYPE_CHECKING:
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.services.imports import ImportRequest, Imports
    from shared.services.replication import Replicator
    from shared.services.tasks import TaskService
    from shared.services.unit_of_work import ImageUnitOfWork


def check_copyable(image: Image) -> None:
    """409 unless the image can be copied: active, with both formats set (checked before the ``copy_image``
    policy, as Glance does)."""
    if image.status is not ImageStatus.ACTIVE:
        raise ConflictError(detail="Image needs to be in 'active' state for copying")
    for name in ("container_format", "disk_format"):
        if not getattr(image, name):
            raise ConflictError(detail=f"'{name}' needs to be set before import")


@dataclass
class Copies:
    """Starts copy-image requests; every image passed in was loaded for a change and authorised."""

    uow: ImageUnitOfWork
    imports: Imports
    tasks: TaskService
    replicator: Replicator

    def start(self, ctx: RequestContext, image: Image, request: ImportRequest, stores: list[str]) -> Image:
        """Queue copies of ``image`` to ``stores`` (``all_stores``: the ones not holding it yet; nothing to do is
        fine). A store already holding the image is a 400."""
        check_copyable(image)
        holding = {loc.store for loc in image.locations if loc.status is not LocationStatus.FAILED}
        if request.all_stores:
            stores = [s for s in stores if s not in holding]
            if not stores:
                return image
        for store in stores:
            if store in holding:
                raise InvalidInputError(f"Image is already present at store '{store}'")
        task = self.imports.import_task(ctx, image.id, request, stores)
        image.plan_copies(stores, task.id, must_succeed=request.all_stores_must_succeed)
        try:
            saved = self.uow.commit(image, ctx.request_id)
        except GlanceError as exc:
            self.tasks.fail(task.id, f"The copy could not start: {exc.message}", ctx.request_id)
            raise
        self.tasks.processing(task.id, ctx.request_id)
        self.replicator.dispatch(saved, ctx.request_id)
        return saved
