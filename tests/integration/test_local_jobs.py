"""The local stack's job runner end to end: a finalisation that cannot fit its worker's (simulated) Lambda time is
handed to ``python -m functions.task_runner`` as a child process, which activates the image.

The worker is given a hand-over margin (600 s) larger than its whole simulated timeout (150 s), so it can verify
nothing itself: the image can only become active through the job.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from devstack.stack import DevStack
from shared.bootstrap import Container
from shared.domain.image import Image
from shared.domain.status import ImageStatus
from tests.support.image_corpus import raw_image

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def test_local_stack__hands_work_too_long_for_its_worker_to_a_local_job_that_activates_the_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SGLANCE_WORKER_DEADLINE_MARGIN_SECONDS", "600")
    payload = raw_image(2 * MiB, random_bytes=True)
    with DevStack(api_port=0, aws_port=0, state_dir=tmp_path / "devstack") as stack:
        assert stack.settings.job_launcher == "local"
        c = Container(stack.settings)
        try:
            image = c.images.add(Image.new(owner="project-a", disk_format="raw", container_format="bare"))
            opened = c.uploads.open(c.images.get(image.id), c.uploads.plan(len(payload)))
            assert opened.single is not None
            put = requests.put(opened.single.url, data=payload, headers=opened.single.headers, timeout=30)
            assert put.status_code == 200

            # S3 event -> upload queue -> upload_complete (hands off) -> child process -> active.
            waited_until = time.monotonic() + 120
            status = c.images.get(image.id).status
            while status is not ImageStatus.ACTIVE and time.monotonic() < waited_until:
                time.sleep(0.5)
                status = c.images.get(image.id).status
            final = c.images.get(image.id)
        finally:
            c.aws.close()
    assert final.status is ImageStatus.ACTIVE, final.extra_properties
    assert final.size == len(payload)
