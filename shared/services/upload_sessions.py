"""Opening and discarding upload sessions: what presigned uploads, PUT /file, staging and imports share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from shared.domain.errors import GlanceError, NotFoundError
from shared.domain.image import Image, utcnow
from shared.domain.quota import IMAGE_SIZE_TOTAL
from shared.domain.status import IN_FLIGHT
from shared.domain.upload import UploadMethod, UploadPlan, UploadSession
from shared.resources import image_object_key
from shared.services.leases import API_HOLDER, Heartbeat

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.quota.ledger import QuotaLedger
    from shared.services.replication import Replicator
    from shared.services.tasks import TaskService
    from shared.services.unit_of_work import ImageUnitOfWork
    from shared.upload_bucket import UploadBucket


@dataclass
class UploadSessions:
    """Starts the sessions that put an image's bytes in the upload bucket."""

    uow: ImageUnitOfWork
    bucket: UploadBucket
    settings: Settings
    quota: QuotaLedger
    replicator: Replicator
    # Fails the task of an aborted import.
    tasks: TaskService | None = None

    def new(self, image_id: str, plan: UploadPlan, size: int | None, checksum: str | None = None) -> UploadSession:
        """A fresh session of ``image_id`` (not yet on the image), keyed in the upload bucket."""
        return UploadSession.new(
            plan,
            object_key=lambda session_id: image_object_key(image_id, session_id),
            size=size,
            now=utcnow(),
            ttl=timedelta(seconds=self.settings.upload_session_ttl_seconds),
            checksum=checksum,
        )

    def targets(self, store_header: str | None) -> tuple[str, ...]:
        """The stores besides the primary an upload goes to: ``X-Image-Meta-Store`` (400 for an unknown store)."""
        if store_header is None or not store_header.strip():
            return ()
        stores = self.replicator.check_stores([store_header.strip()])
        return tuple(s for s in stores if s != self.replicator.stores.primary_id)

    def precheck_size(self, image: Image, size: int | None) -> None:
        """Refuse early an upload whose declared size would pass image_size_total (docs/quotas.md)."""
        if size:
            self.quota.precheck(image.owner, IMAGE_SIZE_TOTAL, size)

    def open(
        self,
        image: Image,
        plan: UploadPlan,
        size: int | None,
        checksum: str | None = None,
        targets: tuple[str, ...] = (),
        request_id: str | None = None,
    ) -> UploadSession:
        """queued -> uploading with a new session (a multipart one opened in the bucket); an expired session it
        replaces is discarded. The image is written (409 if it was changed meanwhile)."""
        session = self.new(image.id, plan, size, checksum)
        session.targets = targets
        now = utcnow()
        replaced = image.open_upload(session, now, require_formats=plan.method is not UploadMethod.STAGE)
        if plan.method in (UploadMethod.PROXY, UploadMethod.STAGE):
            # The API process receiving the body owns the image until it is in; it renews the lease as bytes arrive.
            image.hold(API_HOLDER, now + timedelta(seconds=self.settings.stream_lease_seconds))
        if plan.method is UploadMethod.MULTIPART:
            session.s3_upload_id = self.bucket.create_multipart(session.key)
        try:
            self.uow.commit(image, request_id)
        except GlanceError:
            if session.s3_upload_id:
                self.bucket.abort_multipart(session.key, session.s3_upload_id)
            raise
        if replaced is not None:
            self.discard(replaced)
        return session

    def heartbeat(self, image_id: str, session: UploadSession, holder: str = API_HOLDER) -> Heartbeat:
        """The lease renewals of a writer streaming ``session``'s bytes through the service."""
        lease = self.settings.stream_lease_seconds if holder == API_HOLDER else self.settings.work_lease_seconds
        return Heartbeat(self.uow, image_id, session.id, holder, timedelta(seconds=lease))

    def abort(self, image: Image, request_id: str | None = None) -> UploadSession:
        """The owner gives up the upload or import in flight, whoever moves its bytes: back to queued, the session's
        bytes deleted, its task failed (404 when nothing is in flight). A writer still busy stops at its next
        lease renewal, and whatever it records later finds another session and changes nothing."""
        session = image.upload
        if session is None or image.status not in IN_FLIGHT:
            raise NotFoundError(kind="upload for image", id=image.id)
        image.abort_upload()
        self.uow.commit(image, request_id)
        self.discard(session)
        if session.task_id and self.tasks is not None:
            self.tasks.fail(session.task_id, "The import was aborted by the image's owner.", request_id)
        return session

    def discard(self, session: UploadSession) -> None:
        """Delete what a session left in the bucket (an open multipart upload, the object)."""
        if session.s3_upload_id:
            self.bucket.abort_multipart(session.key, session.s3_upload_id)
        self.bucket.delete(session.key)

    def close(self, image_id: str, session: UploadSession, request_id: str | None = None) -> None:
        """The client's transfer of ``session`` failed: uploading -> queued (unless the image moved on)."""

        def abort(image: Image) -> None:
            if image.upload is not None and image.upload.id == session.id:
                image.abort_upload()

        self.uow.update(image_id, abort, request_id)
