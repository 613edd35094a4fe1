"""Finalising uploads: verify an image's bytes once, then make it active or send it back to queued.

Used by the ``upload_complete`` function (S3 events, at-least-once), by the API's ``PUT /file`` (inline) and by
the import worker. Every outcome is written through the unit of work, conditional on the image's version: an image
that was deleted or whose upload was replaced meanwhile is never resurrected, and a duplicate or replayed event
changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.deadline import Deadline, DeadlineReachedError, Progress
from shared.domain.errors import ConcurrentUpdateError, NotFoundError, UploadSupersededError
from shared.domain.image import Image, ImageData, utcnow
from shared.domain.location import Location, LocationStatus
from shared.domain.quota import QuotaExceededError
from shared.domain.status import ImageStatus
from shared.domain.upload import UploadMethod, UploadSession
from shared.jobrunner import JobLauncher, JobLaunchError, NoJobLauncher
from shared.jobs import FinalizeJob
from shared.resources import ACTIVE_STATE, parse_image_object_key
from shared.services.leases import JOB_HOLDER, Heartbeat, holds
from shared.streams.digest import Digest, SizeCapExceededError, StreamDigest
from shared.upload_bucket import ObjectMissingError, UploadBucket

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from shared.config import Settings
    from shared.jobs import Job
    from shared.notifications.events import Events
    from shared.services.replication import Replicator
    from shared.services.unit_of_work import ImageUnitOfWork


_LOG = logging.getLogger(__name__)


class Outcome(StrEnum):
    """What finalising one object did."""

    IGNORED = "ignored"  # not an image object (e.g. S3's test event)
    DUPLICATE = "duplicate"  # the image already holds these bytes
    ORPHAN = "orphan"  # no image wants these bytes any more: deleted
    DEFERRED = "deferred"  # the writer (PUT /file, web-download) is finalising these bytes itself; retry later
    HANDED_OFF = "handed_off"  # the work did not fit the worker's time: a job runs it (and records the outcome)
    ACTIVE = "active"
    REFUSED = "refused"  # back to queued with the reason on the image
    OVER_QUOTA = "over_quota"  # refused: recording the bytes would pass a unified limit (docs/quotas.md)


class FinalizeDeferredError(Exception):
    """Raised to make the event be delivered again later."""


@dataclass
class UploadFinalizer:
    """Verifies and records uploads; one instance per process."""

    uow: ImageUnitOfWork
    bucket: UploadBucket
    settings: Settings
    # Queues the copies an activated image gets (requested stores, replication policy).
    replicator: Replicator
    events: Events
    # Runs the work that does not fit a worker's deadline (none configured: such work fails with the reason).
    jobs: JobLauncher = field(default_factory=lambda: NoJobLauncher("no job runner is configured"))

    # -- the event path ---------------------------------------------------------------------------

    def handle_object(self, key: str, request_id: str | None = None, deadline: Deadline | None = None) -> Outcome:
        """Finalise the object ``key`` that S3 reports as created; work that cannot finish before ``deadline`` is
        handed to a job (``FinalizeJob``), or, when none can be started, fails with the reason on the image."""
        try:
            return self.verify_object(key, request_id, deadline)
        except DeadlineReachedError as exc:
            parsed = parse_image_object_key(key)
            assert parsed is not None  # verify_object ignores other keys
            return self.hand_off(FinalizeJob(key=key, request_id=request_id), parsed[0], parsed[1], str(exc))

    def verify_object(  # noqa: PLR0911 (one return per outcome, in the order they are decided)
        self, key: str, request_id: str | None = None, deadline: Deadline | None = None
    ) -> Outcome:
        """Finalise the object ``key``, or raise ``DeadlineReachedError`` (nothing recorded) when it cannot finish
        before ``deadline`` (its size, known up front, or the measured rate of the read says so)."""
        deadline = deadline or Deadline.unbounded()
        parsed = parse_image_object_key(key)
        if parsed is None:
            return Outcome.IGNORED
        image_id, session_id = parsed
        try:
            image = self.uow.get(image_id)
        except NotFoundError:
            self.bucket.delete(key)
            return Outcome.ORPHAN
        if self._holds(image, key):
            self.replicator.dispatch(image)
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
        heartbeat = self._heartbeat(image_id, session_id, deadline)
        try:
            heartbeat.take()
            read = self.bucket.read(key)
        except UploadSupersededError:
            return Outcome.DUPLICATE
        except ObjectMissingError:
            # Told about bytes that are not there (deleted, never written, a stage interrupted): the image and its
            # task fail with the reason rather than wait for ever.
            missing = Refusal(RefusalKind.FAILED, f"the uploaded data is missing: no object {key} in the image bucket")
            return self.record(image_id, session, missing, request_id=request_id)
        deadline.check_fits(read.length, self.settings.worker_bytes_per_second)
        progress = Progress(deadline, read.length)

        def watched() -> Iterator[bytes]:
            for chunk in read.chunks:
                progress.advance(len(chunk))
                heartbeat.beat()
                yield chunk

        try:
            result = self.digest(image, watched())
        except UploadSupersededError:
            return Outcome.DUPLICATE
        return self.record(image_id, session, result, request_id=request_id)

    def hand_off(self, job: Job, image_id: str, session_id: str, why: str) -> Outcome:
        """Give the work on ``image_id``'s session to a job, which holds the image from now on; when no job can be
        started, the image fails with the reason (queued, ``os_glance_upload_error``)."""
        lease = timedelta(seconds=self.settings.work_lease_seconds)

        def hold(image: Image) -> UploadSession | None:
            if not holds(image, session_id):
                return None
            image.hold(JOB_HOLDER, utcnow() + lease)
            return image.upload

        try:
            session = self.uow.update(image_id, hold)
        except NotFoundError:
            return Outcome.ORPHAN
        if session is None:
            return Outcome.DUPLICATE
        try:
            ref = self.jobs.launch(job)
        except JobLaunchError as exc:
            reason = f"The data could not be processed in time ({why}) and no job could take it over: {exc}"
            return self.record(image_id, session, Refusal(RefusalKind.FAILED, reason[:255]))
        _LOG.info("work on image %s handed to job %s: %s", image_id, ref, why)
        return Outcome.HANDED_OFF

    def _begin(self, image: Image) -> None:
        if image.status is ImageStatus.IMPORTING:
            return
        image.begin_finalize()
        # If someone else moved first, record() re-reads and decides with the fresh image.
        with contextlib.suppress(ConcurrentUpdateError):
            self.uow.commit(image)

    def _heartbeat(self, image_id: str, session_id: str, deadline: Deadline) -> Heartbeat:
        lease = timedelta(seconds=self.settings.work_lease_seconds)
        return Heartbeat(self.uow, image_id, session_id, deadline.holder, lease)

    # -- shared with PUT /file and the import worker ------------------------------------------------

    def new_digest(self, image: Image, hash_algo: str | None = None) -> StreamDigest:
        """A digest of ``image``'s bytes with its format inspection (a context manager)."""
        from shared.streams.inspection import ImageInspector

        inspector = ImageInspector(
            image.disk_format,
            image.container_format,
            allow_raw_mismatch=self.settings.allow_raw_format_mismatch,
            require_format_match=self.settings.require_image_format_match,
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
        """Write the outcome (the unit of work re-reads and decides again after a concurrent metadata change).

        ``location``: where the bytes are, when not at the session's key in the upload bucket (a service-added
        location); such bytes are never deleted on refusal (they are the service's).
        """
        refused = result if isinstance(result, Refusal) else refusal(session, result)
        verdict = _Verdict(session, location or self._location(session.key), result, refused)
        try:
            outcome, image = self._write(image_id, verdict, request_id)
        except QuotaExceededError as exc:
            if refused is not None:
                raise
            # Hard limits: the bytes would take the project past image_size_total (or their copies past a limit);
            # refuse them like any other check, with the limit named on the image.
            verdict = _Verdict(session, verdict.where, result, Refusal(RefusalKind.QUOTA, exc.message))
            outcome, image = self._write(image_id, verdict, request_id)
        owned = location is None
        if outcome is Outcome.ORPHAN or (owned and outcome in (Outcome.REFUSED, Outcome.OVER_QUOTA)):
            self.bucket.delete(session.key)
        if owned and outcome is Outcome.ACTIVE:
            self.bucket.mark(session.key, ACTIVE_STATE)
        if image is not None and outcome in (Outcome.ACTIVE, Outcome.DUPLICATE):
            self.replicator.dispatch(image)
        return outcome

    def _write(self, image_id: str, verdict: _Verdict, request_id: str | None) -> tuple[Outcome, Image | None]:
        try:
            return self.uow.update(image_id, lambda image: (self._decide(image, verdict), image), request_id)
        except NotFoundError:
            return Outcome.ORPHAN, None

    def _decide(self, image: Image, verdict: _Verdict) -> Outcome:
        """Apply the verdict on a fresh read of the image; what it did."""
        session = verdict.session
        if any(loc.url == verdict.where.url for loc in image.locations):
            return Outcome.DUPLICATE
        if image.is_deleted() or image.upload is None or image.upload.id != session.id:
            return Outcome.ORPHAN
        if verdict.refused is not None:
            image.fail_upload(verdict.refused.message)
            return Outcome.OVER_QUOTA if verdict.refused.kind is RefusalKind.QUOTA else Outcome.REFUSED
        assert isinstance(verdict.result, Digest)
        image.activate(_image_data(verdict.result), verdict.where)
        self.replicator.plan_on_activation(
            image, session.targets, session.task_id or session.id, session.all_stores_must_succeed
        )
        return Outcome.ACTIVE

    def _location(self, key: str) -> Location:
        return Location(self.settings.primary_store_id, self.bucket.location_url(key), LocationStatus.ACTIVE)

    def _holds(self, image: Image, key: str) -> bool:
        url = self.bucket.location_url(key)
        return any(loc.url == url for loc in image.locations)


@dataclass(frozen=True)
class _Verdict:
    """What finalising found: the bytes' session and location, their digest, and why they are refused (if so)."""

    session: UploadSession
    where: Location
    result: Digest | Refusal
    refused: Refusal | None


class RefusalKind(StrEnum):
    """Why bytes were refused (PUT /file answers each with Glance's status)."""

    SIZE_CAP = "size_cap"
    SIZE_MISMATCH = "size_mismatch"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    FORMAT = "format"
    QUOTA = "quota"  # recording the bytes would pass a unified limit
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
