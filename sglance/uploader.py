"""Upload an image file through Serverless Glance's presigned upload API, resumably, and wait until it is active.

What ``Uploader.upload`` does (the protocol itself is in ``docs/uploads.md``):

1. ``GET /v2/images/{id}/upload``: an open multipart upload of the same size is resumed, not replaced.
2. One sequential pass over the file computes MD5 and SHA-512 *before* any byte is sent: the MD5 is declared when
   the upload is opened (the server refuses bytes that do not match it), and both are compared with what the
   server records once the image is active.
3. ``POST /v2/images/{id}/upload`` opens the session; the bytes go straight to S3, either as the one presigned PUT
   or as parts sent by ``parallel`` threads. Each thread streams its part from the file in 1 MiB chunks (seek, read,
   send), so memory stays constant whatever the file size.
4. Part PUTs that fail transiently (connection errors, 408/429/5xx) are retried with jittered exponential backoff;
   a URL about to expire, or a 403 from S3 (an expired signature), is replaced by asking ``/upload/parts`` again.
5. ``POST /v2/images/{id}/upload/complete`` (multipart only), then ``GET /v2/images/{id}`` until the image is
   ``active`` (verified) or ``queued`` again (refused; the reason is in ``os_glance_upload_error``).

Errors form one tree::

    SglanceError
    ├── ApiError                 the image API answered with an error status
    ├── TransferError            S3 refused a presigned request, or it kept failing after the retries
    ├── UploadConflictError      another upload is open that cannot be resumed (abort it, or restart)
    ├── UploadInterruptedError   stopped after ``stop_after_parts`` parts; the session stays open to resume
    ├── UploadRefusedError       the server verified the bytes and sent the image back to queued
    ├── WaitTimeoutError         the image did not become active in time
    └── ChecksumMismatchError    the active image's checksum or hash differs from the local file's
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, quote, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

log = logging.getLogger("sglance")

MiB = 1024 * 1024
DEFAULT_ENDPOINT = "http://127.0.0.1:9292"
# Part URLs the API hands out per call.
MAX_PART_URLS = 100
# Bytes read from the file and sent per write: the whole memory a transfer thread needs.
CHUNK_SIZE = MiB
# A presigned URL this close to its expiry is replaced before it is used.
URL_EXPIRY_MARGIN_S = 30.0
# Statuses in which the image is still receiving or verifying bytes.
_IN_PROGRESS = frozenset({"uploading", "importing", "saving"})
_API_TIMEOUT = urllib3.Timeout(connect=10.0, read=60.0)
_TRANSFER_TIMEOUT = urllib3.Timeout(connect=10.0, read=300.0)

Method = Literal["single", "multipart"]


# -- errors ---------------------------------------------------------------------------------------------------


class SglanceError(Exception):
    """Base of every error this client raises."""


class ApiError(SglanceError):
    """The image API answered ``status`` to ``method path``."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path}: " + (f"{status} {message}" if status else message))
        self.method = method
        self.path = path
        self.status = status
        self.message = message


class TransferError(SglanceError):
    """A presigned request to S3 was refused, or kept failing after every retry."""


class UploadConflictError(SglanceError):
    """The image has an open upload this client cannot resume (another size or method, or a single PUT)."""


class UploadInterruptedError(SglanceError):
    """The transfer stopped on purpose (``stop_after_parts``); the session stays open and can be resumed."""

    def __init__(self, image_id: str, parts_sent: Sequence[int]) -> None:
        super().__init__(f"upload of image {image_id} stopped after {len(parts_sent)} part(s); it can be resumed")
        self.image_id = image_id
        self.parts_sent = tuple(parts_sent)


class UploadRefusedError(SglanceError):
    """The server did not accept the bytes: the image is ``queued`` again (or gone), with ``reason``."""

    def __init__(self, image_id: str, status: str, reason: str) -> None:
        super().__init__(f"image {image_id} is {status}: {reason}")
        self.image_id = image_id
        self.status = status
        self.reason = reason


class WaitTimeoutError(SglanceError):
    """The image did not leave ``uploading``/``importing`` within the timeout."""


class ChecksumMismatchError(SglanceError):
    """The active image's size, checksum or hash is not the local file's."""

    def __init__(self, image_id: str, mismatches: Mapping[str, tuple[object, object]]) -> None:
        detail = "; ".join(f"{name}: server {theirs!r}, local {ours!r}" for name, (theirs, ours) in mismatches.items())
        super().__init__(f"image {image_id} does not hold this file: {detail}")
        self.image_id = image_id
        self.mismatches = dict(mismatches)


