"""The sweeper: every in-flight image has an owner and a deadline; past it, the image goes back to queued.

An image is in flight while it is ``saving``, ``uploading`` or ``importing``. Its deadline is its open session's:
the lease of the process moving its bytes (the API streaming PUT /file or PUT /stage, a worker, a job; renewed as
they make progress, ``shared/services/leases.py``), or, with no lease, the session's expiry (a presigned upload
or staged bytes waiting for their import call: the client's). A scheduled run (``functions/sweeper``; the local
stack's scheduler) reads one page of overdue images from the sweep index (``ImageRepository.overdue``: its cost does
not grow with the table), and for each, on a fresh read, returns it to queued with the reason in
``os_glance_upload_error`` (and the stores of an import in ``os_glance_failed_import``), deletes what its session
left in the bucket and fails its task. A holder that renewed its lease meanwhile wins: the conditional write sees
the new deadline and leaves the image alone.

An active image's copy to another store being written by a store_sync worker or a job has a deadline too (its
lease, renewed as it writes): past it the copy is recorded ``failed`` with the reason (rolling back its request's
other copies if they all had to succeed) and the copy-image task settles. A copy waiting in the store-sync queue has
no lease: the queue owns it, and its last delivery records it failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from shared.domain.errors import NotFoundError
from shared.domain.image import Image, utcnow
from shared.domain.location import ERROR_KEY
from shared.domain.status import ImageStatus
from shared.domain.upload import CLIENT_HOLDER, UploadMethod

if TYPE_CHECKING:
    from shared.domain.location import Location
    from shared.domain.upload import UploadSession
    from shared.services.replication import Replicator
    from shared.services.tasks import TaskService
    from shared.services.unit_of_work import ImageUnitOfWork
    from shared.services.upload_sessions import UploadSessions


@dataclass(frozen=True)
class SweepReport:
    """What one run did: the overdue images it read, and those it returned to queued (with their reasons)."""

    examined: int
    abandoned: dict[str, str] = field(default_factory=dict)


def abandon_reason(image: Image, now: datetime) -> str:
    """Why an overdue image is returned to queued (shown in ``os_glance_upload_error``)."""
    session = image.upload
    if session is None:
        return f"The {image.status.value} image had no upload session; returned to queued."
    since = session.deadline.isoformat(timespec="seconds")
    holder = session.holder
    if holder == CLIENT_HOLDER:
        if session.method is UploadMethod.STAGE:
            return f"The staged data was not imported before the session expired at {since}; it was deleted."
        return f"The upload session expired at {since} before its data was complete; it was deleted."
    what = "import" if image.status is ImageStatus.IMPORTING else "upload"
    return f"The {what} was abandoned: its {holder} made no progress before {since}; the data was deleted."


@dataclass
class Sweeper:
    """Returns abandoned in-flight images to queued and fails their tasks."""

    uow: ImageUnitOfWork
    sessions: UploadSessions
    tasks: TaskService
    # Deletes the copies an abandoned copy's roll-back removed.
    replicator: Replicator
    # The store an import writes first (named in os_glance_failed_import with the import's other targets).
    primary_store: str
    page_size: int

    def sweep(self, now: datetime | None = None) -> SweepReport:
        """One run: read one page of overdue images and abandon each that is still overdue on a fresh read."""
        now = now or utcnow()
        due = self.uow.repo.overdue(now, self.page_size)
        report = SweepReport(examined=len(due))
        for image_id in due:
            reason = self.abandon(image_id, now)
            if reason is not None:
                report.abandoned[image_id] = reason
        return report

    def abandon(self, image_id: str, now: datetime) -> str | None:
        """Abandon one image (or its copies to other stores) if overdue at ``now``; the reason, or None if it was not
        (any more)."""
        dropped: list[UploadSession] = []
        copies: list[tuple[list[str], list[Location], list[str | None]]] = []

        def change(image: Image) -> str | None:
            dropped.clear()
            copies.clear()
            if image.status in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
                batches = {loc.store: loc.batch for loc in image.locations}
                failed, undone = image.abandon_copies(now)
                if not failed:
                    return None
                copies.append((failed, undone, [batches.get(store) for store in failed]))
                first = image.location(failed[0])
                return first.metadata.get(ERROR_KEY) if first is not None else "the copy was abandoned"
            session = image.upload
            reason = abandon_reason(image, now)
            stores = [self.primary_store] if image.status is ImageStatus.IMPORTING else []
            if not image.abandon(reason, now, stores):
                return None
            if session is not None:
                dropped.append(session)
            return reason

        try:
            reason = self.uow.update(image_id, change)
        except NotFoundError:
            return None
        for _, undone, batches in copies:
            self.replicator.purge(image_id, undone)
            for batch in dict.fromkeys(batches):
                self.tasks.settle_copy_task(self.uow.repo, image_id, batch, None)
        for session in dropped:
            self.sessions.discard(session)
            if session.task_id:
                self.tasks.fail(session.task_id, f"Import failed: {reason}", None)
        return reason
