"""Finalising uploads: verify an image's bytes once, then make it active or send it back to queued.

Used by the ``upload_complete`` function (S3 events, at-least-once) and by the API's ``PUT /file`` (inline).
Every outcome is recorded with a conditional write on the image's version: an image that was deleted or
whose upload was replaced meanwhile is never resurrected, and a duplicate or replayed event changes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.config import Settings
from shared.data.base import ImageRepository
from shared.domain.errors import ConcurrentUpdateError, NotFoundError
from shared.domain.image import Image, ImageData, ImageStatus, Location, LocationStatus, utcnow
from shared.domain.quota import QuotaExceededError
from shared.domain.upload import UploadMethod, UploadSession, parse_image_key
from shared.notifications import NullNotifier
from shared.notifications.events import Events
from shared.resources import ACTIVE_STATE
from shared.stores.s3 import ImageBucket, ObjectMissingError
from shared.streams.digest import Digest, SizeCapExceededError, StreamDigest

if TYPE_CHECKING:
    from shared.services.replication import Replicator

_SAVE_ATTEMPTS = 8


class Outcome(StrEnum):
    """What finalising one object did."""

    IGNORED = "ignored"  # not an image object (e.g. S3's test event)
    DUPLICATE = "duplicate"  # the image already holds these bytes
    ORPHAN = "orphan"  # no image wants these bytes any more: deleted
    DEFERRED = "deferred"  # the writer (PUT /file, web-download) is finalising these bytes itself; retry later
    ACTIVE = "active"
    REFUSED = "refused"  # back to queued with the reason on the image
    OVER_QUOTA = "over_quota"  # refused: recording the bytes would pass a unified limit (docs/quotas.md)


class FinalizeDeferredError(Exception):
    """Raised to make the event be delivered again later."""


@dataclass
class UploadFinalizer:
    """Verifies and records uploads; one instance per process."""

    repo: ImageRepository
    bucket: ImageBucket
    settings: Settings
    # Queues the copies an activated image gets (requested stores, replication policy); None: no replication.
    replicator: Replicator | None = None
    events: Events = field(default_factory=lambda: Events(NullNotifier()))

    # -- the event path ---------------------------------------------------------------------------

    def handle_object(self, key: str, request_id: str | None = None) -> Outcome:
        """Finalise the object ``key`` that S3 reports as created."""
        parsed = parse_image_key(key)
        if parsed is None:
            return Outcome.IGNORED
        image_id, session_id = parsed
        try:
            image = self.repo.get(image_id)
        except NotFoundError:
            self.bucket.delete(key)
            return Outcome.ORPHAN
        if self._holds(image, key):
            self._dispatch(image)
            return Outcome.DUPLICATE
        session = image.upload
        if session is None or session.id != session_id or image.is_deleted():
            self.bucket.delete(key)
            return Outcome.ORPHAN
        if session.method is UploadMethod.STAGE and image.status is ImageStatus.UPLOADING:
            # Staged bytes wait for the glance-direct import call.
            return Outcome.IGNORED
        grace = timedelta(seconds=self.settings.proxy_finalize_grace_seconds)
        if session.method.finalised_inline and utcnow() < session.created_at + grace:
            return Outcome.DEFERRED
        self._begin(image)
        try:
            read = self.bucket.read(key)
        except ObjectMissingError:
            return Outcome.ORPHAN
        return self.record(image_id, session, self.digest(image, read.chunks), request_id=request_id)

    def _begin(self, image: Image) -> None:
        if image.status is ImageStatus.IMPORTING:
            return
        image.begin_finalize()
        image.touch()
        # If someone else moved first, record() re-reads and decides with the fresh image.
        with contextlib.suppress(ConcurrentUpdateError):
            self.events.image_updated(self.repo.save(image), None)

    # -- shared with PUT /file --------------------------------------------------------------------

    def new_digest(self, image: Image, hash_algo: str | None = None) -> StreamDigest:
        """A digest of ``image``'s bytes with its format inspection (a context manager)."""
        from shared.streams.inspection import ImageInspector

        inspector = ImageInspector(
            image.disk_format, image.container_format, allow_raw_mismatch=self.settings.allow_raw_format_mismatch
        )
        algo = hash_algo or self.settings.hashing_algorithm
        return StreamDigest(algo, inspector, self.settings.image_size_cap)

    def digest(self, image: Image, chunks: Iterable[bytes]) -> Digest | Refusal:
        """Hash and inspect ``chunks``; returns the digest, or why the bytes are refused."""
        try:
            with self.new_digest(image) as stream:
                for chunk in chunks:
                    stream.feed(chunk)
                return stream.finish()
        except SizeCapExceededError as exc:
            return Refusal(RefusalKind.SIZE_CAP, str(exc))

    def record(
        self,
        image_id: str,
        session: UploadSession,
        result: Digest | Refusal,
        location: Location | None = None,
        *,
        request_id: str | None = None,
    ) -> Outcome:
        """Write the outcome with a conditional write, retrying on concurrent metadata changes.

        ``location``: where the bytes are, when not at the session's key in the image bucket (a service-added
        location); such bytes are never deleted on refusal (they are the service's).
        """
        where = location or self._location(session.key)
        refused = result if isinstance(result, Refusal) else refusal(session, result)
        reason = refused.message if refused is not None else None
        over_quota = False
        for _ in range(_SAVE_ATTEMPTS):
            try:
                image = self.repo.get(image_id)
            except NotFoundError:
                image = None
            if image is not None and any(loc.url == where.url for loc in image.locations):
                self._dispatch(image)
                return Outcome.DUPLICATE
            if image is None or image.is_deleted() or image.upload is None or image.upload.id != session.id:
                self.bucket.delete(session.key)
                return Outcome.ORPHAN
            if reason is not None:
                image.fail_upload(reason)
            else:
                assert isinstance(result, Digest)
                image.activate(_image_data(result), where)
                if self.replicator is not None:
                    self.replicator.plan_on_activation(
                        image, session.targets, session.task_id or session.id, session.all_stores_must_succeed
                    )
            image.touch()
            try:
                saved = self.repo.save(image)
            except ConcurrentUpdateError:
                continue
            except QuotaExceededError as exc:
                # Hard limits: the bytes would take the project past image_size_total (or their copies past a
                # limit); refuse them like any other check, with the limit named on the image.
                if reason is not None:
                    raise
                reason, over_quota = exc.message, True
                continue
            if reason is not None:
                if location is None:
                    self.bucket.delete(session.key)
                self.events.upload_failed(image_id, reason, request_id)
                self.events.image_updated(saved, request_id)
                return Outcome.OVER_QUOTA if over_quota else Outcome.REFUSED
            if location is None:
                self.bucket.mark(session.key, ACTIVE_STATE)
            self.events.image_uploaded(saved, where.store, request_id)
            self.events.image_updated(saved, request_id)
            self._dispatch(image)
            return Outcome.ACTIVE
        raise ConcurrentUpdateError(image_id=image_id)

    def _location(self, key: str) -> Location:
        return Location(self.settings.primary_store_id, self.bucket.location_url(key), LocationStatus.ACTIVE)

    def _dispatch(self, image: Image) -> None:
        """Queue the image's pending copies (again, after a redelivery: copy jobs are idempotent)."""
        if self.replicator is not None:
            self.replicator.dispatch(image)

    def _holds(self, image: Image, key: str) -> bool:
        url = self.bucket.location_url(key)
        return any(loc.url == url for loc in image.locations)


