"""devstack.stack.DevStack in-process, with a stand-in API app (the real one has its own tests in tests/api)."""

from __future__ import annotations

import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
import requests
from fastapi import FastAPI

from devstack.stack import DevStack, DevStackError
from shared.config import Settings, get_settings
from shared.resources import IMAGE_OBJECT_PREFIX, resources_for
from tests.integration.lambda_fakes import RecordingHandler

pytestmark = pytest.mark.integration


def _probe_app(settings: Settings) -> FastAPI:
    app = FastAPI()

    @app.get("/probe")
    def probe() -> dict[str, Any]:
        return {"auth_mode": settings.auth_mode, "aws_endpoint_url": settings.aws_endpoint_url}

    return app


def test_devstack__serves_the_api_and_hands_staging_uploads_to_the_upload_handler(
    moto_reset: str, tmp_path: Path
) -> None:
    resources = resources_for(Settings())
    handler = RecordingHandler()
    state_dir = tmp_path / "devstack"
    env_before = dict(os.environ)
    tempdir_before = tempfile.tempdir

    with DevStack(
        api_port=0,
        aws_port=0,
        state_dir=state_dir,
        app_factory=_probe_app,
        handlers={resources.upload_queue.name: handler, resources.store_sync_queue.name: "functions.nope:handler"},
    ) as stack:
        with requests.Session() as http:
            probe = http.get(f"{stack.endpoint}/probe", timeout=5).json()
        assert probe == {"auth_mode": "trusted-headers", "aws_endpoint_url": stack.aws_endpoint}
        assert get_settings().aws_endpoint_url == stack.aws_endpoint
        assert json.loads(stack.state_file.read_text())["endpoint"] == stack.endpoint
        assert stack.event_loop.idle_queues == (resources.store_sync_queue.name,)

        session = boto3.session.Session(region_name=stack.settings.aws_region)
        s3 = session.client("s3", endpoint_url=stack.aws_endpoint)
        try:
            s3.put_object(Bucket=resources.image_bucket, Key=f"{IMAGE_OBJECT_PREFIX}img-1", Body=b"data")
        finally:
            s3.close()

        def uploaded_keys() -> list[str]:
            bodies = [json.loads(record["body"]) for record in handler.records]
            return [unquote_plus(r["s3"]["object"]["key"]) for body in bodies for r in body.get("Records", [])]

        handler.wait_for(lambda: uploaded_keys() == [f"{IMAGE_OBJECT_PREFIX}img-1"])

    assert not stack.state_file.exists()
    assert dict(os.environ) == env_before
    assert tempfile.tempdir == tempdir_before
    assert [p.name for p in state_dir.iterdir()] == ["tmp"]


def test_devstack__aws_port_in_use__fails_fast_and_leaves_nothing_behind(moto_endpoint: str, tmp_path: Path) -> None:
    env_before = dict(os.environ)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(DevStackError, match="--aws-port"):
            DevStack(api_port=0, aws_port=port, state_dir=tmp_path, app_factory=_probe_app).start()

    assert dict(os.environ) == env_before
