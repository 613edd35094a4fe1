"""Replication of image bytes between stores: the jobs the store_sync function runs, and who queues them.

``Replicator`` decides which stores an image goes to (the request's ``stores``, ``X-Image-Meta-Store``, the
operator's ``replicate_to`` policy), records the copies as ``pending`` locations in the same conditional write as
the change that asks for them, and queues one job per copy after that write. ``StoreSync`` runs one job:

- ``copy``: stream the image from a store holding it to the target (constant memory), check that the md5 and the
  secure hash of what was sent equal the image's recorded ones, then record the location ``active``. A failure
  is retried with backoff; on the last attempt the copy is recorded ``failed`` with the reason, the copies of
  the same request are rolled back if it had to succeed everywhere, and the job goes to the DLQ.
- ``delete``: remove the bytes behind one location (a deleted image, a removed copy, a rolled-back copy).

Jobs arrive at least once and in any order: a job whose copy was already made, rolled back or whose image is
gone changes nothing, and bytes written for an image that was deleted meanwhile are deleted again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn

from shared.deadline import JOB, Deadline, DeadlineReachedError, Progress
from shared.domain.errors import InvalidInputError, NotFoundError
from shared.domain.image import utcnow
from shared.domain.location import ERROR_KEY, Location, LocationStatus
from shared.domain.quota import QuotaExceededError
from shared.domain.status import ImageStatus
from shared.jobrunner import JobLauncher, JobLaunchError, NoJobLauncher
from shared.jobs import CopyJob, DeleteJob, StoreSyncJob
from shared.stores.errors import StoreError, StoreNotFoundError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from shared.config import Settings
    from shared.domain.image import Image
    from shared.notifications.events import Events
    from shared.queues import WorkQueue
    from shared.services.tasks import TaskService
    from shared.services.unit_of_work import ImageUnitOfWork
    from shared.stores.registry import StoreSet

_LOG = logging.getLogger(__name__)


class SyncOutcome(StrEnum):
    """What one store_sync job did."""

    COPIED = "copied"
    DELETED = "deleted"
    DUPLICATE = "duplicate"  # the copy exists already (or its delete was done)
    SKIPPED = "skipped"  # the copy was rolled back or superseded before the job ran
    ORPHAN = "orphan"  # the image is gone: whatever the job wrote was deleted again
    HANDED_OFF = "handed_off"  # the copy did not fit the worker's time: a job makes it


class RetryLaterError(Exception):
    """A job failed in a way worth retrying; ``delay`` is the backoff before the next attempt, in seconds."""

    def __init__(self, message: str, delay: int) -> None:
        super().__init__(message)
        self.delay = delay


class JobFailedError(Exception):
    """A job failed for good (recorded on the image); the message goes to the DLQ."""


class CopyVerificationError(StoreError):
    """The bytes sent to the target differ from the image's recorded size or checksums."""


@dataclass
class Replicator:
    """Plans copies on images and queues the store_sync jobs for them."""

    stores: StoreSet
    queue: WorkQueue
    settings: Settings

    def check_stores(self, requested: Iterable[str]) -> list[str]:
        """The requested store ids, validated (InvalidInputError names an unknown one)."""
        ids = list(dict.fromkeys(requested))
        for store_id in ids:
            if store_id not in self.stores:
                raise InvalidInputError(f"Store for identifier {store_id} not found")
        return ids

    def policy_targets(self) -> list[str]:
        """The stores every image is copied to once active (the ``replicate_to`` setting)."""
        if "*" in self.settings.replicate_to:
            return [s for s in self.stores.ids if s != self.stores.primary_id]
        return list(self.settings.replicate_to)

    def plan_on_activation(self, image: Image, requested: Iterable[str], batch: str, must_succeed: bool) -> None:
        """Add pending copies to a just-activated image: the requested stores, then the policy's."""
        primary = self.stores.primary_id
        asked = [s for s in dict.fromkeys(requested) if s != primary and s in self.stores]
        if asked:
            image.plan_copies(asked, batch, must_succeed=must_succeed)
        policy = [s for s in self.policy_targets() if s != primary and image.location(s) is None]
        if policy:
            image.plan_copies(policy, f"{batch}-policy", must_succeed=False)

    def dispatch(self, image: Image, request_id: str | None = None) -> int:
        """Queue a copy job for every copy of ``image`` still pending; returns how many were queued."""
        sent = 0
        for loc in image.locations:
            if loc.status is LocationStatus.PENDING:
                self.queue.send(CopyJob(image.id, loc.store, loc.batch, request_id or None))
                sent += 1
        return sent

    def purge(self, image_id: str, locations: Iterable[Location]) -> None:
        """Queue the deletion of the bytes behind ``locations``."""
        for loc in locations:
            if loc.url:
                self.queue.send(DeleteJob(image_id, loc.store, loc.url))