class RefusalKind(StrEnum):
    """Why bytes were refused (PUT /file answers each with Glance's status)."""

    SIZE_CAP = "size_cap"
    SIZE_MISMATCH = "size_mismatch"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    FORMAT = "format"
    FAILED = "failed"  # the transfer itself failed


@dataclass(frozen=True)
class Refusal:
    """Bytes that cannot become the image, and why (the message is shown on the image)."""

    kind: RefusalKind
    message: str


def refusal(session: UploadSession, digest: Digest) -> Refusal | None:
    """Why verified bytes cannot become the image, or None when they can."""
    if session.size is not None and digest.size != session.size:
        message = f"size mismatch: {session.size} bytes were declared, {digest.size} were received"
        return Refusal(RefusalKind.SIZE_MISMATCH, message)
    if session.checksum is not None and digest.checksum != session.checksum.lower():
        message = f"checksum mismatch: md5 {session.checksum} was declared, the data has {digest.checksum}"
        return Refusal(RefusalKind.CHECKSUM_MISMATCH, message)
    if digest.inspection is not None and digest.inspection.error is not None:
        return Refusal(RefusalKind.FORMAT, digest.inspection.error)
    return None


def _image_data(digest: Digest) -> ImageData:
    return ImageData(
        size=digest.size,
        checksum=digest.checksum,
        os_hash_algo=digest.os_hash_algo,
        os_hash_value=digest.os_hash_value,
        virtual_size=digest.inspection.virtual_size if digest.inspection is not None else None,
    )
