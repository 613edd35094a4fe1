"""Owners and deadlines of in-flight images: leases, the sweeper, the owner's abort and missing objects, through the
services on the in-memory bucket and repositories (the sweep index on DynamoDB: tests/integration/test_jobs.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from shared.config import Settings
from shared.domain.context import RequestContext
from shared.domain.errors import NotFoundError, UploadSupersededError
from shared.domain.image import Image, utcnow
from shared.domain.location import FAILED_IMPORT_PROPERTY
from shared.domain.status import ImageStatus
from shared.domain.task import TaskStatus
from shared.domain.upload import UPLOAD_ERROR_PROPERTY
from shared.jobs import ImportJob
from shared.services.finalize import Outcome
from shared.services.imports import read_import_request
from tests.support.memory_world import MemoryWorld

MiB = 1024 * 1024
OWNER = RequestContext("req-1", "project-a", "user-a", frozenset({"member", "reader"}))


class World(MemoryWorld):
    def later(self, seconds: int) -> datetime:
        return utcnow() + timedelta(seconds=seconds)

    def staged(self, payload: bytes) -> Image:
        image = self.new_image()
        staging = self.container.staging
        session = staging.start(self.image(image.id))
        staging.receive(self.image(image.id), session, iter([payload]))
        return self.image(image.id)

    def glance_direct(self, image: Image) -> ImportJob:
        imports = self.container.imports
        request = read_import_request({"method": {"name": "glance-direct"}})
        imports.start(OWNER, self.image(image.id), request, imports.stores(request))
        (job,) = self.imports.take()
        assert isinstance(job, ImportJob)
        return job


@pytest.fixture
def world() -> World:
    return World.build(Settings(auth_mode="trusted-headers", stream_lease_seconds=60, work_lease_seconds=600))


def _stalled(first: bytes) -> Iterator[bytes]:
    yield first
    raise KeyboardInterrupt  # stands in for the API process dying mid-body (nothing below it catches this)


def test_put_file_of_a_killed_api_process__is_queued_with_the_reason_once_its_lease_runs_out(world: World) -> None:
    image = world.new_image()
    streamed = world.container.streamed_uploads
    session = streamed.start(world.image(image.id), 4 * MiB)
    held = world.image(image.id)
    assert held.upload is not None and held.upload.holder == "api"
    assert world.repo.overdue(world.later(59), 10) == []

    assert world.container.sweeper.sweep(world.later(30)).abandoned == {}
    report = world.container.sweeper.sweep(world.later(61))

    assert list(report.abandoned) == [image.id]
    final = world.image(image.id)
    assert final.status is ImageStatus.QUEUED and final.upload is None
    assert "its api made no progress" in final.extra_properties[UPLOAD_ERROR_PROPERTY]
    assert session.key not in world.bucket.objects
    assert world.repo.overdue(world.later(10_000), 10) == []
    # The owner can upload again at once.
    streamed.start(world.image(image.id), 4)


def test_a_writer_making_progress__renews_its_lease_and_is_not_swept(world: World) -> None:
    image = world.new_image()
    session = world.container.streamed_uploads.start(world.image(image.id), 4)
    heartbeat = world.container.upload_sessions.heartbeat(image.id, session)
    heartbeat.clock = lambda: world.later(50)

    heartbeat.beat()

    assert world.container.sweeper.sweep(world.later(61)).abandoned == {}
    assert world.image(image.id).status is ImageStatus.UPLOADING


def test_a_writer_whose_upload_was_aborted__stops_at_its_next_beat(world: World) -> None:
    image = world.new_image()
    session = world.container.streamed_uploads.start(world.image(image.id), 4)
    heartbeat = world.container.upload_sessions.heartbeat(image.id, session)
    world.container.uploads.abort(world.image(image.id))

    with pytest.raises(UploadSupersededError):
        heartbeat.beat()


def test_put_file__aborted_by_the_owner_while_the_body_arrives__stops_and_keeps_no_bytes(world: World) -> None:
    image = world.new_image()
    streamed = world.container.streamed_uploads
    session = streamed.start(world.image(image.id), None)

    def body() -> Iterator[bytes]:
        yield b"x" * MiB
        world.container.uploads.abort(world.image(image.id))
        yield b"y" * MiB

    with pytest.raises(UploadSupersededError):
        streamed.receive(world.image(image.id), session, body())
    assert world.image(image.id).status is ImageStatus.QUEUED
    assert session.key not in world.bucket.objects


def test_abort__works_for_put_file_and_stage_sessions(world: World) -> None:
    put = world.new_image()
    world.container.streamed_uploads.start(world.image(put.id), 4)
    staged = world.staged(b"staged bytes")

    world.container.uploads.abort(world.image(put.id))
    world.container.uploads.abort(world.image(staged.id))

    assert world.image(put.id).status is ImageStatus.QUEUED
    assert world.image(staged.id).status is ImageStatus.QUEUED
    assert staged.upload is not None and staged.upload.key not in world.bucket.objects
    with pytest.raises(NotFoundError):
        world.container.uploads.abort(world.image(put.id))


def test_abort__of_an_import_in_flight__queues_the_image_and_fails_its_task(world: World) -> None:
    image = world.staged(b"staged bytes")
    job = world.glance_direct(image)
    assert world.image(image.id).status is ImageStatus.IMPORTING

    world.container.uploads.abort(world.image(image.id), "req-abort")

    assert world.image(image.id).status is ImageStatus.QUEUED
    task = world.container.tasks.get(job.task_id or "")
    assert task.status is TaskStatus.FAILURE and "aborted" in task.message
    # The worker's late delivery changes nothing.
    assert world.container.import_worker.run(job) is Outcome.DUPLICATE


def test_staged_bytes_never_imported__are_dropped_when_the_session_expires(world: World) -> None:
    image = world.staged(b"staged bytes")
    assert image.upload is not None and image.upload.holder == "client"
    expiry = world.container.settings.upload_session_ttl_seconds

    assert world.container.sweeper.sweep(world.later(expiry - 60)).abandoned == {}
    report = world.container.sweeper.sweep(world.later(expiry + 1))

    assert "staged data was not imported" in report.abandoned[image.id]
    assert image.upload.key not in world.bucket.objects


def test_an_import_whose_worker_died__is_queued_with_the_reason_and_its_task_fails(world: World) -> None:
    image = world.staged(b"staged bytes")
    job = world.glance_direct(image)
    held = world.image(image.id)
    assert held.upload is not None and held.upload.holder == "queue"

    report = world.container.sweeper.sweep(world.later(601))

    assert "The import was abandoned: its queue made no progress" in report.abandoned[image.id]
    final = world.image(image.id)
    assert final.status is ImageStatus.QUEUED
    assert final.extra_properties[FAILED_IMPORT_PROPERTY] == "s3"
    task = world.container.tasks.get(job.task_id or "")
    assert task.status is TaskStatus.FAILURE and task.message.startswith("Import failed: The import was abandoned")
    # A new upload clears the failure.
    world.container.staging.start(world.image(image.id))
    assert FAILED_IMPORT_PROPERTY not in world.image(image.id).extra_properties


def test_glance_direct__whose_staged_object_is_missing__fails_the_image_and_the_task(world: World) -> None:
    image = world.staged(b"staged bytes")
    assert image.upload is not None
    world.bucket.delete(image.upload.key)
    job = world.glance_direct(image)

    assert world.container.import_worker.run(job) is Outcome.REFUSED

    final = world.image(image.id)
    assert final.status is ImageStatus.QUEUED
    assert "the uploaded data is missing" in final.extra_properties[UPLOAD_ERROR_PROPERTY]
    task = world.container.tasks.get(job.task_id or "")
    assert task.status is TaskStatus.FAILURE and "the uploaded data is missing" in task.message


def test_finaliser__told_about_an_object_that_does_not_exist__fails_the_image(world: World) -> None:
    image = world.new_image()
    uploads = world.container.uploads
    opened = uploads.open(world.image(image.id), uploads.plan(4))

    assert world.container.finalizer.handle_object(opened.session.key) is Outcome.REFUSED

    assert world.image(image.id).status is ImageStatus.QUEUED
    assert "no object" in world.image(image.id).extra_properties[UPLOAD_ERROR_PROPERTY]


def test_presigned_session__expired_before_its_bytes__is_swept_and_its_multipart_upload_dropped(world: World) -> None:
    image = world.new_image()
    uploads = world.container.uploads
    uploads.open(world.image(image.id), uploads.plan(6 * MiB, multipart=True))
    assert world.bucket.open_uploads == 1
    expiry = world.container.settings.upload_session_ttl_seconds

    report = world.container.sweeper.sweep(world.later(expiry + 1))

    assert "expired" in report.abandoned[image.id]
    assert world.bucket.open_uploads == 0