# -- wire shapes ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PresignedRequest:
    """One HTTP request to send exactly as given: method, URL and every header (they are signed)."""

    method: str
    url: str
    headers: Mapping[str, str]

    @property
    def expires_at(self) -> float | None:
        """Epoch seconds after which S3 refuses the URL (SigV4 or SigV2 query), or None when unknown."""
        query = parse_qs(urlsplit(self.url).query)
        try:
            if "X-Amz-Date" in query and "X-Amz-Expires" in query:
                signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                return signed.timestamp() + int(query["X-Amz-Expires"][0])
            if "Expires" in query:
                return float(query["Expires"][0])
        except ValueError:
            return None
        return None

    def expiring(self, margin_s: float = URL_EXPIRY_MARGIN_S) -> bool:
        """Whether the URL expires within ``margin_s`` seconds."""
        expires = self.expires_at
        return expires is not None and time.time() + margin_s >= expires


@dataclass(frozen=True)
class PartRequest:
    """The presigned PUT of one part."""

    number: int
    size: int
    request: PresignedRequest


@dataclass(frozen=True)
class UploadedPart:
    """A part S3 already holds."""

    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class UploadSession:
    """An open upload as ``POST``/``GET /v2/images/{id}/upload`` describe it."""

    upload_id: str
    image_id: str
    method: str
    size: int
    part_size: int | None
    parts_count: int
    expires_at: str
    image_status: str
    request: PresignedRequest | None = None
    parts: tuple[PartRequest, ...] = ()
    uploaded_parts: tuple[UploadedPart, ...] = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UploadSession:
        """Parse the API's JSON (either response)."""
        request = data.get("request")
        return cls(
            upload_id=str(data["upload_id"]),
            image_id=str(data["image_id"]),
            method=str(data["method"]),
            size=int(data["size"]),
            part_size=None if data.get("part_size") is None else int(data["part_size"]),
            parts_count=int(data["parts_count"]),
            expires_at=str(data["expires_at"]),
            image_status=str(data["image_status"]),
            request=_presigned(request) if isinstance(request, dict) else None,
            parts=tuple(_part(p) for p in data.get("parts") or ()),
            uploaded_parts=tuple(
                UploadedPart(int(p["part_number"]), int(p["size"]), str(p["etag"]))
                for p in data.get("uploaded_parts") or ()
            ),
        )

    def part_length(self, number: int) -> int:
        """Size of part ``number`` (1-based)."""
        if self.part_size is None:
            return self.size
        if number < self.parts_count:
            return self.part_size
        return self.size - self.part_size * (self.parts_count - 1)

    def part_offset(self, number: int) -> int:
        """Where part ``number`` starts in the file."""
        return 0 if self.part_size is None else (number - 1) * self.part_size

    @property
    def missing_parts(self) -> list[int]:
        """Parts S3 does not hold (or holds with the wrong size), computed from every uploaded part."""
        done = {p.number for p in self.uploaded_parts if p.size == self.part_length(p.number)}
        return [n for n in range(1, self.parts_count + 1) if n not in done]

    @property
    def expired(self) -> bool:
        """Whether the session outlived its time (the server replaces it on the next open)."""
        try:
            expires = datetime.fromisoformat(self.expires_at)
        except ValueError:
            return False
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return datetime.now(UTC) >= expires


def _presigned(data: Mapping[str, Any]) -> PresignedRequest:
    headers = data.get("headers") or {}
    return PresignedRequest(str(data["method"]), str(data["url"]), {str(k): str(v) for k, v in headers.items()})


def _part(data: Mapping[str, Any]) -> PartRequest:
    return PartRequest(int(data["part_number"]), int(data["size"]), _presigned(data))


@dataclass(frozen=True)
class FileDigest:
    """Size and digests of a local file."""

    size: int
    md5: str
    sha512: str
    seconds: float