def new_batch() -> str:
    """An id for one copy request."""
    return uuid.uuid4().hex


@dataclass
class StoreSync:
    """Runs store_sync jobs; one instance per process."""

    uow: ImageUnitOfWork
    stores: StoreSet
    replicator: Replicator
    settings: Settings
    # Task records of copies (copy-image's batch id is its task's id) and the image.prepare of each copy.
    tasks: TaskService
    events: Events
    # Runs the copies that do not fit a worker's deadline (none configured: such a copy fails with the reason).
    jobs: JobLauncher = field(default_factory=lambda: NoJobLauncher("no job runner is configured"))

    def run(self, job: StoreSyncJob, attempt: int = 1, deadline: Deadline | None = None) -> SyncOutcome:
        """Run ``job`` (its ``attempt``-th delivery); a copy that cannot finish before ``deadline`` (its size, or
        the measured rate, says so) is handed to a job, which runs it to the end (or records it ``failed``).

        Raises:
            RetryLaterError: a retryable failure; deliver the job again after ``delay`` seconds.
            JobFailedError: the last attempt failed (recorded on the image); send the job to the DLQ.
            ValueError: a job naming a store this service does not have.
        """
        if job.store not in self.stores:
            raise ValueError(f"store_sync job for an unknown store: {job!r}")
        if isinstance(job, DeleteJob):
            return self._delete(job.image_id, job.store, job.url, attempt)
        try:
            return self._copy(job, attempt, deadline or Deadline.unbounded())
        finally:
            self.tasks.settle_copy_task(self.uow.repo, job.image_id, job.batch, job.request_id)

    # -- copy ---------------------------------------------------------------------------------------

    def _copy(self, job: CopyJob, attempt: int, deadline: Deadline) -> SyncOutcome:
        image_id, store, batch = job.image_id, job.store, job.batch
        lease = _CopyLease(self, image_id, store, batch, deadline.holder, self.settings.work_lease_seconds)
        started = self._update(image_id, lambda image: _start_copy(image, store, batch, lease))
        if isinstance(started, SyncOutcome):
            return started
        image = started
        self.events.image_prepare(image, store, None)
        try:
            url = self._transfer(image, store, deadline, lease)
        except DeadlineReachedError as exc:
            # The copy stays ``uploading``, held by the job, which finds it so and writes it again from the start.
            try:
                self._update(image_id, lambda image: _hold_copy(image, store, batch, JOB, lease.seconds))
                ref = self.jobs.launch(job)
            except JobLaunchError as launch:
                reason = f"the copy could not finish in time ({exc}) and no job could take it over: {launch}"
                self._failed(image_id, store, batch, reason[:255], self.settings.store_sync_max_attempts)
            _LOG.info("copy of %s to %s handed to job %s: %s", image_id, store, ref, exc)
            return SyncOutcome.HANDED_OFF
        except Exception as exc:  # every failure of the transfer is the copy's failure
            reason = _reason(exc)
            _LOG.warning("copy of %s to %s failed (attempt %d): %s", image_id, store, attempt, reason)
            self._failed(image_id, store, batch, reason, attempt)
        try:
            recorded = self._update(image_id, lambda image: _finish_copy(image, store, batch, url))
        except QuotaExceededError as exc:
            # The finished copy would take the owner past image_size_total: it fails like a broken transfer
            # (retried later, when usage may have dropped; given up after the last attempt).
            self._delete_quietly(image_id, store, url)
            self._failed(image_id, store, batch, exc.message, attempt)
        if isinstance(recorded, SyncOutcome):
            # The image was deleted or the copy rolled back while it was written: take the bytes back out.
            self._delete_quietly(image_id, store, url)
            return SyncOutcome.ORPHAN if recorded is SyncOutcome.ORPHAN else SyncOutcome.SKIPPED
        return SyncOutcome.COPIED

    def _transfer(self, image: Image, store: str, deadline: Deadline, lease: _CopyLease) -> str:
        """Stream ``image`` from its best source to ``store``; returns the new location's url."""
        if image.size is None or image.checksum is None or image.os_hash_value is None or image.os_hash_algo is None:
            raise CopyVerificationError(f"image {image.id} has no recorded size or checksums")
        deadline.check_fits(image.size, self.settings.worker_bytes_per_second)
        progress = Progress(deadline, image.size)
        sources = self.stores.by_preference(image.stores)
        if not sources:
            raise StoreNotFoundError(f"image {image.id} has no complete copy to read from")
        source = sources[0]
        location = image.location(source)
        assert location is not None
        read = self.stores.driver(source).get(location.url)
        target = self.stores.driver(store)

        def watched() -> Iterator[bytes]:
            for chunk in read.chunks:
                progress.advance(len(chunk))
                lease.beat()
                yield chunk

        try:
            result = target.add(image.id, watched(), image.size, image.os_hash_algo)
        finally:
            read.close()
        if (result.size, result.checksum, result.multihash) != (image.size, image.checksum, image.os_hash_value):
            self._delete_quietly(image.id, store, result.url)
            raise CopyVerificationError(
                f"copy to {store} does not match the image: {result.size} bytes, md5 {result.checksum}"
            )
        return result.url

    def _failed(self, image_id: str, store: str, batch: str | None, reason: str, attempt: int) -> NoReturn:
        if attempt < self.settings.store_sync_max_attempts:
            self._update(image_id, lambda image: _note_error(image, store, batch, reason))
            raise RetryLaterError(reason, self._backoff(attempt))
        undone: list[Location] = []

        def give_up(image: Image) -> SyncOutcome | None:
            if _copy_of(image, store, batch) is None:
                return SyncOutcome.SKIPPED
            undone[:] = image.copy_failed(store, reason)
            return None

        self._update(image_id, give_up)
        self.replicator.purge(image_id, undone)
        raise JobFailedError(f"copy of {image_id} to {store} failed after {attempt} attempts: {reason}")

    # -- delete -------------------------------------------------------------------------------------

    def _delete(self, image_id: str, store: str, url: str, attempt: int) -> SyncOutcome:
        outcome = SyncOutcome.DELETED
        try:
            self.stores.driver(store).delete(url)
        except StoreNotFoundError:
            outcome = SyncOutcome.DUPLICATE
        except Exception as exc:
            reason = _reason(exc)
            if attempt < self.settings.store_sync_max_attempts:
                raise RetryLaterError(reason, self._backoff(attempt)) from exc
            raise JobFailedError(f"delete of {url} from {store} failed after {attempt} attempts: {reason}") from exc
        # A deleted image's tombstone lists what is still to delete; forget this one.
        self._update(image_id, lambda image: _forget_deleted(image, store, url))
        return outcome

    def _backoff(self, attempt: int) -> int:
        """Seconds before delivery ``attempt`` + 1: doubling from the base, capped."""
        s = self.settings
        return min(s.store_sync_backoff_max_seconds, s.store_sync_backoff_base_seconds << (attempt - 1))

    def _delete_quietly(self, image_id: str, store: str, url: str) -> None:
        """Delete bytes no image refers to; if the store refuses now, a delete job retries it."""
        try:
            self.stores.driver(store).delete(url)
        except StoreNotFoundError:
            pass
        except Exception as exc:
            _LOG.warning("could not delete %s from %s now (%s); queued", url, store, _reason(exc))
            self.replicator.purge(image_id, [Location(store, url)])

    # -- recording ----------------------------------------------------------------------------------

    def _update(self, image_id: str, change: Callable[[Image], SyncOutcome | None]) -> Image | SyncOutcome:
        """Apply ``change`` to a fresh read of the image and write it (the unit of work re-reads after a lost race).

        ``change`` returns an outcome to stop without changing the image, or None when it changed it.
        """

        def apply(image: Image) -> Image | SyncOutcome:
            stop = change(image)
            return image if stop is None else stop

        try:
            return self.uow.update(image_id, apply)
        except NotFoundError:
            return SyncOutcome.ORPHAN


