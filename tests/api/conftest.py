"""Fixtures of the API tests: one local stack for the whole folder, and real clients acting as five identities.

- ``stack`` (package): a ``DevStack`` on free ports whose state folder is a pytest temporary folder. Package scope,
  not session scope: the stack patches the process environment while it runs, and the unit and integration suites
  that may run after this folder in the same process must not see it.
- ``endpoint`` (package): the API base URL. ``http`` (package): a ``GlanceHttp`` for raw requests.
- ``sdk`` / ``glance`` (package): factories of an openstacksdk ``Connection`` / a python-glanceclient v2 client
  per ``Persona`` (see ``support.py``), made once and closed at the end; ``sdk_a_member`` … ``glance_admin`` are
  the same clients by name.
- ``tag`` (function): a tag unique to the test. Tests put it on every image they create and filter lists by it, so
  they never see each other's images; afterwards every image carrying it is deleted (as admin, unprotected first).
- ``created`` (function): ids to delete after the test, for images that do not keep the tag.
- ``notifications`` (package): the queue the local bus rule copies every Glance notification to.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import glanceclient
import openstack.connection
import pytest
import requests
from keystoneauth1 import noauth
from keystoneauth1 import session as ks_session

from devstack.stack import DevStack
from functions.api.app import create_app
from tests.api.events import NotificationQueue
from tests.api.support import (
    A_MEMBER,
    A_READER,
    ADMIN,
    B_MEMBER,
    B_READER,
    GlanceFactory,
    GlanceHttp,
    Persona,
    SdkFactory,
)
from tests.support.serving import serve

# The file stores of the API tests' stack, besides the primary bucket "s3".
FILE_STORES = ("file1", "file2")


@dataclass(frozen=True)
class WebServer:
    """Where web-download test files are served from."""

    root: Path
    url: str
    port: int


@pytest.fixture(scope="package")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """A loopback HTTP server for web-download imports; tests drop files into its folder."""
    root: Path = tmp_path_factory.mktemp("web")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield WebServer(root, f"http://127.0.0.1:{server.server_address[1]}", server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory, web_server: WebServer) -> Iterator[DevStack]:
    """The local stack (moto, the API on uvicorn, the event loop), started once for tests/api.

    Web-download may fetch from the test's loopback web server only: the default URL policy refuses loopback.
    Besides the primary bucket (``s3``), two file stores (``file1``, ``file2``: pytest temporary folders) take
    copies; a failed copy is retried after 1 s.
    """
    state_dir: Path = tmp_path_factory.mktemp("devstack")
    stores = {
        store_id: {"type": "file", "data_dir": str(tmp_path_factory.mktemp(store_id)), "description": f"{store_id}"}
        for store_id in FILE_STORES
    }
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SGLANCE_STORES", json.dumps(stores))
        env.setenv("SGLANCE_STORE_SYNC_BACKOFF_BASE_SECONDS", "1")
        env.setenv("SGLANCE_STORE_SYNC_MAX_ATTEMPTS", "2")
        env.setenv("SGLANCE_WEB_DOWNLOAD_ALLOWED_HOSTS", "127.0.0.1")
        # web-download bytes are recorded toward image_stage_total every MiB (tests/api/test_quotas.py)
        env.setenv("SGLANCE_WEB_DOWNLOAD_STAGING_STEP", str(1024 * 1024))
        env.setenv("SGLANCE_WEB_DOWNLOAD_ALLOWED_PORTS", str(web_server.port))
        with DevStack(api_port=0, aws_port=0, state_dir=state_dir) as running:
            yield running


@pytest.fixture(scope="package")
def redirect_endpoint(stack: DevStack) -> Iterator[str]:
    """A second API server on the same data, configured as behind API Gateway: GET /file redirects to a
    presigned S3 GET instead of streaming."""
    settings = stack.settings.model_copy(update={"data_delivery": "redirect"})
    with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="package")
def endpoint(stack: DevStack) -> str:
    """Base URL of the image API, e.g. ``http://127.0.0.1:41234``."""
    return stack.endpoint


@pytest.fixture(scope="package")
def http(endpoint: str) -> Iterator[GlanceHttp]:
    """Raw HTTP against the API."""
    with requests.Session() as session:
        yield GlanceHttp(endpoint, session)