@dataclass(frozen=True)
class UploadResult:
    """What one call of ``Uploader.upload`` did.

    ``checksum`` and ``os_hash_value`` are the local file's MD5 and SHA-512 (equal to the image's when ``wait``);
    ``seconds`` is the transfer time of this run (first byte to last byte), ``seconds_to_active`` the time from
    the last byte to the image being seen active (None without ``wait``).
    """

    size: int
    checksum: str
    os_hash_value: str
    seconds: float
    seconds_to_active: float | None
    image_id: str = ""
    method: str = ""
    status: str = ""
    parts_sent: tuple[int, ...] = ()
    bytes_sent: int = 0
    resumed: bool = False
    hash_seconds: float = 0.0

    @property
    def mib_per_s(self) -> float:
        """Throughput of this run's transfer."""
        return self.bytes_sent / MiB / self.seconds if self.seconds > 0 else 0.0


# -- progress -------------------------------------------------------------------------------------------------


class Progress(Protocol):
    """Where byte counts go while hashing and sending."""

    def begin(self, label: str, total: int, completed: int = 0) -> None:
        """Start a new bar."""

    def advance(self, amount: int) -> None:
        """Add (or, after a failed attempt, take back) bytes; called from transfer threads."""

    def close(self) -> None:
        """Remove the display."""


class NoProgress:
    """Shows nothing."""

    def begin(self, label: str, total: int, completed: int = 0) -> None:
        """Show nothing."""

    def advance(self, amount: int) -> None:
        """Show nothing."""

    def close(self) -> None:
        """Show nothing."""


class RichProgress:
    """A rich progress bar on stderr: bytes, rate and time left."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TaskID,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as Bars

        self._bars = Bars(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task: TaskID | None = None
        self._bars.start()

    def begin(self, label: str, total: int, completed: int = 0) -> None:
        """Start a new bar below the previous one."""
        self._task = self._bars.add_task(label, total=total, completed=completed)

    def advance(self, amount: int) -> None:
        """Move the current bar (thread-safe in rich)."""
        if self._task is not None:
            self._bars.advance(self._task, amount)

    def close(self) -> None:
        """Stop refreshing."""
        self._bars.stop()


# -- hashing --------------------------------------------------------------------------------------------------


def digest_file(path: Path, progress: Progress | None = None, chunk_size: int = 8 * MiB) -> FileDigest:
    """MD5 and SHA-512 of ``path`` in one pass (the two digests run on two cores: hashlib releases the GIL)."""
    started = time.monotonic()
    md5, sha512 = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    size = 0
    with path.open("rb") as file, ThreadPoolExecutor(1, thread_name_prefix="sglance-md5") as pool:
        while chunk := file.read(chunk_size):
            pending = pool.submit(md5.update, chunk)
            sha512.update(chunk)
            pending.result()
            size += len(chunk)
            if progress is not None:
                progress.advance(len(chunk))
    return FileDigest(size, md5.hexdigest(), sha512.hexdigest(), time.monotonic() - started)


def hash_file(path: Path, algorithm: str, chunk_size: int = 8 * MiB) -> str:
    """Hex digest of ``path`` with any hashlib algorithm (for a server whose ``os_hash_algo`` is not SHA-512)."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as file:
        while chunk := file.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


# -- the image API --------------------------------------------------------------------------------------------


