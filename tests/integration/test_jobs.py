"""Owners, deadlines and jobs against moto server: the sweep index on DynamoDB, the sweeper's Lambda handler, the
upload_complete handler under a small injected deadline handing off to a job that activates the image.

The ECS RunTask adapter is checked against the ECS API model in tests/unit/test_job_launchers.py: moto 5 crashes
on an awsvpc RunTask (``NetworkInterface`` has no ``private_dns_name``)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests

from devstack.provision import provision
from functions.task_runner.__main__ import run as run_job
from shared.bootstrap import Container
from shared.config import Settings, get_settings
from shared.domain.image import Image, utcnow
from shared.domain.status import ImageStatus
from shared.domain.upload import UPLOAD_ERROR_PROPERTY
from shared.jobrunner import NoJobLauncher
from shared.jobs import FinalizeJob, read_envelope
from shared.resources import resources_for
from shared.services.finalize import Outcome
from tests.support.fakes import RecordingJobLauncher
from tests.support.image_corpus import raw_image
from tests.support.lambda_events import LambdaContext, sqs_record

pytestmark = pytest.mark.integration

REGION = "us-east-1"
MiB = 1024 * 1024


@pytest.fixture
def container(moto_reset: str) -> Iterator[Container]:
    settings = Settings(aws_endpoint_url=moto_reset, aws_region=REGION, stream_lease_seconds=60)
    provision(resources_for(settings), moto_reset, REGION)
    c = Container(settings)
    yield c
    c.aws.close()


def _new(c: Container) -> Image:
    return c.images.add(Image.new(owner="project-a", disk_format="raw", container_format="bare"))


def test_sweep_index__holds_only_in_flight_images_in_deadline_order(container: Container) -> None:
    c = container
    settled = _new(c)
    first, second = _new(c), _new(c)
    c.streamed_uploads.start(c.images.get(first.id), 4)
    c.streamed_uploads.start(c.images.get(second.id), 4)
    repo = c.image_repository

    assert repo.overdue(utcnow(), 10) == []
    due = repo.overdue(utcnow() + timedelta(seconds=61), 10)
    assert set(due) == {first.id, second.id} and settled.id not in due
    assert len(repo.overdue(utcnow() + timedelta(seconds=61), 1)) == 1

    c.sweeper.sweep(utcnow() + timedelta(seconds=61))

    assert repo.overdue(utcnow() + timedelta(days=30), 10) == []
    final = c.images.get(first.id)
    assert final.status is ImageStatus.QUEUED and "made no progress" in final.extra_properties[UPLOAD_ERROR_PROPERTY]


def test_sweeper_handler__runs_one_sweep(container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    image = _new(container)
    session = container.streamed_uploads.start(container.images.get(image.id), 4)
    stale = container.image_repository.get(image.id)
    assert stale.upload is not None and stale.upload.lease is not None
    stale.hold(stale.upload.lease.holder, utcnow() - timedelta(seconds=1))
    container.image_repository.save(stale)
    monkeypatch.setenv("SGLANCE_AWS_ENDPOINT_URL", container.settings.aws_endpoint_url or "")
    get_settings.cache_clear()
    import functions.sweeper.handler as module

    handler = importlib.reload(module)
    try:
        result = handler.handler({"source": "aws.events"}, LambdaContext("worker"))
    finally:
        handler._container.aws.close()
        get_settings.cache_clear()

    assert result == {"examined": 1, "abandoned": [image.id]}
    assert container.images.get(image.id).status is ImageStatus.QUEUED
    assert session.key


def test_upload_complete_handler__under_a_small_deadline__hands_off_and_the_job_activates(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = raw_image(3 * MiB, random_bytes=True)
    image = _new(container)
    opened = container.uploads.open(container.images.get(image.id), container.uploads.plan(len(payload)))
    assert opened.single is not None
    put = requests.put(opened.single.url, data=payload, headers=opened.single.headers, timeout=30)
    assert put.status_code == 200
    monkeypatch.setenv("SGLANCE_AWS_ENDPOINT_URL", container.settings.aws_endpoint_url or "")
    monkeypatch.setenv("SGLANCE_WORKER_DEADLINE_MARGIN_SECONDS", "5")
    get_settings.cache_clear()
    import functions.upload_complete.handler as module

    handler = importlib.reload(module)
    launcher = RecordingJobLauncher()
    handler._container.overrides["job_launcher"] = launcher
    notification = {
        "Records": [
            {"s3": {"bucket": {"name": container.settings.image_bucket}, "object": {"key": opened.session.key}}}
        ]
    }
    try:
        # 6 s left, 5 kept back to hand over: 1 s for 3 MiB at the default 64 MiB/s would fit, so ask for 1 MiB/s.
        handler._container.settings = handler._container.settings.model_copy(update={"worker_bytes_per_second": MiB})
        response = handler.handler(
            {"Records": [sqs_record("m1", notification)]}, LambdaContext("worker", remaining_ms=6000)
        )
    finally:
        handler._container.aws.close()
        get_settings.cache_clear()

    assert response == {"batchItemFailures": []}
    assert launcher.jobs == [FinalizeJob(opened.session.key)]
    held = container.images.get(image.id)
    assert held.status is ImageStatus.IMPORTING and held.upload is not None and held.upload.holder == "job"
    job = read_envelope(json.loads(launcher.texts[0]))
    job_side = Container(container.settings, {"job_launcher": NoJobLauncher("a job never hands on")})
    try:
        assert run_job(job, job_side) == Outcome.ACTIVE.value
    finally:
        job_side.aws.close()
    assert container.images.get(image.id).status is ImageStatus.ACTIVE


def test_sweep_cost__does_not_grow_with_the_number_of_images(container: Container) -> None:
    from shared.data.dynamodb.images import DynamoImageRepository
    from tests.integration.test_dynamodb_repository import CallCounter, _load

    repo = container.image_repository
    assert isinstance(repo, DynamoImageRepository)
    in_flight = [_new(container) for _ in range(3)]
    for image in in_flight:
        container.streamed_uploads.start(container.images.get(image.id), 4)
    later = utcnow() + timedelta(seconds=61)
    counter = CallCounter(repo.botocore_clients())

    _load(repo, 0, 130)
    small = counter.measure(lambda: repo.overdue(later, 100))
    _load(repo, 130, 1170)
    large = counter.measure(lambda: repo.overdue(later, 100))
    swept = counter.measure(lambda: container.sweeper.sweep(later))

    assert large == small == ({"Query": 4}, 3)  # one Query per sweep shard, reading only the overdue entries
    calls, _ = swept
    # The page, then per image: a read and its conditional write (one transaction, entries included).
    assert calls == {"Query": 4, "GetItem": 3, "TransactWriteItems": 3}
