"""Upload an image file through Serverless Glance's presigned upload API, resumably, and wait until it is active.

What ``Uploader.upload`` does (the protocol itself is in ``docs/uploads.md``):

1. ``GET /v2/images/{id}/upload``: an open multipart upload of the same size is resumed, not replaced.
2. One sequential pass over the file computes MD5 and SHA-512 *before* any byte is sent: the MD5 is declared when
   the upload is opened (the server refuses bytes that do not match it), and both are compared with what the
   server records once the image is active.
3. ``POST /v2/images/{id}/upload`` opens the session; ``sglance.transfer`` sends the bytes straight to S3, either
   as the one presigned PUT or as parts sent by ``parallel`` threads, and completes a multipart upload.
4. ``GET /v2/images/{id}`` until the image is ``active`` (verified) or ``queued`` again (refused; the reason is in
   ``os_glance_upload_error``).

``Uploader.create`` does ``POST /v2/images`` first; ``sglance.migrate`` uses ``Uploader.copy`` to send another
API's image data without a local file. The errors are the tree of ``sglance.errors``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import urllib3

from sglance.api import ImageApi
from sglance.connection import DEFAULT_ENDPOINT, ApiConnection
from sglance.errors import (
    ChecksumMismatchError,
    UploadConflictError,
    UploadRefusedError,
    WaitTimeoutError,
)
from sglance.hashing import digest_file, hash_file
from sglance.progress import NoProgress, Progress, RichProgress
from sglance.sources import ByteSource, FileSource
from sglance.transfer import PresignedSender, RateLimit, Transfer
from sglance.wire import FileDigest, Method, UploadResult, UploadSession

log = logging.getLogger("sglance")

# Statuses in which the image is still receiving or verifying bytes.
IN_PROGRESS = frozenset({"uploading", "importing", "saving"})


@dataclass(frozen=True)
class _Job:
    """The arguments of one ``upload``/``resume`` call."""

    image_id: str
    path: Path
    parallel: int
    method: Method | None
    wait: bool
    progress: bool | Progress
    stop_after_parts: int | None
    restart: bool = False
    resume_only: bool = False


def _display(progress: bool | Progress) -> Progress:
    if isinstance(progress, bool):
        return RichProgress() if progress else NoProgress()
    return progress


class Uploader:
    """Uploads files to images through the presigned upload API; one connection pool to S3, shared by the threads.

    Args:
        endpoint: the image API, e.g. ``http://127.0.0.1:9292`` (a trailing ``/v2`` is fine), or an
            ``ApiConnection`` (a cloud of clouds.yaml, a token, ...), which ``headers`` and ``token`` then ignore.
        headers: sent with every API call (never to S3), e.g. the dev stack's ``X-Project-Id``.
        token: a Keystone token, sent as ``X-Auth-Token``.
        part_attempts: tries per part (and for the single PUT) before the upload fails.
        retry_backoff_s: first retry delay; doubled per attempt, jittered, at most 30 s.
        poll_interval_s: first delay between status polls while waiting; grows to 2 s.
        wait_timeout_s: how long to wait, after the last byte, for the image to become active.
        pool: a urllib3 pool for the presigned requests (tests inject faults through it); one is made otherwise.
    """

    def __init__(
        self,
        endpoint: str | ApiConnection = DEFAULT_ENDPOINT,
        headers: Mapping[str, str] | None = None,
        *,
        token: str | None = None,
        part_attempts: int = 6,
        retry_backoff_s: float = 0.5,
        poll_interval_s: float = 0.25,
        wait_timeout_s: float = 900.0,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        if isinstance(endpoint, ApiConnection):
            connection = endpoint
        elif token:
            connection = ApiConnection.from_token(endpoint, token, headers)
        else:
            connection = ApiConnection.from_headers(endpoint, headers)
        self.pool = pool or urllib3.PoolManager(num_pools=8, maxsize=32)
        self.api = ImageApi(connection)
        self.part_attempts = part_attempts
        self.retry_backoff_s = retry_backoff_s
        self.poll_interval_s = poll_interval_s
        self.wait_timeout_s = wait_timeout_s

    def __enter__(self) -> Uploader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.pool.clear()
        self.api.connection.close()

    @property
    def sender(self) -> PresignedSender:
        """What sends the bytes (with this uploader's pool and retry settings)."""
        return PresignedSender(self.api, self.pool, self.part_attempts, self.retry_backoff_s)

    # -- public operations ----------------------------------------------------------------------------------

    def status(self, image_id: str) -> UploadSession | None:
        """The open upload of ``image_id`` with the parts S3 holds, or None."""
        return self.api.upload_status(image_id)

    def abort(self, image_id: str) -> None:
        """Cancel the open upload: its bytes are deleted and the image is ``queued`` again."""
        self.api.abort(image_id)

    def create(
        self,
        fields: Mapping[str, Any],
        path: str | Path,
        parallel: int = 4,
        method: Method | None = None,
        wait: bool = True,
        progress: bool | Progress = False,
    ) -> UploadResult:
        """``POST /v2/images`` with ``fields`` (name, formats, visibility, properties, ...), then ``upload``.

        The file is checked before the image is made, so a missing file leaves no empty image behind.
        """
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"{file}: no such file")
        image = self.api.create(fields)
        log.info("created image %s (%s)", image["id"], image.get("name"))
        return self.upload(str(image["id"]), file, parallel, method, wait, progress)

    def upload(
        self,
        image_id: str,
        path: str | Path,
        parallel: int = 4,
        method: Method | None = None,
        wait: bool = True,
        progress: bool | Progress = False,
        *,
        stop_after_parts: int | None = None,
        restart: bool = False,
    ) -> UploadResult:
        """Upload ``path`` as the data of ``image_id``, resuming an open multipart upload of the same size.

        Args:
            parallel: part PUTs in flight at once (multipart).
            method: force ``single`` or ``multipart``; by default the server picks by size.
            wait: wait (at most ``wait_timeout_s``) until the image is active, then compare its size, checksum and
                hash with the file's.
            progress: True for a rich progress bar on stderr, or any ``Progress``.
            stop_after_parts: stop (without completing or aborting) once this many parts were sent in this run,
                as a crashed client would; raises ``UploadInterruptedError``. For tests.
            restart: abort any open upload first instead of resuming it.

        Raises:
            SglanceError: one of the subclasses described in ``sglance.errors``.
        """
        return self._run(_Job(image_id, Path(path), parallel, method, wait, progress, stop_after_parts, restart))

    def resume(
        self,
        image_id: str,
        path: str | Path,
        parallel: int = 4,
        wait: bool = True,
        progress: bool | Progress = False,
        *,
        stop_after_parts: int | None = None,
    ) -> UploadResult:
        """Finish the open multipart upload of ``image_id`` from ``path``: only the missing parts are sent.

        Raises:
            UploadConflictError: the image has no open upload, or one this file cannot continue.
        """
        job = _Job(image_id, Path(path), parallel, None, wait, progress, stop_after_parts, resume_only=True)
        return self._run(job)

    def send_session(
        self,
        image_id: str,
        source: ByteSource,
        session: UploadSession,
        parallel: int,
        progress: Progress,
        *,
        resumed: bool,
        limit: RateLimit | None = None,
    ) -> Transfer:
        """Send what ``session`` misses from ``source`` (all of it unless ``resumed``), then complete it."""
        transfer = Transfer(image_id, source, session, progress, limit=limit)
        self.sender.send(transfer, parallel, resumed=resumed)
        return transfer

    def wait_until_settled(self, image_id: str, timeout: float) -> dict[str, Any]:
        """Poll the image until it is ``active``; raises if it went back to ``queued`` (or elsewhere) or timed out."""
        deadline = time.monotonic() + timeout
        delay = self.poll_interval_s
        while True:
            image = self.api.show(image_id)
            status = str(image.get("status"))
            if status == "active":
                return image
            if status == "queued":
                reason = image.get("os_glance_upload_error") or "the upload was aborted or replaced"
                raise UploadRefusedError(image_id, status, str(reason))
            if status not in IN_PROGRESS:
                raise UploadRefusedError(image_id, status, "the image left the upload")
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(f"image {image_id} is still {status} after {timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    @staticmethod
    def verify(image: Mapping[str, Any], path: Path, digest: FileDigest) -> None:
        """Compare the active image's size, MD5 and multihash with the local file's."""
        algorithm = str(image.get("os_hash_algo") or "sha512")
        local_hash = digest.sha512 if algorithm == "sha512" else hash_file(path, algorithm)
        expected: dict[str, tuple[object, object]] = {
            "size": (image.get("size"), digest.size),
            "checksum": (image.get("checksum"), digest.md5),
            "os_hash_value": (image.get("os_hash_value"), local_hash),
        }
        mismatches = {name: pair for name, pair in expected.items() if pair[0] != pair[1]}
        if mismatches:
            raise ChecksumMismatchError(str(image.get("id")), mismatches)

    # -- steps ----------------------------------------------------------------------------------------------

    def _run(self, job: _Job) -> UploadResult:
        if job.parallel < 1:
            raise ValueError("parallel must be at least 1")
        size = job.path.stat().st_size
        bars = _display(job.progress)
        transfer: Transfer | None = None
        try:
            existing = self._existing(job, size)
            bars.begin("hashing", size)
            digest = digest_file(job.path, bars)
            log.info("hashed %s: %d bytes in %.2f s (md5 %s)", job.path, digest.size, digest.seconds, digest.md5)
            if existing is not None and existing.image_status != "uploading":
                # Every byte is there and being verified (a client stopped while waiting): only wait.
                log.info("image %s is already %s; waiting for it", job.image_id, existing.image_status)
                session = existing
            else:
                session = existing or self.api.open_upload(job.image_id, digest.size, digest.md5, job.method)
                if existing is None:
                    log.info("opened %s upload %s: %d part(s)", session.method, session.upload_id, session.parts_count)
                transfer = Transfer(job.image_id, FileSource(job.path), session, bars, job.stop_after_parts)
                self.sender.send(transfer, job.parallel, resumed=existing is not None)
        finally:
            bars.close()
        result = UploadResult(
            size=digest.size,
            checksum=digest.md5,
            os_hash_value=digest.sha512,
            seconds=transfer.seconds if transfer else 0.0,
            seconds_to_active=None,
            image_id=job.image_id,
            method=session.method,
            status=session.image_status,
            parts_sent=tuple(sorted(transfer.sent)) if transfer else (),
            bytes_sent=transfer.bytes_sent if transfer else 0,
            resumed=existing is not None,
            hash_seconds=digest.seconds,
        )
        if not job.wait:
            return result
        last_byte_at = transfer.last_byte_at if transfer else time.monotonic()
        image = self.wait_until_settled(job.image_id, self.wait_timeout_s)
        to_active = time.monotonic() - last_byte_at
        self.verify(image, job.path, digest)
        return replace(result, seconds_to_active=to_active, status=str(image["status"]))

    def _existing(self, job: _Job, size: int) -> UploadSession | None:
        """The open upload to continue, or None to open a new one."""
        image_id, method = job.image_id, job.method
        session = self.api.upload_status(image_id)
        if session is not None and job.restart:
            log.info("aborting the open %s upload %s", session.method, session.upload_id)
            self.api.abort(image_id)
            session = None
        if session is None or (session.image_status == "uploading" and session.expired):
            if job.resume_only:
                raise UploadConflictError(f"image {image_id} has no open upload to resume")
            if session is None:
                self._check_uploadable(image_id)
            # An expired session is replaced by the server when a new one is opened.
            return None
        if session.size != size:
            raise UploadConflictError(
                f"image {image_id} has an open upload of {session.size} bytes, this file has {size}; "
                "abort it (sglance abort) or restart (--restart)"
            )
        if session.image_status == "uploading" and (
            session.method != "multipart" or (method is not None and method != session.method)
        ):
            raise UploadConflictError(
                f"image {image_id} has an open {session.method} upload that cannot be resumed; "
                "abort it (sglance abort) or restart (--restart)"
            )
        if session.image_status == "uploading":
            missing = session.missing_parts
            log.info(
                "resuming upload %s: %d of %d part(s) missing", session.upload_id, len(missing), session.parts_count
            )
        return session

    def _check_uploadable(self, image_id: str) -> None:
        """Refuse before hashing (minutes for large files) what the server would refuse when opening."""
        image = self.api.show(image_id)
        if image.get("status") != "queued":
            raise UploadConflictError(f"image {image_id} is {image.get('status')}; data is accepted only when queued")
        unset = [name for name in ("disk_format", "container_format") if not image.get(name)]
        if unset:
            raise UploadConflictError(f"image {image_id} needs {' and '.join(unset)} set before data is uploaded")