def _keystone_session(persona: Persona) -> ks_session.Session:
    # No token: the trusted-headers mode reads the identity from headers a keystoneauth session adds to every call.
    return ks_session.Session(auth=noauth.NoAuth(), additional_headers=persona.headers)


@pytest.fixture(scope="package")
def sdk(endpoint: str) -> Iterator[SdkFactory]:
    """``sdk(persona)``: an openstacksdk connection to the local image API acting as ``persona``."""
    made: dict[Persona, tuple[openstack.connection.Connection, ks_session.Session]] = {}

    def connect(persona: Persona) -> openstack.connection.Connection:
        if persona not in made:
            session = _keystone_session(persona)
            conn = openstack.connection.Connection(
                session=session, image_endpoint_override=endpoint, image_api_version="2"
            )
            made[persona] = (conn, session)
        return made[persona][0]

    yield connect
    for conn, session in made.values():
        conn.close()
        session.close()


@pytest.fixture(scope="package")
def glance(endpoint: str) -> Iterator[GlanceFactory]:
    """``glance(persona)``: a python-glanceclient v2 client (session form) acting as ``persona``."""
    made: dict[Persona, tuple[Any, ks_session.Session]] = {}

    def connect(persona: Persona) -> Any:
        if persona not in made:
            session = _keystone_session(persona)
            # The session form takes the unversioned endpoint: the client's paths already start with /v2.
            made[persona] = (glanceclient.Client("2", session=session, endpoint=endpoint), session)
        return made[persona][0]

    yield connect
    for _, session in made.values():
        session.close()


@pytest.fixture
def sdk_a_member(sdk: SdkFactory) -> openstack.connection.Connection:
    """openstacksdk as a member of project A."""
    return sdk(A_MEMBER)


@pytest.fixture
def sdk_a_reader(sdk: SdkFactory) -> openstack.connection.Connection:
    """openstacksdk as a reader of project A."""
    return sdk(A_READER)


@pytest.fixture
def sdk_b_member(sdk: SdkFactory) -> openstack.connection.Connection:
    """openstacksdk as a member of project B."""
    return sdk(B_MEMBER)


@pytest.fixture
def sdk_b_reader(sdk: SdkFactory) -> openstack.connection.Connection:
    """openstacksdk as a reader of project B."""
    return sdk(B_READER)


@pytest.fixture
def sdk_admin(sdk: SdkFactory) -> openstack.connection.Connection:
    """openstacksdk as an admin."""
    return sdk(ADMIN)


@pytest.fixture
def glance_a_member(glance: GlanceFactory) -> Any:
    """glanceclient as a member of project A."""
    return glance(A_MEMBER)


@pytest.fixture
def glance_a_reader(glance: GlanceFactory) -> Any:
    """glanceclient as a reader of project A."""
    return glance(A_READER)


@pytest.fixture
def glance_b_member(glance: GlanceFactory) -> Any:
    """glanceclient as a member of project B."""
    return glance(B_MEMBER)


@pytest.fixture
def glance_b_reader(glance: GlanceFactory) -> Any:
    """glanceclient as a reader of project B."""
    return glance(B_READER)


@pytest.fixture
def glance_admin(glance: GlanceFactory) -> Any:
    """glanceclient as an admin."""
    return glance(ADMIN)


@pytest.fixture
def tag(http: GlanceHttp) -> Iterator[str]:
    """A tag unique to this test; every image carrying it, hidden or not, is deleted afterwards."""
    value = f"api-{uuid.uuid4().hex[:12]}"
    yield value
    tagged: set[str] = set()
    for hidden in ("false", "true"):
        tagged.update(http.list_ids(tag=value, visibility="all", os_hidden=hidden, limit=1000))
    for image_id in tagged:
        http.purge(image_id)


@pytest.fixture
def created(http: GlanceHttp) -> Iterator[list[str]]:
    """Append ids of images that may not keep the test's tag; they are deleted afterwards."""
    ids: list[str] = []
    yield ids
    for image_id in ids:
        http.purge(image_id)


@pytest.fixture(scope="package")
def notifications(stack: DevStack) -> Iterator[NotificationQueue]:
    """The queue the local bus rule copies every notification to."""
    settings = stack.settings
    assert settings.notification_queue_name is not None
    queue = NotificationQueue(stack.aws_endpoint, settings.aws_region, settings.notification_queue_name)
    yield queue
    queue.close()
