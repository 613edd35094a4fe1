"""No job bounded by one Lambda: workers under a small injected deadline hand their work to a job, and the job (the
task runner's code, the same services) finishes it; with no job runner, or past a job's own deadline, the work ends
in a definite state with the reason. In-memory bucket and repositories, real file stores; the same paths against
moto server: tests/integration/test_jobs.py."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from functions.task_runner.__main__ import run as run_job
from shared.bootstrap import Container
from shared.config import Settings
from shared.data.memory import MemoryImageRepository, MemoryTaskRepository
from shared.deadline import JOB, Deadline, DeadlineReachedError, Progress
from shared.domain.context import RequestContext
from shared.domain.image import Image, utcnow
from shared.domain.location import Location, LocationStatus
from shared.domain.status import ImageStatus
from shared.domain.task import TaskStatus
from shared.domain.upload import UPLOAD_ERROR_PROPERTY
from shared.jobrunner import NoJobLauncher
from shared.jobs import CopyJob, FinalizeJob, ImportJob, envelope, read_envelope
from shared.notifications import RecordingNotifier
from shared.services.finalize import Outcome
from shared.services.imports import read_import_request
from shared.services.replication import JobFailedError, RetryLaterError, SyncOutcome
from shared.stores.config import FileStoreConfig
from shared.stores.registry import StoreSet
from shared.upload_bucket.memory import MemoryUploadBucket
from tests.support.fakes import ListQueue, RecordingJobLauncher

MiB = 1024 * 1024
OWNER = RequestContext("req-1", "project-a", "user-a", frozenset({"member", "reader"}))
PAYLOAD = os.urandom(4 * MiB + 3)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    settings: Settings
    overrides: dict[str, object]
    launcher: RecordingJobLauncher
    bucket: MemoryUploadBucket
    imports: ListQueue
    syncs: ListQueue

    @property
    def worker(self) -> Container:
        """The Lambda side: hands work on to the recording launcher."""
        return Container(self.settings, {**self.overrides, "job_launcher": self.launcher})

    @property
    def job(self) -> Container:
        """The task runner's side (as functions/task_runner builds it)."""
        return Container(self.settings, {**self.overrides, "job_launcher": NoJobLauncher("a job never hands on")})

    def uploaded(self, payload: bytes = PAYLOAD) -> tuple[Image, str]:
        c = self.worker
        image = c.images.add(Image.new(owner="project-a", disk_format="raw", container_format="bare"))
        opened = c.uploads.open(c.images.get(image.id), c.uploads.plan(len(payload)))
        assert opened.single is not None
        self.bucket.send(opened.single, payload)
        return image, opened.session.key

    def image(self, image_id: str) -> Image:
        return self.worker.images.get(image_id)


@pytest.fixture
def world(tmp_path: Path) -> World:
    settings = Settings(auth_mode="trusted-headers", worker_bytes_per_second=MiB, multipart_part_size=5 * MiB)
    bucket, imports, syncs = MemoryUploadBucket(), ListQueue(), ListQueue()
    stores = StoreSet(
        "s3", FileStoreConfig(data_dir=str(tmp_path / "p"), weight=10), {"f1": FileStoreConfig(data_dir=str(tmp_path))}
    )
    overrides: dict[str, object] = {
        "image_repository": MemoryImageRepository(),
        "task_repository": MemoryTaskRepository(),
        "image_bucket": bucket,
        "notifier": RecordingNotifier(),
        "import_queue": imports,
        "store_sync_queue": syncs,
        "stores": stores,
    }
    return World(settings, overrides, RecordingJobLauncher(), bucket, imports, syncs)


# -- the deadline object --------------------------------------------------------------------------------------------


def test_deadline__passes_and_says_whether_a_known_size_fits() -> None:
    clock = Clock()
    deadline = Deadline.after(10, clock=clock)
    deadline.check()
    deadline.check_fits(9 * MiB, MiB)
    with pytest.raises(DeadlineReachedError, match="more than the worker's 10 s left"):
        deadline.check_fits(11 * MiB, MiB)
    clock.now += 10
    with pytest.raises(DeadlineReachedError):
        deadline.check()
    Deadline.unbounded().check_fits(2**50, 1)


def test_progress__stops_as_soon_as_the_measured_rate_cannot_make_the_deadline() -> None:
    clock = Clock()
    progress = Progress(Deadline.after(60, clock=clock), total=100 * MiB)
    clock.now += 5
    progress.advance(10 * MiB)  # 2 MiB/s: the other 90 MiB need 45 s of the 55 left
    clock.now += 5
    with pytest.raises(DeadlineReachedError, match="measured 1.0 MiB/s"):
        progress.advance(0)  # 1 MiB/s now: 90 s needed, 50 left


