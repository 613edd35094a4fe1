"""The upload lifecycle through the services, on the in-memory upload bucket and repositories: presigned single and
multipart uploads, PUT /file, staging and glance-direct import, downloads. Every step is the service's own code;
only the bucket (``shared/upload_bucket/memory.py``) and the repositories are fakes. The same flows run against
moto and a real Ceph RGW in tests/integration and tests/api."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import pytest

from shared.config import Settings
from shared.domain.context import RequestContext
from shared.domain.errors import ConflictError, InvalidInputError, InvalidRangeError, NotFoundError
from shared.domain.image import utcnow
from shared.domain.status import ImageStatus
from shared.domain.task import TaskStatus
from shared.domain.upload import UPLOAD_ERROR_PROPERTY
from shared.jobs import ImportJob
from shared.resources import ACTIVE_STATE, PENDING_STATE
from shared.services.finalize import Outcome
from shared.services.imports import read_import_request
from tests.support.image_corpus import raw_image
from tests.support.memory_world import MemoryWorld as World

MiB = 1024 * 1024
OWNER = RequestContext("req-1", "project-a", "user-a", frozenset({"member", "reader"}))


@pytest.fixture
def world() -> World:
    settings = Settings(
        auth_mode="trusted-headers",
        multipart_threshold=5 * MiB,
        multipart_part_size=5 * MiB,
        data_delivery="stream",
        proxy_finalize_grace_seconds=0,
    )
    return World.build(settings)


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


# -- presigned uploads ------------------------------------------------------------------------------------------


def test_presigned_single_put__is_finalised_active_with_the_events_glance_sends(world: World) -> None:
    payload = raw_image(1 * MiB, random_bytes=True)
    image = world.new_image()
    uploads = world.container.uploads
    request = uploads.plan(len(payload), hashlib.md5(payload).hexdigest())

    opened = uploads.open(world.image(image.id), request, request_id="req-open")
    assert opened.single is not None and world.image(image.id).status is ImageStatus.UPLOADING
    world.bucket.send(opened.single, payload)

    assert world.container.finalizer.handle_object(opened.session.key) is Outcome.ACTIVE
    final = world.image(image.id)
    assert (final.status, final.size, final.checksum) == (ImageStatus.ACTIVE, len(payload), request.checksum)
    assert final.os_hash_value == hashlib.sha512(payload).hexdigest()
    assert [loc.url for loc in final.locations] == [world.bucket.location_url(opened.session.key)]
    assert world.bucket.objects[opened.session.key].state == ACTIVE_STATE
    assert world.events() == ["image.create", "image.update", "image.prepare", "image.update"] + [
        "image.upload",
        "image.activate",
        "image.update",
    ]
    # A redelivered S3 event changes nothing.
    assert world.container.finalizer.handle_object(opened.session.key) is Outcome.DUPLICATE
    assert world.image(image.id).version == final.version


def test_presigned_put__of_other_bytes_than_declared__is_refused_and_deleted(world: World) -> None:
    image = world.new_image()
    uploads = world.container.uploads
    opened = uploads.open(world.image(image.id), uploads.plan(4, "0" * 32))
    assert opened.single is not None
    world.bucket.send(opened.single, b"data")

    assert world.container.finalizer.handle_object(opened.session.key) is Outcome.REFUSED

    final = world.image(image.id)
    assert final.status is ImageStatus.QUEUED and "checksum mismatch" in final.extra_properties[UPLOAD_ERROR_PROPERTY]
    assert opened.session.key not in world.bucket.objects
    assert world.events()[-2:] == ["image.upload", "image.update"]
    assert world.notifier.sent[-2].priority == "ERROR"


def test_presigned_multipart__resumes_from_the_parts_received_and_completes(world: World) -> None:
    payload = raw_image(12 * MiB, random_bytes=True)
    image = world.new_image()
    uploads = world.container.uploads
    opened = uploads.open(world.image(image.id), uploads.plan(len(payload), multipart=True))
    assert [p.size for p in opened.parts] == [5 * MiB, 5 * MiB, 2 * MiB]
    world.bucket.send(opened.parts[0].request, payload[: 5 * MiB])

    status = uploads.status(world.image(image.id))
    assert [p.number for p in status.uploaded] == [1]
    with pytest.raises(ConflictError, match="missing parts \\[2, 3\\]"):
        uploads.complete(world.image(image.id))
    for part in uploads.part_urls(world.image(image.id), [2, 3]):
        world.bucket.send(part.request, payload[(part.number - 1) * 5 * MiB :][: part.size])
    uploads.complete(world.image(image.id))

    assert world.bucket.objects[opened.session.key].state == PENDING_STATE
    assert world.container.finalizer.handle_object(opened.session.key) is Outcome.ACTIVE
    assert world.image(image.id).checksum == hashlib.md5(payload).hexdigest()
    assert world.bucket.open_uploads == 0


def test_abort__queues_the_image_again_and_leaves_nothing_in_the_bucket(world: World) -> None:
    image = world.new_image()
    uploads = world.container.uploads
    opened = uploads.open(world.image(image.id), uploads.plan(6 * MiB))
    assert world.bucket.open_uploads == 1

    uploads.abort(world.image(image.id), "req-abort")

    assert world.image(image.id).status is ImageStatus.QUEUED
    assert world.bucket.open_uploads == 0 and opened.session.key not in world.bucket.objects
    with pytest.raises(NotFoundError):
        uploads.status(world.image(image.id))


def test_an_expired_session__is_replaced_and_its_multipart_upload_dropped(world: World) -> None:
    image = world.new_image()
    uploads = world.container.uploads
    uploads.open(world.image(image.id), uploads.plan(6 * MiB))
    with pytest.raises(ConflictError):
        uploads.open(world.image(image.id), uploads.plan(4))  # still open: the client may resume it
    stale = world.image(image.id)
    assert stale.upload is not None
    stale.upload.expires_at = utcnow() - timedelta(seconds=1)
    world.container.images.commit(stale)

    second = uploads.open(world.image(image.id), uploads.plan(4))

    assert world.bucket.open_uploads == 0
    assert world.image(image.id).upload == second.session


# -- PUT /file ---------------------------------------------------------------------------------------------------


def test_put_file__is_verified_and_recorded_before_it_returns(world: World) -> None:
    payload = raw_image(3 * MiB, random_bytes=True)
    image = world.new_image()
    streamed = world.container.streamed_uploads
    loaded = world.image(image.id)
    session = streamed.start(loaded, len(payload), request_id="req-put")

    recorded = streamed.receive(loaded, session, _chunks(payload), "req-put")

    assert recorded.status is ImageStatus.ACTIVE and recorded.size == len(payload)
    assert b"".join(world.bucket.read(session.key).chunks) == payload
    assert world.events()[1:] == ["image.update", "image.prepare", "image.upload", "image.activate", "image.update"]


def test_put_file__with_a_short_body__is_a_400_and_the_image_is_queued_with_the_reason(world: World) -> None:
    image = world.new_image()
    streamed = world.container.streamed_uploads
    loaded = world.image(image.id)
    session = streamed.start(loaded, 10)

    with pytest.raises(InvalidInputError, match="size mismatch"):
        streamed.receive(loaded, session, iter([b"only five"]))

    final = world.image(image.id)
    assert final.status is ImageStatus.QUEUED and "size mismatch" in final.extra_properties[UPLOAD_ERROR_PROPERTY]
    assert session.key not in world.bucket.objects


# -- staging and glance-direct ------------------------------------------------------------------------------------


def test_stage_then_glance_direct__the_import_worker_activates_the_image_and_settles_its_task(world: World) -> None:
    payload = raw_image(2 * MiB, random_bytes=True)
    image = world.new_image()
    staging = world.container.staging
    session = staging.start(world.image(image.id))
    staging.receive(world.image(image.id), session, _chunks(payload))
    assert world.image(image.id).upload is not None and world.image(image.id).upload.size == len(payload)  # type: ignore[union-attr]
    imports = world.container.imports
    request = read_import_request({"method": {"name": "glance-direct"}})

    imports.start(OWNER, world.image(image.id), request, imports.stores(request))
    (job,) = world.imports.take()
    assert isinstance(job, ImportJob) and job.method == "glance-direct"
    assert world.image(image.id).status is ImageStatus.IMPORTING

    assert world.container.import_worker.run(job) is Outcome.ACTIVE
    assert world.image(image.id).status is ImageStatus.ACTIVE
    assert job.task_id is not None
    assert world.container.tasks.get(job.task_id).status is TaskStatus.SUCCESS


# -- downloads ---------------------------------------------------------------------------------------------------


def test_download__streams_the_bytes_or_a_range_and_meters_what_went_out(world: World) -> None:
    payload = raw_image(1 * MiB, random_bytes=True)
    image = world.new_image()
    streamed = world.container.streamed_uploads
    loaded = world.image(image.id)
    streamed.receive(loaded, streamed.start(loaded, None), iter([payload]))
    downloads = world.container.downloads

    whole = downloads.open(OWNER, world.image(image.id))
    assert whole.chunks is not None and b"".join(whole.chunks) == payload
    ranged = downloads.open(OWNER, world.image(image.id), "bytes=10-19")
    assert ranged.chunks is not None and b"".join(ranged.chunks) == payload[10:20]
    assert ranged.content_range == f"bytes 10-19/{len(payload)}"
    with pytest.raises(InvalidRangeError):
        downloads.open(OWNER, world.image(image.id), f"bytes={len(payload)}-")

    sent = [n.payload for n in world.notifier.sent if n.event_type == "image.send"]
    assert [p["bytes_sent"] for p in sent if isinstance(p, dict)] == [len(payload), 10]


def test_download__of_an_image_without_data__is_nothing(world: World) -> None:
    image = world.new_image()

    download = world.container.downloads.open(OWNER, world.image(image.id))

    assert (download.redirect, download.chunks) == (None, None)
