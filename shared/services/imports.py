"""The import worker: finishes interoperable imports queued by ``POST /v2/images/{id}/import``.

``glance-direct`` verifies the staged bytes; ``web-download`` fetches the URL into the bucket (re-checking it
and every redirect against the URL policy) while hashing and inspecting, then records the outcome. Jobs are
delivered at least once: a job whose image has moved on (another session, active, deleted) changes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.data.base import ImageRepository
from shared.domain.errors import GlanceError, NotFoundError
from shared.domain.image import Image, ImageStatus, Location, LocationStatus
from shared.domain.upload import UploadSession
from shared.services.finalize import Outcome, Refusal, RefusalKind, UploadFinalizer, refusal
from shared.services.tasks import TaskService, record_task_outcome
from shared.stores.s3 import ImageBucket
from shared.streams.digest import Digest, SizeCapExceededError

if TYPE_CHECKING:
    from shared.stores.registry import StoreSet


class ImportJobError(Exception):
    """A malformed job (it goes to the DLQ)."""


@dataclass
class ImportWorker:
    """Runs one import job."""

    repo: ImageRepository
    bucket: ImageBucket
    finalizer: UploadFinalizer
    settings: Settings
    # Where service-added locations are read from (POST /v2/images/{id}/locations); None: not offered.
    stores: StoreSet | None = None
    # Records each import's outcome on its task (shared/services/tasks.py); None: no task records.
    tasks: TaskService | None = None

    def run(self, job: dict[str, Any]) -> Outcome:
        """Finish the import ``job`` names, and record the outcome on its task (if the job has one)."""
        if self.tasks is None or not job.get("task_id"):
            return self._run(job)
        self.tasks.processing(job["task_id"], job.get("request_id"))
        outcome = self._run(job)
        record_task_outcome(self.tasks, self.repo, job, outcome)
        return outcome

    def _run(self, job: dict[str, Any]) -> Outcome:
        """Finish the import ``job`` names, if its image still waits for it."""
        try:
            method, image_id, session_id = job["method"], job["image_id"], job["session_id"]
        except KeyError as exc:
            raise ImportJobError(f"job without {exc}") from None
        try:
            image = self.repo.get(image_id)
        except NotFoundError:
            return Outcome.ORPHAN
        session = image.upload
        if image.status is not ImageStatus.IMPORTING or session is None or session.id != session_id:
            return Outcome.DUPLICATE
        request_id = job.get("request_id")
        # The import flow writes the image's data now: Glance's set_data sends image.prepare.
        self.finalizer.events.image_prepare(image, None, request_id)
        if method == "glance-direct":
            return self.finalizer.handle_object(session.key, request_id)
        if method == "web-download":
            # A web-download session's size is what was staged so far (quota), never a declared size to check.
            session = dataclasses.replace(session, size=None)
            result = self._download(image_id, session, job.get("uri"))
            return self.finalizer.record(image_id, session, result, request_id=request_id)
        if method == "location" and self.stores is not None:
            store, url = job.get("store"), job.get("url")
            if not isinstance(store, str) or not isinstance(url, str) or store not in self.stores:
                raise ImportJobError(f"location job without a known store and url: {job!r}")
            result = self._verify_location(image, store, url, job.get("validation_data"))
            location = Location(store, url, LocationStatus.ACTIVE)
            return self.finalizer.record(image_id, session, result, location, request_id=request_id)
        raise ImportJobError(f"unknown import method {method!r}")

    def _verify_location(self, image: Image, store: str, url: str, validation: object) -> Digest | Refusal:
        """Read what a service put at ``url`` once: size cap, format, and the hash it vouched for."""
        from shared.stores.base import StoreError

        expected = validation if isinstance(validation, dict) else {}
        algo = expected.get("os_hash_algo")
        secure = algo if isinstance(algo, str) and algo != "md5" else None
        try:
            read = self.stores.driver(store).get(url) if self.stores is not None else None
            assert read is not None
            with self.finalizer.new_digest(image, secure) as stream:
                for chunk in read.chunks:
                    stream.feed(chunk)
                digest = stream.finish()
        except SizeCapExceededError as exc:
            return Refusal(RefusalKind.SIZE_CAP, str(exc))
        except StoreError as exc:
            return Refusal(RefusalKind.FAILED, f"location import failed: {type(exc).__name__}: {exc}"[:255])
        value = expected.get("os_hash_value")
        if isinstance(value, str):
            got = digest.checksum if algo == "md5" else digest.os_hash_value
            if got != value:
                return Refusal(RefusalKind.CHECKSUM_MISMATCH, f"{algo} of the data is {got}, {value} was expected")
        return digest

    def _download(self, image_id: str, session: UploadSession, uri: object) -> Digest | Refusal:
        from shared.domain.quota import QuotaExceededError
        from shared.net.ssrf import UrlPolicy
        from shared.services.web_download import download_to_bucket

        if not isinstance(uri, str):
            return Refusal(RefusalKind.FAILED, "web-download failed: the job has no URL")
        image = self.repo.get(image_id)
        staged = _StagedBytes(self.repo, image_id, session.id, self.settings.web_download_staging_step)
        try:
            with self.finalizer.new_digest(image) as stream:

                def feed(chunk: bytes) -> None:
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
class _StagedBytes:
    """Records a web-download's bytes on its session as they arrive (every ``step`` bytes), so they count toward
    ``image_stage_total`` in the same transaction as the record, as Glance counts its staging area; a write that
    would pass the limit raises ``QuotaExceededError`` and so stops the download."""

    repo: ImageRepository
    image_id: str
    session_id: str
    step: int
    received: int = 0
    recorded: int = 0

    def add(self, count: int) -> None:
        self.received += count
        if self.received - self.recorded >= self.step:
            self._record()

    def _record(self) -> None:
        from shared.domain.errors import ConcurrentUpdateError

        for _ in range(8):
            image = self.repo.get(self.image_id)
            if image.upload is None or image.upload.id != self.session_id:
                return  # the import was superseded; the final record sorts it out
            image.upload.size = self.received
            try:
                self.repo.save(image)
            except ConcurrentUpdateError:
                continue
            self.recorded = self.received
            return