def test_job_envelope__round_trips_every_kind() -> None:
    jobs = [
        FinalizeJob("images/a/b", "req"),
        ImportJob("web-download", "a", "b", task_id="t", uri="http://x/"),
        CopyJob("a", "f1", "batch"),
    ]
    for job in jobs:
        assert read_envelope(json.loads(json.dumps(envelope(job)))) == job


# -- the finaliser --------------------------------------------------------------------------------------------------


def test_finaliser__with_a_size_that_does_not_fit__hands_the_object_to_a_job_that_activates_it(world: World) -> None:
    image, key = world.uploaded()
    # 4 MiB at 1 MiB/s: more than the 2 s left.
    outcome = world.worker.finalizer.handle_object(key, "req-s3", Deadline.after(2))

    assert outcome is Outcome.HANDED_OFF
    assert world.launcher.jobs == [FinalizeJob(key, "req-s3")]
    held = world.image(image.id)
    assert held.status is ImageStatus.IMPORTING and held.upload is not None and held.upload.holder == "job"

    (job,) = world.launcher.jobs
    assert run_job(job, world.job) == "active"
    final = world.image(image.id)
    assert final.status is ImageStatus.ACTIVE and final.os_hash_value == hashlib.sha512(PAYLOAD).hexdigest()
    # A redelivered S3 event changes nothing.
    assert world.worker.finalizer.handle_object(key, None, Deadline.after(2)) is Outcome.DUPLICATE


def test_finaliser__whose_deadline_passes_during_the_read__hands_off_before_recording(world: World) -> None:
    image, key = world.uploaded()
    calls = itertools.count()

    def clock() -> float:
        # The size fits at the start (10 s left for about 4 s of work); the read then takes a minute.
        return 1000.0 if next(calls) < 3 else 1060.0

    outcome = world.worker.finalizer.handle_object(key, None, Deadline.after(10, clock=clock))

    assert outcome is Outcome.HANDED_OFF
    assert world.launcher.jobs == [FinalizeJob(key)]
    held = world.image(image.id)
    assert held.status is ImageStatus.IMPORTING and held.size is None


def test_finaliser__without_a_job_runner__queues_the_image_with_the_reason(world: World) -> None:
    image, key = world.uploaded()
    finalizer = world.job.finalizer  # no runner

    assert finalizer.handle_object(key, None, Deadline.after(2)) is Outcome.REFUSED

    final = world.image(image.id)
    assert final.status is ImageStatus.QUEUED
    reason = final.extra_properties[UPLOAD_ERROR_PROPERTY]
    assert "could not be processed in time" in reason and "a job never hands on" in reason
    assert key not in world.bucket.objects


def test_a_job_past_its_own_deadline__fails_for_good_with_the_reason(world: World) -> None:
    image, key = world.uploaded()

    outcome = world.job.finalizer.handle_object(key, None, Deadline.after(-1, JOB))

    assert outcome is Outcome.REFUSED
    assert "more than the job's -1 s left" in world.image(image.id).extra_properties[UPLOAD_ERROR_PROPERTY]


# -- imports --------------------------------------------------------------------------------------------------------


def test_glance_direct__that_does_not_fit__is_handed_to_a_job_that_finishes_it_and_its_task(world: World) -> None:
    c = world.worker
    image = c.images.add(Image.new(owner="project-a", disk_format="raw", container_format="bare"))
    session = c.staging.start(c.images.get(image.id))
    c.staging.receive(c.images.get(image.id), session, iter([PAYLOAD]))
    request = read_import_request({"method": {"name": "glance-direct"}})
    c.imports.start(OWNER, c.images.get(image.id), request, c.imports.stores(request))
    (job,) = world.imports.take()
    assert isinstance(job, ImportJob)

    assert c.import_worker.run(job, Deadline.after(2)) is Outcome.HANDED_OFF
    assert world.launcher.jobs == [job]
    assert c.tasks.get(job.task_id or "").status is TaskStatus.PROCESSING

    assert run_job(job, world.job) == "active"
    assert world.image(image.id).status is ImageStatus.ACTIVE
    assert world.job.tasks.get(job.task_id or "").status is TaskStatus.SUCCESS