class ImageApi:
    """The few calls of the image API an upload needs, as JSON over one connection pool."""

    def __init__(self, endpoint: str, headers: Mapping[str, str], pool: urllib3.PoolManager, attempts: int = 3):
        endpoint = endpoint.rstrip("/")
        # A catalog's versioned endpoint works too: the paths below start with /v2.
        self.endpoint = endpoint.removesuffix("/v2")
        self.headers = {"Accept": "application/json", **headers}
        self.pool = pool
        self.attempts = attempts

    def call(
        self, method: str, path: str, body: Any = None, *, idempotent: bool = True, missing_ok: bool = False
    ) -> Any:
        """Send one request; returns the decoded JSON (None for an empty body, or for 404 when ``missing_ok``).

        Idempotent calls are retried on connection errors and 502/503/504.
        """
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        attempts = self.attempts if idempotent else 1
        for attempt in range(attempts):
            try:
                response = self.pool.request(
                    method,
                    self.endpoint + path,
                    body=payload,
                    headers=headers,
                    timeout=_API_TIMEOUT,
                    retries=False,
                    redirect=False,
                )
            except Urllib3Error as exc:
                if attempt + 1 >= attempts:
                    raise ApiError(method, path, 0, f"cannot reach the image API: {exc}") from exc
                time.sleep(0.5 * 2**attempt)
                continue
            if response.status in (502, 503, 504) and attempt + 1 < attempts:
                time.sleep(0.5 * 2**attempt)
                continue
            if missing_ok and response.status == 404:
                return None
            if response.status >= 400:
                raise ApiError(method, path, response.status, _error_message(response.data))
            return json.loads(response.data) if response.data else None
        raise AssertionError("unreachable")

    def show(self, image_id: str) -> dict[str, Any]:
        """``GET /v2/images/{id}``."""
        image: dict[str, Any] = self.call("GET", _image_path(image_id))
        return image

    def open_upload(self, image_id: str, size: int, checksum: str | None, method: Method | None) -> UploadSession:
        """``POST /v2/images/{id}/upload``."""
        body: dict[str, Any] = {"size": size}
        if checksum is not None:
            body["checksum"] = checksum
        if method is not None:
            body["method"] = method
        # Not retried: a second open would find the image uploading (409).
        return UploadSession.from_json(self.call("POST", _image_path(image_id, "/upload"), body, idempotent=False))

    def upload_status(self, image_id: str) -> UploadSession | None:
        """``GET /v2/images/{id}/upload``; None when the image has no open upload."""
        data = self.call("GET", _image_path(image_id, "/upload"), missing_ok=True)
        return None if data is None else UploadSession.from_json(data)

    def part_urls(self, image_id: str, numbers: Sequence[int]) -> list[PartRequest]:
        """``POST /v2/images/{id}/upload/parts`` for at most ``MAX_PART_URLS`` parts."""
        data = self.call("POST", _image_path(image_id, "/upload/parts"), {"part_numbers": list(numbers)})
        return [_part(p) for p in data["parts"]]

    def complete(self, image_id: str) -> None:
        """``POST /v2/images/{id}/upload/complete``; a repeat after a lost answer (409, image moving on) is fine."""
        for attempt in range(2):
            try:
                self.call("POST", _image_path(image_id, "/upload/complete"), {}, idempotent=False)
                return
            except ApiError as exc:
                if exc.status == 409 and self.show(image_id)["status"] in ("importing", "active"):
                    return
                # A broken connection leaves it unknown whether the parts were assembled; asking again tells.
                if exc.status != 0 or attempt:
                    raise

    def abort(self, image_id: str) -> None:
        """``DELETE /v2/images/{id}/upload``."""
        self.call("DELETE", _image_path(image_id, "/upload"))


def _image_path(image_id: str, suffix: str = "") -> str:
    return f"/v2/images/{quote(image_id, safe='')}{suffix}"


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:500]
    message = data.get("message") if isinstance(data, dict) else None
    if isinstance(message, str):
        return message
    return json.dumps(data)[:500]


# -- the transfer ---------------------------------------------------------------------------------------------


class _Cancelled(Exception):
    """The transfer was told to stop while a body was being sent."""


class _PartUrls:
    """Presigned part URLs at hand; fetches up to ``MAX_PART_URLS`` at a time, and fresh ones before they expire."""

    def __init__(self, api: ImageApi, image_id: str, order: Sequence[int], initial: Iterable[PartRequest]):
        self._api = api
        self._image_id = image_id
        self._order = list(order)
        self._position = {n: i for i, n in enumerate(self._order)}
        self._urls = {p.number: p for p in initial}
        self._done: set[int] = set()
        self._lock = threading.Lock()

    def get(self, number: int, stale: PartRequest | None = None) -> PartRequest:
        """A usable URL for part ``number``; ``stale`` is one S3 just refused (403)."""
        with self._lock:
            cached = self._urls.get(number)
            if cached is not None and cached is not stale and not cached.request.expiring():
                return cached
            # Ask for this part and the next ones still to send: URLs handed out together expire together.
            start = self._position.get(number, 0)
            wanted = [number] + [n for n in self._order[start + 1 :] if n not in self._done][: MAX_PART_URLS - 1]
            for part in self._api.part_urls(self._image_id, wanted):
                self._urls[part.number] = part
            return self._urls[number]

    def done(self, number: int) -> None:
        """Part ``number`` is in S3: its URL is not needed again."""
        with self._lock:
            self._done.add(number)
            self._urls.pop(number, None)


@dataclass
class _Transfer:
    """Shared state of one run's transfer threads."""

    image_id: str
    path: Path
    session: UploadSession
    progress: Progress
    stop_after: int | None
    stop: threading.Event = field(default_factory=threading.Event)
    stopped_on_purpose: bool = False
    sent: list[int] = field(default_factory=list)
    bytes_sent: int = 0
    seconds: float = 0.0
    last_byte_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, number: int, size: int) -> None:
        """Part ``number`` arrived; stop when ``stop_after`` parts have (a simulated crash)."""
        with self.lock:
            self.sent.append(number)
            self.bytes_sent += size
            if self.stop_after is not None and len(self.sent) >= self.stop_after:
                self.stopped_on_purpose = True
                self.stop.set()