def _copy_of(image: Image, store: str, batch: str | None) -> Location | None:
    """The in-progress copy of ``image`` to ``store`` made by ``batch``."""
    loc = image.location(store)
    if loc is None or loc.batch != batch or not loc.in_progress:
        return None
    return loc


@dataclass
class _CopyLease:
    """The deadline of one copy being written: taken when it starts, renewed every third of it as bytes move."""

    sync: StoreSync
    image_id: str
    store: str
    batch: str | None
    holder: str
    seconds: int
    renewed: datetime | None = None

    def take(self, loc: Location) -> None:
        self.renewed = utcnow()
        loc.hold(self.holder, self.renewed + timedelta(seconds=self.seconds))

    def beat(self) -> None:
        now = utcnow()
        if self.renewed is not None and now - self.renewed < timedelta(seconds=self.seconds / 3):
            return
        self.sync._update(
            self.image_id, lambda image: _hold_copy(image, self.store, self.batch, self.holder, self.seconds)
        )
        self.renewed = now


def _hold_copy(image: Image, store: str, batch: str | None, holder: str, seconds: int) -> SyncOutcome | None:
    loc = _copy_of(image, store, batch)
    if loc is None:
        return SyncOutcome.SKIPPED
    loc.hold(holder, utcnow() + timedelta(seconds=seconds))
    return None


