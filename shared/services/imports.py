"""The import worker: finishes interoperable imports queued by ``POST /v2/images/{id}/import``.

``glance-direct`` verifies the staged bytes; ``web-download`` fetches the URL into the bucket (re-checking it
and every redirect against the URL policy) while hashing and inspecting, then records the outcome. Jobs are
delivered at least once: a job whose image has moved on (another session, active, deleted) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.config import Settings
from shared.data.base import ImageRepository
from shared.domain.errors import GlanceError, NotFoundError
from shared.domain.image import ImageStatus
from shared.domain.upload import UploadSession
from shared.services.digest import Digest, SizeCapExceededError
from shared.services.finalize import Outcome, Refusal, RefusalKind, UploadFinalizer, refusal
from shared.stores.s3 import ImageBucket


class ImportJobError(Exception):
    """A malformed job (it goes to the DLQ)."""


@dataclass
class ImportWorker:
    """Runs one import job."""

    repo: ImageRepository
    bucket: ImageBucket
    finalizer: UploadFinalizer
    settings: Settings

    def run(self, job: dict[str, Any]) -> Outcome:
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
            result = self._download(image_id, session, job.get("uri"))
            return self.finalizer.record(image_id, session, result, request_id)
        raise ImportJobError(f"unknown import method {method!r}")

    def _download(self, image_id: str, session: UploadSession, uri: object) -> Digest | Refusal:
        from shared.net.ssrf import UrlPolicy
        from shared.services.web_download import download_to_bucket

        if not isinstance(uri, str):
            return Refusal(RefusalKind.FAILED, "web-download failed: the job has no URL")
        image = self.repo.get(image_id)
        try:
            with self.finalizer.new_digest(image) as stream:
                download_to_bucket(
                    uri,
                    UrlPolicy.from_settings(self.settings),
                    self.bucket,
                    session.key,
                    self.settings.multipart_part_size,
                    on_chunk=stream.feed,
                )
                digest = stream.finish()
        except SizeCapExceededError as exc:
            return Refusal(RefusalKind.SIZE_CAP, str(exc))
        except GlanceError as exc:
            return Refusal(RefusalKind.FAILED, f"web-download failed: {exc.message}")
        return refusal(session, digest) or digest