_Verdict = Literal["ok", "retry", "refresh", "fail"]


def _verdict(status: int) -> _Verdict:
    if 200 <= status < 300:
        return "ok"
    if status == 0 or status >= 500 or status in (408, 429):
        return "retry"
    if status == 403:
        return "refresh"
    return "fail"


@dataclass(frozen=True)
class _Attempt:
    status: int  # 0: no HTTP answer (connection error)
    detail: str


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


class Uploader:
    """Uploads files to images through the presigned upload API; one connection pool, shared by the threads.

    Args:
        endpoint: the image API, e.g. ``http://127.0.0.1:9292`` (a trailing ``/v2`` is fine).
        headers: sent with every API call (never to S3), e.g. the dev stack's ``X-Project-Id``.
        token: a Keystone token, sent as ``X-Auth-Token``.
        part_attempts: tries per part (and for the single PUT) before the upload fails.
        retry_backoff_s: first retry delay; doubled per attempt, jittered, at most 30 s.
        poll_interval_s: first delay between status polls while waiting; grows to 2 s.
        wait_timeout_s: how long to wait, after the last byte, for the image to become active.
        pool: a urllib3 pool to use (tests inject faults through it); one is made otherwise.
    """

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        headers: Mapping[str, str] | None = None,
        *,
        token: str | None = None,
        part_attempts: int = 6,
        retry_backoff_s: float = 0.5,
        poll_interval_s: float = 0.25,
        wait_timeout_s: float = 900.0,
        pool: urllib3.PoolManager | None = None,
    ) -> None:
        merged = dict(headers or {})
        if token:
            merged["X-Auth-Token"] = token
        self._pool = pool or urllib3.PoolManager(num_pools=8, maxsize=32)
        self.api = ImageApi(endpoint, merged, self._pool)
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
        self._pool.clear()

    # -- public operations ----------------------------------------------------------------------------------

    def status(self, image_id: str) -> UploadSession | None:
        """The open upload of ``image_id`` with the parts S3 holds, or None."""
        return self.api.upload_status(image_id)

    def abort(self, image_id: str) -> None:
        """Cancel the open upload: its bytes are deleted and the image is ``queued`` again."""
        self.api.abort(image_id)

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
            SglanceError: one of the subclasses described in this module's docstring.
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
            if status not in _IN_PROGRESS:
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
        progress = job.progress
        bars: Progress = (RichProgress() if progress else NoProgress()) if isinstance(progress, bool) else progress
        transfer: _Transfer | None = None
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
                transfer = _Transfer(job.image_id, job.path, session, bars, job.stop_after_parts)
                self._send(transfer, job.parallel, resumed=existing is not None)
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

    def _send(self, transfer: _Transfer, parallel: int, *, resumed: bool) -> None:
        session = transfer.session
        started = time.monotonic()
        try:
            if transfer.stop_after == 0:
                transfer.stopped_on_purpose = True
            elif session.method == "single":
                transfer.progress.begin("uploading", session.size)
                self._send_single(transfer)
            else:
                missing = session.missing_parts if resumed else list(range(1, session.parts_count + 1))
                already = session.size - sum(session.part_length(n) for n in missing)
                transfer.progress.begin("uploading", session.size, already)
                self._send_parts(transfer, missing, parallel)
        finally:
            transfer.last_byte_at = time.monotonic()
            transfer.seconds = transfer.last_byte_at - started
        if transfer.stopped_on_purpose:
            raise UploadInterruptedError(transfer.image_id, sorted(transfer.sent))
        if session.method == "multipart":
            self.api.complete(transfer.image_id)

    def _send_single(self, transfer: _Transfer) -> None:
        request = transfer.session.request
        if request is None:
            raise TransferError("the server opened a single upload without a request to send")
        for attempt in range(self.part_attempts):
            outcome = self._put(transfer, request, 0, transfer.session.size)
            verdict = _verdict(outcome.status)
            # If-None-Match: * refuses a second write: an earlier attempt whose answer was lost did arrive.
            if verdict == "ok" or (outcome.status == 412 and attempt > 0):
                transfer.record(1, transfer.session.size)
                return
            if verdict == "refresh":
                raise TransferError(
                    f"S3 refused the upload URL ({outcome.detail}); it may have expired: start again with --restart"
                )
            if verdict == "fail" or attempt + 1 >= self.part_attempts:
                raise TransferError(f"single PUT failed: {outcome.status} {outcome.detail}")
            self._backoff(transfer, attempt, outcome)
        raise AssertionError("unreachable")

    def _send_parts(self, transfer: _Transfer, numbers: Sequence[int], parallel: int) -> None:
        urls = _PartUrls(self.api, transfer.image_id, numbers, transfer.session.parts)
        with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="sglance-part") as pool:
            futures: list[Future[None]] = [pool.submit(self._send_part, transfer, urls, n) for n in numbers]
            try:
                done, _ = wait_for_futures(futures, return_when=FIRST_EXCEPTION)
            except BaseException:
                # Ctrl-C: the running threads notice at their next chunk; the session stays open to resume.
                transfer.stop.set()
                raise
            failed = next((f for f in futures if f in done and f.exception() is not None), None)
            if failed is not None:
                transfer.stop.set()
                for future in futures:
                    future.cancel()
                error = failed.exception()
                assert error is not None
                raise error

    def _send_part(self, transfer: _Transfer, urls: _PartUrls, number: int) -> None:
        if transfer.stop.is_set():
            return
        length = transfer.session.part_length(number)
        offset = transfer.session.part_offset(number)
        part = urls.get(number)
        refreshes = 0
        for attempt in range(self.part_attempts):
            try:
                outcome = self._put(transfer, part.request, offset, length)
            except _Cancelled:
                return
            verdict = _verdict(outcome.status)
            if verdict == "ok":
                urls.done(number)
                transfer.record(number, length)
                return
            if verdict == "refresh" and refreshes < 2:
                # An expired signature (or a clock too far off): new URLs, no backoff.
                refreshes += 1
                log.info("part %d: S3 answered 403; asking for a fresh URL", number)
                part = urls.get(number, stale=part)
                continue
            if verdict in ("fail", "refresh") or attempt + 1 >= self.part_attempts:
                raise TransferError(f"part {number} failed: {outcome.status} {outcome.detail}")
            self._backoff(transfer, attempt, outcome, number)
            if transfer.stop.is_set():
                return
            part = urls.get(number)
        raise TransferError(f"part {number} failed after {self.part_attempts} attempts")

    def _backoff(self, transfer: _Transfer, attempt: int, outcome: _Attempt, number: int = 1) -> None:
        delay = min(30.0, self.retry_backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
        log.warning("part %d: %s %s; retrying in %.1f s", number, outcome.status or "error", outcome.detail, delay)
        transfer.stop.wait(delay)

    def _put(self, transfer: _Transfer, request: PresignedRequest, offset: int, length: int) -> _Attempt:
        """Send ``length`` bytes of the file from ``offset`` as ``request``; progress is taken back on failure."""
        sent = [0]

        def body() -> Iterator[bytes]:
            with transfer.path.open("rb") as file:
                file.seek(offset)
                remaining = length
                while remaining:
                    if transfer.stop.is_set():
                        raise _Cancelled
                    chunk = file.read(min(CHUNK_SIZE, remaining))
                    if not chunk:
                        raise TransferError(f"{transfer.path} is shorter than when it was hashed")
                    remaining -= len(chunk)
                    sent[0] += len(chunk)
                    transfer.progress.advance(len(chunk))
                    yield chunk

        try:
            response = self._pool.request(
                request.method,
                request.url,
                body=body(),
                headers=dict(request.headers),
                timeout=_TRANSFER_TIMEOUT,
                retries=False,
                redirect=False,
            )
        except _Cancelled:
            transfer.progress.advance(-sent[0])
            raise
        except Urllib3Error as exc:
            transfer.progress.advance(-sent[0])
            return _Attempt(0, str(exc))
        if response.status >= 300:
            transfer.progress.advance(-sent[0])
            return _Attempt(response.status, _s3_error(response.data))
        return _Attempt(response.status, "")


def _s3_error(body: bytes) -> str:
    """The Code and Message of an S3 XML error, or the start of the body."""
    text = body.decode("utf-8", "replace")
    found = [text.split(f"<{tag}>", 1)[1].split(f"</{tag}>", 1)[0] for tag in ("Code", "Message") if f"<{tag}>" in text]
    return ": ".join(found) if found else text.strip()[:200]
