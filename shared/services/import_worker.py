"""The import worker: finishes interoperable imports queued by ``POST /v2/images/{id}/import`` and
``POST /v2/images/{id}/locations``.

``glance-direct`` verifies the staged bytes; ``web-download`` fetches the URL into the upload bucket (re-checking
it and every redirect against the URL policy) while hashing and inspecting, then records the outcome; ``location``
reads what a service put in one of our stores and checks it against the hash it vouched for. Jobs are delivered at
least once: a job whose image has moved on (another session, active, deleted) changes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from shared.deadline import Deadline, DeadlineReachedError, Progress
from shared.domain.errors import GlanceError, NotFoundError, UploadSupersededError
from shared.domain.location import Location, LocationStatus
from shared.domain.quota import QuotaExceededError
from shared.domain.status import ImageStatus
from shared.jobs import ImportJob, MalformedJobError
from shared.services.finalize import Outcome, Refusal, RefusalKind, UploadFinalizer, refusal
from shared.services.leases import Heartbeat
from shared.stores.errors import StoreError
from shared.streams.digest import Digest, SizeCapExceededError

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.domain.image import Image
    from shared.domain.upload import UploadSession
    from shared.services.tasks import TaskService
    from shared.services.unit_of_work import ImageUnitOfWork
    from shared.stores.registry import StoreSet
    from shared.upload_bucket import UploadBucket


@dataclass
class ImportWorker:
    """Runs one import job."""

    uow: ImageUnitOfWork
    bucket: UploadBucket
    finalizer: UploadFinalizer
    settings: Settings
    # Where service-added locations are read from.
    stores: StoreSet
    # Records each import's outcome on its task.
    tasks: TaskService

    def run(self, job: ImportJob, deadline: Deadline | None = None) -> Outcome:
        """Finish the import ``job`` names, and record the outcome on its task (if the job has one); an import that
        cannot finish before ``deadline`` is handed to a job (the same ``ImportJob``), which records it."""
        deadline = deadline or Deadline.unbounded()
        if job.task_id:
            self.tasks.processing(job.task_id, job.request_id)
        try:
            outcome = self._run(job, deadline)
        except DeadlineReachedError as exc:
            outcome = self.finalizer.hand_off(job, job.image_id, job.session_id, str(exc))
        if job.task_id:
            self.tasks.record_import_outcome(self.uow.repo, job, outcome)
        return outcome

    def _run(self, job: ImportJob, deadline: Deadline) -> Outcome:
        """Finish the import ``job`` names, if its image still waits for it."""
        try:
            image = self.uow.repo.get(job.image_id)
        except NotFoundError:
            return Outcome.ORPHAN
        session = image.upload
        if image.status is not ImageStatus.IMPORTING or session is None or session.id != job.session_id:
            return Outcome.DUPLICATE
        request_id = job.request_id
        # The import flow writes the image's data now: Glance's set_data sends image.prepare.
        self.finalizer.events.image_prepare(image, None, request_id)
        if job.method == "glance-direct":
            return self.finalizer.verify_object(session.key, request_id, deadline)
        lease = timedelta(seconds=self.settings.work_lease_seconds)
        heartbeat = Heartbeat(self.uow, image.id, session.id, deadline.holder, lease)
        try:
            heartbeat.take()
        except UploadSupersededError:
            return Outcome.DUPLICATE
        watch = _Watch(Progress(deadline), heartbeat)
        if job.method == "web-download":
            # A web-download session's size is what was staged so far (quota), never a declared size to check.
            session = dataclasses.replace(session, size=None)
            result = self._download(image, session, job.uri, watch)
            return self.finalizer.record(image.id, session, result, request_id=request_id)
        if job.method == "location":
            if job.store is None or job.url is None or job.store not in self.stores:
                raise MalformedJobError(f"location job without a known store and url: {job!r}")
            result = self._verify_location(image, job.store, job.url, job.validation_data, watch)
            location = Location(job.store, job.url, LocationStatus.ACTIVE)
            return self.finalizer.record(image.id, session, result, location, request_id=request_id)
        raise MalformedJobError(f"unknown import method {job.method!r}")

    def _verify_location(
        self, image: Image, store: str, url: str, validation: dict[str, str] | None, watch: _Watch
    ) -> Digest | Refusal:
        """Read what a service put at ``url`` once: size cap, format, and the hash it vouched for."""
        expected = validation or {}
        algo = expected.get("os_hash_algo")
        secure = algo if algo is not None and algo != "md5" else None
        try:
            read = self.stores.driver(store).get(url)
            with self.finalizer.new_digest(image, secure) as stream:
                for chunk in read.chunks:
                    watch.saw(chunk)
                    stream.feed(chunk)
                digest = stream.finish()
        except SizeCapExceededError as exc:
            return Refusal(RefusalKind.SIZE_CAP, str(exc))
        except StoreError as exc:
            return Refusal(RefusalKind.FAILED, f"location import failed: {type(exc).__name__}: {exc}"[:255])
        value = expected.get("os_hash_value")
        if value is not None:
            got = digest.checksum if algo == "md5" else digest.os_hash_value
            if got != value:
                return Refusal(RefusalKind.CHECKSUM_MISMATCH, f"{algo} of the data is {got}, {value} was expected")
        return digest

    def _download(self, image: Image, session: UploadSession, uri: str | None, watch: _Watch) -> Digest | Refusal:
        from shared.net.ssrf import UrlPolicy
        from shared.services.web_download import download_to_bucket

        if uri is None:
            return Refusal(RefusalKind.FAILED, "web-download failed: the job has no URL")
        staged = _StagedBytes(self.uow, image.id, session.id, self.settings.web_download_staging_step)
        try:
            with self.finalizer.new_digest(image) as stream:

                def feed(chunk: bytes) -> None:
                    watch.saw(chunk)
                    stream.feed(chunk)
                    staged.add(len(chunk))

                download_to_bucket(
                    uri,
                    UrlPolicy.from_settings(self.settings),
                    self.bucket,
                    session.key,
                    self.settings.multipart_part_size,
                    on_chunk=feed,
                )
                digest = stream.finish()
        except SizeCapExceededError as exc:
            return Refusal(RefusalKind.SIZE_CAP, str(exc))
        except QuotaExceededError as exc:
            return Refusal(RefusalKind.FAILED, f"web-download stopped: {exc.message}")
        except GlanceError as exc:
            return Refusal(RefusalKind.FAILED, f"web-download failed: {exc.message}")
        return refusal(session, digest) or digest


@dataclass
class _Watch:
    """Checks the deadline and renews the lease of a transfer as its chunks arrive."""

    progress: Progress
    heartbeat: Heartbeat

    def saw(self, chunk: bytes) -> None:
        self.progress.advance(len(chunk))
        self.heartbeat.beat()


@dataclass
class _StagedBytes:
    """Records a web-download's bytes on its session as they arrive (every ``step`` bytes), so they count toward
    ``image_stage_total`` in the same transaction as the record, as Glance counts its staging area; a write that
    would pass the limit raises ``QuotaExceededError`` and so stops the download."""

    uow: ImageUnitOfWork
    image_id: str
    session_id: str
    step: int
    received: int = 0
    recorded: int = 0

    def add(self, count: int) -> None:
        self.received += count
        if self.received - self.recorded >= self.step:
            self.uow.update(self.image_id, self._record)

    def _record(self, image: Image) -> None:
        if image.upload is None or image.upload.id != self.session_id:
            return  # the import was superseded; the final record sorts it out
        image.upload.size = self.received
        self.recorded = self.received
