"""The import worker: finishes interoperable imports queued by ``POST /v2/images/{id}/import`` and
``POST /v2/images/{id}/locations``.

``glance-direct`` verifies the staged bytes; ``web-download`` fetches the URL into the upload bucket (re-checking
it and every redirect against the URL policy) while hashing and inspecting, then records the outcome;
``glance-download`` does the same with another region's Glance (``shared/services/glance_download.py``); ``location``
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
    from collections.abc import Iterable, Iterator

    from shared.config import Settings
    from shared.domain.image import Image
    from shared.domain.upload import UploadSession
    from shared.services.glance_download import RemoteGlance, RemoteImage
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
            # A job runner's job is in RunTask's overrides (DescribeTasks, CloudTrail): never the caller's token.
            handed = dataclasses.replace(job, auth_token=None)
            outcome = self.finalizer.hand_off(handed, job.image_id, job.session_id, str(exc))
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
        if job.method == "glance-download":
            return self._glance_download(image, session, job, watch)
        if job.method == "location":
            if job.store is None or job.url is None or job.store not in self.stores:
                raise MalformedJobError(f"location job without a known store and url: {job!r}")
            result = self._verify_location(image, job.store, job.url, job.validation_data, watch)
            location = Location(job.store, job.url, LocationStatus.ACTIVE)
            return self.finalizer.record(image.id, session, result, location, request_id=request_id)
        raise MalformedJobError(f"unknown import method {job.method!r}")

    def _glance_download(self, image: Image, session: UploadSession, job: ImportJob, watch: _Watch) -> Outcome:
        """Glance's _ImportMetadata then its glance_download plugin: take the remote image's formats and copied
        properties, stream its bytes into the upload bucket, check them against its size and hashes, and record
        the outcome; a failure restores the formats and properties the image had (Glance's revert)."""
        from shared.net.ssrf import UrlPolicy
        from shared.services.glance_download import RemoteGlance

        if not job.glance_region or not job.glance_image_id:
            raise MalformedJobError("glance-download job without glance_region and glance_image_id")
        remote = RemoteGlance(
            self.settings.keystone_url,
            job.auth_token,
            UrlPolicy.from_settings(self.settings),
            self.settings.keystone_timeout_seconds,
        )
        try:
            endpoint = remote.endpoint(job.glance_region, job.glance_service_interface or "public")
            source = remote.image(endpoint, job.glance_image_id, self.settings.glance_download_properties)
        except GlanceError as exc:
            failed = Refusal(RefusalKind.FAILED, _failure(exc))
            return self.finalizer.record(image.id, session, failed, request_id=job.request_id)
        before = _Formats.of(image, source.properties)

        def adopt(current: Image) -> Image:
            if current.upload is not None and current.upload.id == session.id:
                current.disk_format, current.container_format = source.disk_format, source.container_format
                current.extra_properties.update(source.properties)
            return current

        adopted = self.uow.update(image.id, adopt, job.request_id)
        expected = dataclasses.replace(session, size=source.size, checksum=source.checksum)
        data_url = f"{endpoint}/v2/images/{job.glance_image_id}/file"
        result = self._remote_bytes(adopted, expected, remote, data_url, watch)
        if isinstance(result, Digest) and _hash_differs(result, source):
            message = f"{source.os_hash_algo} of the data is {result.os_hash_value}, {source.os_hash_value} remotely"
            result = Refusal(RefusalKind.CHECKSUM_MISMATCH, message)
        if isinstance(result, Refusal):
            self.uow.update(image.id, before.restore, job.request_id)
        return self.finalizer.record(image.id, expected, result, request_id=job.request_id)

    def _remote_bytes(
        self, image: Image, session: UploadSession, remote: RemoteGlance, url: str, watch: _Watch
    ) -> Digest | Refusal:
        """The remote image's bytes into the session's key, hashed and inspected on the way (web-download's path:
        constant memory, staging quota counted as they arrive)."""
        staged = _StagedBytes(self.uow, image.id, session.id, self.settings.web_download_staging_step)
        try:
            with self.finalizer.new_digest(image) as stream:

                def tapped(chunks: Iterator[bytes]) -> Iterator[bytes]:
                    for chunk in chunks:
                        watch.saw(chunk)
                        stream.feed(chunk)
                        staged.add(len(chunk))
                        yield chunk

                with remote.open(url) as response:
                    parts = self.settings.multipart_part_size
                    self.bucket.upload_chunks(session.key, tapped(response.iter_content(MiB)), parts)
                digest = stream.finish()
        except SizeCapExceededError as exc:
            return Refusal(RefusalKind.SIZE_CAP, str(exc))
        except GlanceError as exc:
            return Refusal(RefusalKind.FAILED, _failure(exc))
        return refusal(session, digest) or digest

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


MiB = 1024 * 1024


def _hash_differs(digest: Digest, source: RemoteImage) -> bool:
    """Whether the remote image's secure hash, when it is of the algorithm used here, differs from the data's."""
    same_algo = source.os_hash_value is not None and source.os_hash_algo == digest.os_hash_algo
    return same_algo and digest.os_hash_value != source.os_hash_value


def _failure(exc: GlanceError) -> str:
    message = exc.message if exc.message.startswith("glance-download") else f"glance-download failed: {exc.message}"
    return message[:255]


@dataclass(frozen=True)
class _Formats:
    """An image's formats and the properties a glance-download is about to replace, to restore on failure."""

    disk_format: str | None
    container_format: str | None
    properties: dict[str, str | None]

    @classmethod
    def of(cls, image: Image, replaced: Iterable[str]) -> _Formats:
        return cls(image.disk_format, image.container_format, {k: image.extra_properties.get(k) for k in replaced})

    def restore(self, image: Image) -> None:
        if image.status is not ImageStatus.IMPORTING:
            return
        image.disk_format, image.container_format = self.disk_format, self.container_format
        for name, value in self.properties.items():
            if value is None:
                image.extra_properties.pop(name, None)
            else:
                image.extra_properties[name] = value


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
