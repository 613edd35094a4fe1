"""SnapStart's runtime hooks: after a restore nothing made before the snapshot is shared (shared/snapstart.py)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import snapshot_restore_py
from pydantic import SecretStr

from functions.api.app import create_app, renew_state
from shared import snapstart
from shared.auth.keystone import KeystoneAuthenticator
from shared.config import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Empty registries: the runtime's (snapshot_restore_py) and this module's; yields the runtime's."""
    registry: list[object] = []
    monkeypatch.setattr(snapshot_restore_py, "_after_restore_registry", registry)
    monkeypatch.setattr(snapstart, "_refreshers", [])
    monkeypatch.setattr(snapstart, "_installed", False)
    yield registry


def _restore() -> None:
    """What the Lambda runtime does after resuming from a snapshot: every after-restore hook, in order."""
    for hook, args, kwargs in snapshot_restore_py.get_after_restore():
        hook(*args, **kwargs)


def test_install__registers_the_after_restore_hook_once(hooks: list[object]) -> None:
    assert snapstart.install() is True
    assert snapstart.install() is True

    assert hooks == [(snapstart.after_restore, (), {})]


def test_install__without_the_runtimes_hook_library__registers_nothing(
    hooks: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # not importable, as off Lambda

    assert snapstart.install() is False
    assert hooks == []


def test_restore__reseeds_random_drops_boto3s_default_session_then_runs_refreshers_in_order(
    hooks: list[object],
) -> None:
    ran: list[str] = []
    snapstart.on_restore(lambda: ran.append("first"))
    snapstart.on_restore(lambda: ran.append("second"))
    snapstart.install()
    random.seed(1234)
    snapshot_state = random.getstate()
    boto3.setup_default_session(region_name="us-east-1")

    _restore()

    assert random.getstate() != snapshot_state
    assert boto3.DEFAULT_SESSION is None
    assert ran == ["first", "second"]


def test_renew_state__gives_the_app_a_new_container_whose_keystone_caches_and_key_are_its_own() -> None:
    settings = Settings(
        auth_mode="keystone",
        keystone_url="https://keystone.invalid/v3",
        keystone_service_password=SecretStr("not-used-offline"),
    )
    app = create_app(settings)
    before = app.state.container
    authenticator = before.authenticator
    app.state.controllers["images_controller"] = object()

    renew_state(app)

    after = app.state.container
    assert after is not before
    assert (after.settings, after.overrides) == (before.settings, before.overrides)
    assert app.state.controllers == {}
    renewed = after.authenticator
    assert isinstance(authenticator, KeystoneAuthenticator) and isinstance(renewed, KeystoneAuthenticator)
    assert renewed is not authenticator
    # a new per-process hashing key: no cached validation of the snapshot's authenticator can match here
    assert renewed.cache_key("gAAAAAB-token") != authenticator.cache_key("gAAAAAB-token")


_HANDLER_AFTER_RESTORE = """
import json
import random

import snapshot_restore_py

import functions.api.handler as handler

container = handler._app.state.container
authenticator = container.authenticator  # as if init had built it: it is in the snapshot
random.seed(7)
state = random.getstate()
hooks = snapshot_restore_py.get_after_restore()
for hook, args, kwargs in hooks:  # the runtime, after resuming an environment from the snapshot
    hook(*args, **kwargs)
event = {
    "version": "2.0", "routeKey": "$default", "rawPath": "/versions", "rawQueryString": "",
    "headers": {"host": "abc123.execute-api.us-east-1.amazonaws.com", "accept": "application/json"},
    "requestContext": {
        "accountId": "123456789012", "apiId": "abc123", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        "http": {"method": "GET", "path": "/versions", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1",
                 "userAgent": "t"},
        "requestId": "gw-req", "routeKey": "$default", "stage": "$default",
        "time": "29/Nov/2026:09:00:00 +0000", "timeEpoch": 1795942800000,
    },
    "isBase64Encoded": False,
}


class Context:
    function_name = "sglance-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sglance-api:live"
    aws_request_id = "lambda-req"

    def get_remaining_time_in_millis(self):
        return 30_000


response = handler.handler(event, Context())
print(json.dumps({
    "hooks": [f"{hook.__module__}.{hook.__qualname__}" for hook, _, _ in hooks],
    "container_renewed": handler._app.state.container is not container,
    "authenticator_renewed": handler._app.state.container.authenticator is not authenticator,
    "reseeded": random.getstate() != state,
    "status": response["statusCode"],
}))
"""


def test_api_handler__registers_the_hook_at_import_and_serves_after_a_restore_with_its_own_state() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SGLANCE_", "AWS_", "POWERTOOLS_"))}
    env.update(SGLANCE_AUTH_MODE="trusted-headers", SGLANCE_AWS_REGION="us-east-1", PYTHONWARNINGS="error")

    done = subprocess.run(
        [sys.executable, "-c", _HANDLER_AFTER_RESTORE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "hooks": ["shared.snapstart.after_restore"],
        "container_renewed": True,
        "authenticator_renewed": True,
        "reseeded": True,
        "status": 200,
    }


@pytest.mark.parametrize("auth_mode", ["trusted-headers", "keystone"])
def test_warm__parses_the_policy_and_imports_the_image_path__without_making_any_client(auth_mode: str) -> None:
    from shared.bootstrap import Container
    from shared.policy.enforcer import enforcer_for

    settings = Settings(
        auth_mode=auth_mode,
        keystone_url="https://keystone.invalid/v3",
        keystone_service_password=SecretStr("not-used-offline"),
    )
    container = Container(settings)

    container.warm()

    assert enforcer_for(settings.policy_file)._enforcer is not None
    assert "shared.data.dynamodb.images" in sys.modules
    # nothing SnapStart would share between restored environments: no AWS clients, no authenticator, no session
    assert not {"aws", "table_models", "image_repository", "authenticator"} & set(vars(container))
    if auth_mode == "keystone":
        assert "keystoneauth1.session" in sys.modules
