"""The local stack's scheduler: scheduled handlers run on their rate with EventBridge's event shape; the sweeper's own
handler, run by it against moto server, returns an abandoned upload to queued."""

from __future__ import annotations

import importlib
from datetime import timedelta
from typing import Any

import pytest

from devstack.provision import provision
from devstack.scheduler import SWEEPER_HANDLER, Schedule, Scheduler
from shared.bootstrap import Container
from shared.config import Settings, get_settings
from shared.domain.image import Image, utcnow
from shared.domain.status import ImageStatus
from shared.resources import resources_for
from tests.integration.lambda_fakes import RecordingHandler

pytestmark = pytest.mark.integration


def test_scheduler__runs_each_handler_repeatedly_with_a_scheduled_event() -> None:
    handler = RecordingHandler()
    scheduler = Scheduler({"sweeper": Schedule(handler, 0.05)})
    scheduler.start()
    try:
        handler.wait_for(lambda: len(handler.calls) >= 2)
    finally:
        scheduler.stop()
    event, context = handler.calls[0]
    assert event["source"] == "aws.events" and event["detail-type"] == "Scheduled Event"
    assert context.function_name == "sweeper"


def test_scheduler__keeps_running_after_a_run_that_raises() -> None:
    def boom(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("boom")

    scheduler = Scheduler({"s": Schedule(boom, 3600)})
    assert scheduler.run_once("s", boom) is None
    assert scheduler.runs["s"] == 1


def test_scheduler__runs_the_sweeper_handler_which_queues_an_abandoned_upload(
    moto_reset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(aws_endpoint_url=moto_reset, aws_region="us-east-1")
    provision(resources_for(settings), moto_reset, "us-east-1")
    c = Container(settings)
    image = c.images.add(Image.new(owner="project-a", disk_format="raw", container_format="bare"))
    c.streamed_uploads.start(c.images.get(image.id), 4)  # an API process that dies before the body
    stale = c.image_repository.get(image.id)
    stale.hold("api", utcnow() - timedelta(seconds=1))
    c.image_repository.save(stale)
    monkeypatch.setenv("SGLANCE_AWS_ENDPOINT_URL", moto_reset)
    get_settings.cache_clear()
    import functions.sweeper.handler as module

    handler = importlib.reload(module).handler
    scheduler = Scheduler({"sweeper": Schedule(SWEEPER_HANDLER, 3600)})
    try:
        result = scheduler.run_once("sweeper", handler)
    finally:
        module._container.aws.close()
        get_settings.cache_clear()
        c.aws.close()

    assert result == {"examined": 1, "abandoned": [image.id]}
    assert c.images.get(image.id).status is ImageStatus.QUEUED
