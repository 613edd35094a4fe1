"""Presigned direct uploads (our extension): the client sends the bytes straight to the upload bucket.

``open`` starts a session and hands out presigned PUTs (one, or one per part of a multipart upload); ``status``
lists what the bucket holds so far (to resume); ``complete`` assembles the parts; ``abort`` gives up. The S3
event of the finished object finalises the image (``shared/services/finalize.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.errors import ConflictError, NotFoundError, RequestTooLargeError
from shared.domain.status import ImageStatus
from shared.domain.upload import UploadMethod, UploadPlan, UploadSession, plan_upload
from shared.resources import PENDING_STATE

if TYPE_CHECKING:
    from collections.abc import Iterable

    from shared.config import Settings
    from shared.domain.image import Image
    from shared.notifications.events import Events
    from shared.services.unit_of_work import ImageUnitOfWork
    from shared.services.upload_sessions import UploadSessions
    from shared.upload_bucket import PresignedRequest, UploadBucket, UploadedPart

# Part URLs handed out per call; a client asks again for the rest (or after they expire).
MAX_PART_URLS = 100


@dataclass(frozen=True)
class PartUrl:
    """A presigned PUT for one part."""

    number: int
    size: int
    request: PresignedRequest


@dataclass(frozen=True)
class OpenedUpload:
    """An upload session and the requests the client makes to send the bytes."""

    image: Image
    session: UploadSession
    single: PresignedRequest | None
    parts: list[PartUrl]


@dataclass(frozen=True)
class UploadStatus:
    """Where an upload stands: what the bucket holds so far."""

    image: Image
    session: UploadSession
    uploaded: list[UploadedPart]


@dataclass(frozen=True)
class UploadRequest:
    """A validated request for a presigned upload: the declared size and md5, and the server's plan."""

    size: int
    checksum: str | None
    plan: UploadPlan


@dataclass
class PresignedUploads:
    """The use cases of ``/v2/images/{id}/upload``; every image passed in was loaded for a change and authorised."""

    sessions: UploadSessions
    uow: ImageUnitOfWork
    bucket: UploadBucket
    settings: Settings
    events: Events

    def plan(self, size: int, checksum: str | None = None, multipart: bool | None = None) -> UploadRequest:
        """Check a request for ``size`` bytes against the size cap and S3's limits, and plan it (single PUT or
        multipart; ``multipart`` None: the server picks by size).

        Raises:
            RequestTooLargeError: over the image size cap (413).
            InvalidInputError: more than one PUT or a multipart upload can hold (400).
        """
        s = self.settings
        if size > s.image_size_cap:
            raise RequestTooLargeError(detail=f"Image size {size} exceeds the cap of {s.image_size_cap}.")
        plan = plan_upload(
            size,
            multipart_threshold=s.multipart_threshold,
            part_size=s.multipart_part_size,
            max_parts=s.multipart_max_parts,
            force=multipart,
        )
        return UploadRequest(size, checksum, plan)

    def open(
        self, image: Image, request: UploadRequest, targets: tuple[str, ...] = (), request_id: str | None = None
    ) -> OpenedUpload:
        """Open the session ``request`` planned, and presign the requests that send its bytes."""
        self.sessions.precheck_size(image, request.size)
        session = self.sessions.open(image, request.plan, request.size, request.checksum, targets, request_id)
        # The client writes the bytes next: Glance sends image.prepare when data starts being written.
        self.events.image_prepare(image, None, request_id)
        ttl = self.settings.presign_ttl_seconds
        if session.method is UploadMethod.SINGLE:
            return OpenedUpload(image, session, self.bucket.presign_put(session.key, request.size, ttl), [])
        numbers = range(1, min(session.parts_count, MAX_PART_URLS) + 1)
        return OpenedUpload(image, session, None, self._part_urls(session, numbers))

    def status(self, image: Image) -> UploadStatus:
        """The session and the parts the bucket already holds (to resume)."""
        session = _open_session(image)
        uploaded = []
        if session.s3_upload_id and image.status is ImageStatus.UPLOADING:
            uploaded = self.bucket.list_parts(session.key, session.s3_upload_id)
        return UploadStatus(image, session, uploaded)

    def part_urls(self, image: Image, numbers: list[int]) -> list[PartUrl]:
        """Fresh URLs for the given part numbers of an open multipart upload."""
        session = _open_session(image)
        if session.method is not UploadMethod.MULTIPART or image.status is not ImageStatus.UPLOADING:
            raise ConflictError(detail="Part URLs exist only for an open multipart upload.")
        return self._part_urls(session, numbers)

    def complete(self, image: Image) -> Image:
        """Assemble the parts; finalisation follows the bucket's event."""
        session = _open_session(image)
        if session.method is not UploadMethod.MULTIPART or image.status is not ImageStatus.UPLOADING:
            raise ConflictError(
                detail="Only an open multipart upload can be completed; single PUTs complete themselves."
            )
        assert session.s3_upload_id is not None
        uploaded = {p.number: p for p in self.bucket.list_parts(session.key, session.s3_upload_id)}
        missing = [n for n in range(1, session.parts_count + 1) if n not in uploaded]
        wrong = [n for n, p in uploaded.items() if n <= session.parts_count and p.size != session.part_range(n)]
        if missing or wrong:
            raise ConflictError(
                detail=f"Upload is incomplete: missing parts {missing[:20]}, wrong-sized parts {wrong[:20]}."
            )
        self.bucket.complete_multipart(session.key, session.s3_upload_id, [uploaded[n] for n in sorted(uploaded)])
        # Some S3 implementations (Ceph RGW 16) drop the tag given at CreateMultipartUpload; the lifecycle
        # expiry of abandoned objects relies on it.
        self.bucket.mark(session.key, PENDING_STATE)
        return image

    def abort(self, image: Image, request_id: str | None = None) -> None:
        """Cancel whatever upload or import is in flight (presigned, PUT /file, staged, being imported): back to
        queued, the session's bytes deleted, its task failed (404 when nothing is in flight)."""
        self.sessions.abort(image, request_id)

    def _part_urls(self, session: UploadSession, numbers: Iterable[int]) -> list[PartUrl]:
        assert session.s3_upload_id is not None
        ttl = self.settings.presign_ttl_seconds
        urls = []
        for number in numbers:
            size = session.part_range(number)
            urls.append(
                PartUrl(number, size, self.bucket.presign_part(session.key, session.s3_upload_id, number, size, ttl))
            )
        return urls


def _open_session(image: Image) -> UploadSession:
    """The image's presigned session (404 when it has none: no upload, or one through the API)."""
    session = image.upload
    if session is None or session.method is UploadMethod.PROXY:
        raise NotFoundError(kind="upload for image", id=image.id)
    return session
