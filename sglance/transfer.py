"""Sending the bytes of an open upload session straight to S3: the single PUT, or the parts in parallel threads.

What happens to each request:

* Part PUTs that fail transiently (connection errors, 408/429/5xx, a source read cut off) are retried with jittered
  exponential backoff; a URL about to expire, or a 403 from S3 (an expired signature), is replaced by asking
  ``/upload/parts`` again.
* Each thread streams its part from its ``ByteSource`` in 1 MiB chunks, so memory stays constant.
* Progress is counted as bytes leave, and taken back when an attempt fails.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field
from typing import Literal

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from sglance.api import MAX_PART_URLS, ImageApi
from sglance.errors import TransferError, UploadInterruptedError
from sglance.progress import Progress
from sglance.sources import ByteSource, Cancelled, RetryableSourceError
from sglance.wire import PartRequest, PresignedRequest, UploadSession

log = logging.getLogger("sglance")

_TRANSFER_TIMEOUT = urllib3.Timeout(connect=10.0, read=300.0)


class RateLimit:
    """At most ``bytes_per_s`` across every thread that shares it (each chunk waits for its turn)."""

    def __init__(self, bytes_per_s: float) -> None:
        if bytes_per_s <= 0:
            raise ValueError("the rate must be positive")
        self.bytes_per_s = bytes_per_s
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def take(self, amount: int) -> None:
        """Wait until ``amount`` more bytes fit the rate."""
        with self._lock:
            now = time.monotonic()
            self._next = max(self._next, now) + amount / self.bytes_per_s
            delay = self._next - now
        if delay > 0:
            time.sleep(delay)


@dataclass
class Transfer:
    """One run's transfer of one session, shared by its threads."""

    image_id: str
    source: ByteSource
    session: UploadSession
    progress: Progress
    stop_after: int | None = None
    limit: RateLimit | None = None
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


class PartUrls:
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
    status: int  # 0: no HTTP answer (connection error, or the source failed)
    detail: str


class PresignedSender:
    """Sends a session's bytes with one urllib3 pool (never the API's credentials: S3 does not want them).

    Args:
        api: asks for fresh part URLs and completes multipart uploads.
        pool: the connections to S3 (tests inject faults through it).
        part_attempts: tries per part (and for the single PUT) before the upload fails.
        retry_backoff_s: first retry delay; doubled per attempt, jittered, at most 30 s.
    """

    def __init__(self, api: ImageApi, pool: urllib3.PoolManager, part_attempts: int, retry_backoff_s: float) -> None:
        self.api = api
        self.pool = pool
        self.part_attempts = part_attempts
        self.retry_backoff_s = retry_backoff_s

    def send(self, transfer: Transfer, parallel: int, *, resumed: bool) -> None:
        """Send what the session still misses (everything unless ``resumed``), then complete a multipart upload.

        Raises:
            TransferError: S3 refused, or kept failing; the session stays open.
            UploadInterruptedError: ``stop_after`` parts were sent (a simulated crash).
        """
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

    def _send_single(self, transfer: Transfer) -> None:
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

    def _send_parts(self, transfer: Transfer, numbers: Sequence[int], parallel: int) -> None:
        urls = PartUrls(self.api, transfer.image_id, numbers, transfer.session.parts)
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

    def _send_part(self, transfer: Transfer, urls: PartUrls, number: int) -> None:
        if transfer.stop.is_set():
            return
        length = transfer.session.part_length(number)
        offset = transfer.session.part_offset(number)
        part = urls.get(number)
        refreshes = 0
        for attempt in range(self.part_attempts):
            try:
                outcome = self._put(transfer, part.request, offset, length)
            except Cancelled:
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

    def _backoff(self, transfer: Transfer, attempt: int, outcome: _Attempt, number: int = 1) -> None:
        delay = min(30.0, self.retry_backoff_s * 2**attempt) * random.uniform(0.5, 1.0)
        log.warning("part %d: %s %s; retrying in %.1f s", number, outcome.status or "error", outcome.detail, delay)
        transfer.stop.wait(delay)

    def _put(self, transfer: Transfer, request: PresignedRequest, offset: int, length: int) -> _Attempt:
        """Send ``length`` bytes of the source from ``offset`` as ``request``; progress is taken back on failure."""
        sent = [0]

        def body() -> Iterator[bytes]:
            for chunk in transfer.source.chunks(offset, length, transfer.stop):
                if transfer.limit is not None:
                    transfer.limit.take(len(chunk))
                sent[0] += len(chunk)
                transfer.progress.advance(len(chunk))
                yield chunk

        try:
            response = self.pool.request(
                request.method,
                request.url,
                body=body(),
                headers=dict(request.headers),
                timeout=_TRANSFER_TIMEOUT,
                retries=False,
                redirect=False,
            )
        except Cancelled:
            transfer.progress.advance(-sent[0])
            raise
        except (Urllib3Error, RetryableSourceError) as exc:
            transfer.progress.advance(-sent[0])
            return _Attempt(0, str(exc))
        except BaseException:
            transfer.progress.advance(-sent[0])
            raise
        if response.status >= 300:
            transfer.progress.advance(-sent[0])
            return _Attempt(response.status, _s3_error(response.data))
        return _Attempt(response.status, "")


def _s3_error(body: bytes) -> str:
    """The Code and Message of an S3 XML error, or the start of the body."""
    text = body.decode("utf-8", "replace").strip()
    found = [text.split(f"<{tag}>", 1)[1].split(f"</{tag}>", 1)[0] for tag in ("Code", "Message") if f"<{tag}>" in text]
    return ": ".join(found) if found else text[:200]