def test_glance_download__that_does_not_fit__is_handed_off_without_the_callers_token_and_fails_saying_why(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = world.worker
    image = c.images.add(Image.new(owner="project-a", disk_format="raw", container_format="bare"))
    remote = {"glance_region": "RegionTwo", "glance_image_id": "36d4b546-64a2-4bb9-bdd0-ba676aa48f2c"}
    request = read_import_request({"method": {"name": "glance-download", **remote}})
    caller = RequestContext("req-gd", "project-a", "user-a", frozenset({"member"}), auth_token="caller-token")
    c.imports.start(caller, c.images.get(image.id), request, c.imports.stores(request))
    (job,) = world.imports.take()
    assert isinstance(job, ImportJob)
    assert job.auth_token == "caller-token"

    def too_slow(*_: object) -> None:
        raise DeadlineReachedError("the download does not fit")

    with monkeypatch.context() as patch:  # the fault: the worker's time runs out
        patch.setattr(type(c.import_worker), "_run", too_slow)
        assert c.import_worker.run(job) is Outcome.HANDED_OFF
    (handed,) = world.launcher.jobs
    assert isinstance(handed, ImportJob)
    assert handed.auth_token is None
    assert "caller-token" not in json.dumps(envelope(handed))

    assert run_job(handed, world.job) == "refused"
    queued = world.image(image.id)
    assert queued.status is ImageStatus.QUEUED
    assert "a job runner is never given the token" in queued.extra_properties[UPLOAD_ERROR_PROPERTY]
    assert world.job.tasks.get(job.task_id or "").status is TaskStatus.FAILURE


# -- store copies ---------------------------------------------------------------------------------------------------


def _active_image(world: World) -> Image:
    c = world.worker
    stores = c.stores
    added = stores.driver("s3").add("img", iter([PAYLOAD]), len(PAYLOAD), "sha512")
    image = Image.new(owner="proj", disk_format="raw", container_format="bare")
    image.status = ImageStatus.ACTIVE
    image.size, image.checksum = len(PAYLOAD), added.checksum
    image.os_hash_algo, image.os_hash_value = "sha512", hashlib.sha512(PAYLOAD).hexdigest()
    image.locations = [Location("s3", added.url)]
    image.plan_copies(["f1"], "b1", must_succeed=False)
    return c.image_repository.add(image)


def test_copy__that_does_not_fit__is_handed_to_a_job_that_makes_it(world: World) -> None:
    image = _active_image(world)
    job = CopyJob(image.id, "f1", "b1")

    assert world.worker.store_sync.run(job, 1, Deadline.after(2)) is SyncOutcome.HANDED_OFF
    assert world.launcher.jobs == [job]
    location = world.image(image.id).location("f1")
    assert location is not None and location.status is LocationStatus.UPLOADING

    assert run_job(job, world.job) == "copied"
    location = world.image(image.id).location("f1")
    assert location is not None and location.status is LocationStatus.ACTIVE


def test_copy__that_does_not_fit_and_has_no_job_runner__is_recorded_failed(world: World) -> None:
    image = _active_image(world)

    with pytest.raises(JobFailedError):
        world.job.store_sync.run(CopyJob(image.id, "f1", "b1"), 1, Deadline.after(2))

    location = world.image(image.id).location("f1")
    assert location is not None and location.status is LocationStatus.FAILED


def test_copy__whose_job_died__is_recorded_failed_by_the_sweeper(world: World) -> None:
    image = _active_image(world)
    job = CopyJob(image.id, "f1", "b1")
    assert world.worker.store_sync.run(job, 1, Deadline.after(2)) is SyncOutcome.HANDED_OFF
    location = world.image(image.id).location("f1")
    assert location is not None and location.metadata["holder"] == "job" and location.deadline is not None
    assert world.worker.image_repository.overdue(location.deadline - timedelta(seconds=1), 10) == []

    # The job never runs (its task was stopped): its lease runs out.
    report = world.worker.sweeper.sweep(location.deadline + timedelta(seconds=1))

    assert "the copy was abandoned: its job made no progress" in report.abandoned[image.id]
    final = world.image(image.id).location("f1")
    assert final is not None and final.status is LocationStatus.FAILED and final.deadline is None
    assert world.image(image.id).status is ImageStatus.ACTIVE
    assert world.worker.image_repository.overdue(location.deadline + timedelta(days=1), 10) == []


def test_copy__waiting_for_its_next_delivery__is_held_by_the_queue_not_swept(world: World, tmp_path: Path) -> None:
    image = _active_image(world)
    (tmp_path / image.id).mkdir()  # the target path is taken: the file store cannot write the copy
    with pytest.raises(RetryLaterError):
        world.worker.store_sync.run(CopyJob(image.id, "f1", "b1"), 1)

    location = world.image(image.id).location("f1")
    assert location is not None and location.status is LocationStatus.UPLOADING and location.deadline is None
    assert world.worker.image_repository.overdue(utcnow() + timedelta(days=30), 10) == []
