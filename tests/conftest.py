"""Fixtures every test folder may use.

- ``moto_endpoint`` (session): a moto server on 127.0.0.1 at a free port, started on first use; while it runs,
  the environment holds fake AWS credentials (``testing``) and ``AWS_DEFAULT_REGION`` = ``AWS_REGION``, so no test
  can reach a real account. Pass the URL as ``endpoint_url`` (boto3) or ``host`` (pynamodb ``Meta``).
- ``moto_reset`` (function): wipes all moto state before the test (``POST /moto-api/reset``). Request it in every
  test that creates resources, so tests do not see each other's tables, buckets or queues.
- ``aws_client`` (function): ``aws_client("sqs")`` makes a boto3 client for the moto server and closes it after
  the test (an unclosed client leaves a socket whose ResourceWarning fails the run: ``filterwarnings = error``).

moto keeps state per process, so a ``DevStack`` or ``mock_aws`` in the same process shares it with this server.

- ``keystone`` (session): a real Keystone 30 on 127.0.0.1 (tests/backends/keystone: its own virtualenv, installed on
  first use; SQLite, fernet tokens, memcached), with projects project-a/b/c and the accounts admin, member-a,
  reader-a, member-b, no-role and the service user glance; a ``KeystoneEnv`` (URL, accounts, ``token(name)``,
  ``settings()``). About 7 s to start. ``SGLANCE_SKIP_KEYSTONE=1`` skips its tests; any other failure fails them.
- ``swift`` (session) and ``swift_proxy`` (function), from the plugin ``tests.support.swift``: a real Swift on
  127.0.0.1 (tests/backends/swift) and a handle to kill and restart its proxy. ``SGLANCE_SKIP_SWIFT=1`` skips them.
- ``rgw`` (session), from the plugin ``tests.support.rgw``: a real Ceph RADOS Gateway on 127.0.0.1
  (tests/backends/ceph), its endpoint, region and S3 keys as a dict. ``SGLANCE_SKIP_RGW=1`` skips its tests.
- ``rbd_cluster`` (session), from the plugin ``tests.support.rbd``: that cluster with the RBD pool ``images``
  (conffile, fsid, the rados/rbd bindings and an ioctx for looking behind the RBD driver).
- ``real_glance`` (session), from the plugin ``tests.support.glance``: a real Glance 33 on 127.0.0.1
  (tests/backends/glance) against the ``keystone`` fixture, in its catalog. ``SGLANCE_SKIP_GLANCE=1`` skips its tests.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from devstack.emulator import serialize_moto_dynamodb

if TYPE_CHECKING:
    from tests.backends.keystone.accounts import KeystoneEnv

# Fixture modules of real backends (tests/support): ``swift``, ``swift_proxy``; ``rgw``; ``rbd_cluster``;
# ``real_glance``.
pytest_plugins = ["tests.support.swift", "tests.support.rgw", "tests.support.rbd", "tests.support.glance"]

AWS_REGION = "us-east-1"
FAKE_CREDENTIALS = "testing"


@pytest.fixture(scope="session", autouse=True)
def _notifications_off_by_default() -> Iterator[None]:
    """Apps built by tests publish no notifications unless they ask (the local stack turns them on for its bus):
    an app without an emulator endpoint must never reach a real EventBridge."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SGLANCE_NOTIFICATION_DRIVER", "noop")
        yield


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto server for the whole session, with fake credentials in the environment."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", FAKE_CREDENTIALS)
        env.setenv("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS)
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        env.setenv("AWS_DEFAULT_REGION", AWS_REGION)
        # werkzeug logs every request at INFO, which floods the captured log of a failing test.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # ThreadedMotoServer listens on 0.0.0.0 unless told otherwise.
        # moto's DynamoDB transactions are not atomic under concurrency; make them so, as on AWS.
        serialize_moto_dynamodb()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def moto_reset(moto_endpoint: str) -> str:
    """The moto endpoint, emptied of every resource; returns the endpoint URL."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    return moto_endpoint


@pytest.fixture
def aws_client(moto_endpoint: str) -> Iterator[Callable[[str], Any]]:
    """A factory of boto3 clients bound to the moto server; every client is closed after the test."""
    session = boto3.session.Session(region_name=AWS_REGION)
    made: list[Any] = []

    def make(service: str) -> Any:
        client = session.client(service, endpoint_url=moto_endpoint, region_name=AWS_REGION)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneEnv]:
    """A real Keystone for the whole session, with the test projects and accounts."""
    if os.environ.get("SGLANCE_SKIP_KEYSTONE") == "1":
        pytest.skip("SGLANCE_SKIP_KEYSTONE=1: tests against a real Keystone skipped")
    from tests.backends.keystone.harness import running_keystone

    with running_keystone(tmp_path_factory.mktemp("keystone")) as env:
        yield env
