"""Glance's staging (``PUT /v2/images/{id}/stage``): the bytes of a glance-direct import, through the service.

Plain arguments in, as for ``PUT /file``: ``start`` opens the session, ``receive`` takes the body as an iterator
of byte chunks. The staged bytes are verified later, by the import; they count toward image_stage_total as soon
as they are in (docs/quotas.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.errors import (
    GlanceError,
    NotFoundError,
    RequestTooLargeError,
    StoreUnavailableError,
    UploadSupersededError,
)
from shared.domain.quota import QuotaExceededError
from shared.domain.upload import UploadMethod, UploadPlan, UploadSession
from shared.services.streamed_uploads import too_large

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from shared.config import Settings
    from shared.domain.image import Image
    from shared.services.unit_of_work import ImageUnitOfWork
    from shared.services.upload_sessions import UploadSessions
    from shared.upload_bucket import UploadBucket


@dataclass
class Staging:
    """The use cases of ``PUT /stage``; every image passed in was loaded for a change and authorised."""

    sessions: UploadSessions
    uow: ImageUnitOfWork
    bucket: UploadBucket
    settings: Settings

    def check_enabled(self) -> None:
        """404 when glance-direct is not enabled (the route does not exist then)."""
        if "glance-direct" not in self.settings.enabled_import_methods:
            raise NotFoundError(kind="route", id="stage")

    def start(self, image: Image, request_id: str | None = None) -> UploadSession:
        """queued -> uploading (404 when glance-direct is not enabled, 409 when not queued)."""
        self.check_enabled()
        plan = UploadPlan(UploadMethod.STAGE, self.settings.multipart_part_size, 1)
        return self.sessions.open(image, plan, None, request_id=request_id)

    def receive(self, image: Image, session: UploadSession, chunks: Iterable[bytes]) -> None:
        """Store the staged bytes and count them; a failure (or a limit passed: 413) returns the image to queued."""
        cap = self.settings.image_size_cap
        limit = self.settings.api_body_limit
        received = 0
        heartbeat = self.sessions.heartbeat(image.id, session)

        def counted() -> Iterator[bytes]:
            nonlocal received
            for chunk in chunks:
                received += len(chunk)
                if received > cap:
                    raise RequestTooLargeError(detail=f"the image is larger than the {cap}-byte size cap")
                if limit and received > limit:
                    # a chunked body (no Content-Length to refuse it by) past the API function's limit
                    raise RequestTooLargeError(detail=too_large(limit))
                heartbeat.beat()
                yield chunk

        try:
            self.bucket.upload_chunks(session.key, counted(), self.settings.multipart_part_size)
        except UploadSupersededError:
            self.bucket.delete(session.key)
            raise
        except BaseException as exc:
            self.sessions.close(image.id, session)
            if isinstance(exc, GlanceError):
                raise
            raise StoreUnavailableError(detail=type(exc).__name__) from exc
        self._count(image.id, session, received)

    def _count(self, image_id: str, session: UploadSession, size: int) -> None:
        """Record the staged size on the image, which counts it toward image_stage_total; over the limit, the staged
        bytes are deleted and the image is queued again (413)."""

        def record(image: Image) -> None:
            if image.upload is not None and image.upload.id == session.id:
                image.upload.size = size
                # The bytes are in: the client holds the session again, until it imports them or it expires.
                image.release()

        try:
            self.uow.update(image_id, record)
        except QuotaExceededError:
            self.bucket.delete(session.key)
            self.sessions.close(image_id, session)
            raise
