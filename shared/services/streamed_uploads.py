"""Glance's upload (``PUT /v2/images/{id}/file``): the bytes stream through the service into the upload bucket.

Plain arguments in, so any entry point can serve it: the API Lambda (bodies up to ``api_body_limit``) or the
data plane's container (functions/data_plane: no limit but ``image_size_cap``). ``start`` opens the session before
the body is read; ``receive`` takes the body as an iterator of byte chunks, hashes and inspects it on the way to the
bucket (an S3 multipart upload), and records the outcome before it returns, as Glance does: no second read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.errors import (
    GlanceError,
    GoneError,
    InvalidImageDataError,
    InvalidInputError,
    NotFoundError,
    RequestTooLargeError,
    StoreUnavailableError,
    UnsupportedMediaTypeError,
    UploadSupersededError,
)
from shared.domain.quota import QuotaExceededError
from shared.domain.upload import UPLOAD_ERROR_PROPERTY, UploadMethod, UploadPlan, UploadSession
from shared.services.finalize import Outcome, Refusal, RefusalKind, UploadFinalizer, refusal
from shared.streams.digest import SizeCapExceededError

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.domain.image import Image
    from shared.notifications.events import Events
    from shared.services.unit_of_work import ImageUnitOfWork
    from shared.services.upload_sessions import UploadSessions
    from shared.upload_bucket import UploadBucket

OCTET_STREAM = "application/octet-stream"
# The body is hashed in pieces of at least this size: an HTTP server hands it over in ~64 KiB chunks, and each piece
# the digest takes costs two thread hand-offs (md5 and the secure hash run in parallel).
DIGEST_PIECE = 1024 * 1024


def coalesced(chunks: Iterable[bytes], size: int = DIGEST_PIECE) -> Iterator[bytes]:
    """``chunks`` joined into pieces of at least ``size`` bytes (the last one may be shorter); order kept."""
    pending = bytearray()
    for chunk in chunks:
        if not pending and len(chunk) >= size:
            yield chunk
            continue
        pending += chunk
        if len(pending) >= size:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


def too_large(limit: int) -> str:
    """The 413 message of a body over ``limit`` (the API function's): it names the two paths that take any size."""
    return (
        f"Request body larger than the {limit} bytes the API function accepts. Send image data through the image "
        "endpoint, whose data plane streams PUT /v2/images/{id}/file and /stage bodies of any size up to "
        "image_size_cap; where the data plane is off, upload directly to storage: POST /v2/images/{id}/upload opens "
        "a presigned (multipart, resumable) upload. See docs/uploads.md."
    )


@dataclass
class StreamedUploads:
    """The use cases of ``PUT /file``; every image passed in was loaded for a change and authorised."""

    sessions: UploadSessions
    uow: ImageUnitOfWork
    bucket: UploadBucket
    finalizer: UploadFinalizer
    settings: Settings
    events: Events

    def check(self, content_type: str | None, content_length: int | None) -> None:
        """Refuse before reading the body: wrong media type (415) or a body this tier cannot take (413)."""
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media != OCTET_STREAM:
            raise UnsupportedMediaTypeError(media or "none", (OCTET_STREAM,))
        limit = self.settings.api_body_limit
        if limit and content_length is not None and content_length > limit:
            raise RequestTooLargeError(detail=too_large(limit))

    def start(
        self,
        image: Image,
        declared_size: int | None,
        targets: tuple[str, ...] = (),
        request_id: str | None = None,
    ) -> UploadSession:
        """Open a session for the body (queued -> uploading; 409 when not queued)."""
        self.sessions.precheck_size(image, declared_size)
        plan = UploadPlan(UploadMethod.PROXY, self.settings.multipart_part_size, 1)
        return self.sessions.open(image, plan, declared_size, None, targets, request_id)

    def receive(
        self, image: Image, session: UploadSession, chunks: Iterable[bytes], request_id: str | None = None
    ) -> Image:
        """Stream ``chunks`` to the bucket while hashing and inspecting, then record the outcome; returns the image
        as recorded (active), or raises Glance's error for the refusal (the image is queued again with the reason).
        """
        limit = self.settings.api_body_limit
        self.events.image_prepare(image, None, request_id)
        heartbeat = self.sessions.heartbeat(image.id, session)
        try:
            with self.finalizer.new_digest(image) as stream:

                def teed() -> Iterator[bytes]:
                    for chunk in coalesced(chunks):
                        stream.feed(chunk)
                        if limit and stream.size > limit:
                            raise RequestTooLargeError(detail=too_large(limit))
                        heartbeat.beat()
                        yield chunk

                self.bucket.upload_chunks(session.key, teed(), self.settings.multipart_part_size)
                digest = stream.finish()
        except (SizeCapExceededError, RequestTooLargeError) as exc:
            self._fail(image.id, session, str(exc), request_id)
            raise RequestTooLargeError(detail=str(exc)) from None
        except UploadSupersededError:
            # Aborted or swept while the body arrived: the image is someone else's now; drop what was written.
            self.bucket.delete(session.key)
            raise
        except GlanceError:
            self._fail(image.id, session, "upload failed", request_id)
            raise
        except Exception as exc:
            self._fail(image.id, session, "upload failed: the store did not accept the data", request_id)
            raise StoreUnavailableError(detail=type(exc).__name__) from exc
        refused = refusal(session, digest)
        outcome = self.finalizer.record(image.id, session, refused or digest, request_id=request_id)
        if outcome is Outcome.ORPHAN:
            if self._deleted(image.id):
                raise GoneError(image_id=image.id)
            raise UploadSupersededError(image_id=image.id)  # aborted by its owner, or swept, meanwhile
        if outcome is Outcome.OVER_QUOTA:
            reason = self.uow.repo.get(image.id).extra_properties.get(UPLOAD_ERROR_PROPERTY)
            raise QuotaExceededError(reason or "Quota exceeded: the image data would pass a project limit.")
        if refused is not None and refused.kind is RefusalKind.FORMAT:
            raise InvalidImageDataError(detail=refused.message)
        if refused is not None:
            raise InvalidInputError(refused.message)
        return self.uow.repo.get(image.id)

    def _deleted(self, image_id: str) -> bool:
        try:
            return self.uow.repo.get(image_id).is_deleted()
        except NotFoundError:
            return True

    def _fail(self, image_id: str, session: UploadSession, reason: str, request_id: str | None) -> None:
        self.finalizer.record(image_id, session, Refusal(RefusalKind.FAILED, reason), request_id=request_id)