def _start_copy(image: Image, store: str, batch: str | None, lease: _CopyLease) -> SyncOutcome | None:
    if image.is_deleted():
        return SyncOutcome.ORPHAN
    loc = image.location(store)
    if loc is not None and loc.batch == batch and loc.status is LocationStatus.ACTIVE:
        return SyncOutcome.DUPLICATE
    if _copy_of(image, store, batch) is None or image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
        return SyncOutcome.SKIPPED
    assert loc is not None
    # The writer holds the copy until it lands (a redelivery after a crash writes again: add replaces).
    loc.status = LocationStatus.UPLOADING
    lease.take(loc)
    return None


def _finish_copy(image: Image, store: str, batch: str | None, url: str) -> SyncOutcome | None:
    if image.is_deleted():
        return SyncOutcome.ORPHAN
    loc = _copy_of(image, store, batch)
    if loc is None:
        return SyncOutcome.SKIPPED
    image.land_copy(loc, url)
    return None


def _note_error(image: Image, store: str, batch: str | None, reason: str) -> SyncOutcome | None:
    loc = _copy_of(image, store, batch)
    if loc is None:
        return SyncOutcome.SKIPPED
    loc.metadata[ERROR_KEY] = reason[:255]
    loc.release()  # the queue holds the copy until its next delivery (and records it failed after the last)
    return None


def _forget_deleted(image: Image, store: str, url: str) -> SyncOutcome | None:
    loc = next((loc for loc in image.locations if loc.store == store and loc.url == url), None)
    if loc is None or not image.is_deleted():
        return SyncOutcome.DUPLICATE
    image.locations.remove(loc)
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:255]
