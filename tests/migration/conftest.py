"""Fixtures of the migration tests: a real Glance 33 full of images, our local stack as the target, both behind the
same real Keystone, and the ``sglance`` command run as a user would, from a clouds.yaml.

- ``target`` (package): a ``DevStack`` whose API validates Keystone tokens (the ``keystone`` fixture's, as its
  service user ``glance``), on resources named for this folder, with 8 MiB multipart parts so that the big images
  are sent in several parts.
- ``clouds`` (package): a clouds.yaml with ``glance-admin`` / ``glance-member-a`` (the catalog's image service:
  the real Glance) and ``sglance-admin`` / ``sglance-member-a`` (the same accounts, ``image_endpoint_override``
  pointing at the target), as an operator writes one before the catalog is switched.
- ``users`` (package): Glance's API as the test accounts; ``corpus`` (package): the images of ``corpus.specs()``.
- ``sglance`` / ``openstack`` (package): run the command with ``OS_CLIENT_CONFIG_FILE`` set to ``clouds`` and no
  other ``OS_*`` variable; ``admin`` (package): both APIs as the admin, for looking at the results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from devstack.stack import DevStack
from functions.api.app import create_app
from shared.auth.keystone import KeystoneAuthenticator
from shared.config import Settings
from tests.backends.glance.harness import GlanceEnv
from tests.backends.keystone.accounts import KeystoneEnv
from tests.migration.corpus import GlanceImages, GlanceUsers, create_corpus

MiB = 1024 * 1024
BIN = Path(sys.executable).parent
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="package")
def target(keystone: KeystoneEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """The local stack with Keystone auth in its API, on resources of its own."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "SGLANCE_TABLE_NAME": f"migrate-{suffix}",
        "SGLANCE_IMAGE_BUCKET": f"migrate-{suffix}",
        "SGLANCE_UPLOAD_QUEUE_NAME": f"migrate-upload-{suffix}",
        "SGLANCE_STORE_SYNC_QUEUE_NAME": f"migrate-sync-{suffix}",
        "SGLANCE_IMPORT_QUEUE_NAME": f"migrate-import-{suffix}",
        "SGLANCE_EVENT_BUS_NAME": f"migrate-events-{suffix}",
        "SGLANCE_NOTIFICATION_QUEUE_NAME": f"migrate-notifications-{suffix}",
        "SGLANCE_MULTIPART_PART_SIZE": str(8 * MiB),
    }
    apps: list[Any] = []

    def keystone_app(settings: Settings) -> Any:
        # The stack runs its handlers as it always does; only the API validates tokens, as deployed.
        app = create_app(Settings.model_validate({**settings.model_dump(), **keystone.settings()}))
        apps.append(app)
        return app

    with pytest.MonkeyPatch.context() as env:
        for name, value in names.items():
            env.setenv(name, value)
        state = tmp_path_factory.mktemp("migrate-stack")
        try:
            # The data plane off (the deployment's off switch): its process would run on the stack's environment,
            # without the Keystone settings this app factory adds; downloads then redirect, as deployed without it.
            with DevStack(api_port=0, aws_port=0, state_dir=state, app_factory=keystone_app, data_plane=False) as stack:
                yield stack
        finally:
            for app in apps:
                authenticator = app.state.container.authenticator
                if isinstance(authenticator, KeystoneAuthenticator):
                    authenticator.close()


@pytest.fixture(scope="package")
def clouds(
    keystone: KeystoneEnv, real_glance: GlanceEnv, target: DevStack, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """clouds.yaml: the Glance side through the catalog, the target side through an endpoint override."""
    entries: dict[str, Any] = {}
    for account in ("admin", "member-a"):
        cloud = {"auth": keystone.accounts[account].auth(keystone.url), "region_name": keystone.region}
        cloud["identity_api_version"] = 3
        entries[f"glance-{account}"] = cloud
        entries[f"sglance-{account}"] = {**cloud, "image_endpoint_override": target.endpoint}
    path: Path = tmp_path_factory.mktemp("clouds") / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": entries}))
    path.chmod(0o600)
    return path


def _environment(clouds: Path) -> dict[str, str]:
    # A clouds.yaml or OS_* variables of the person running the tests must not redirect the commands.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "SGLANCE_"))}
    return {**env, "OS_CLIENT_CONFIG_FILE": str(clouds)}


@pytest.fixture(scope="package")
def sglance(clouds: Path) -> Run:
    """``sglance(*args)``: the command, finished (at most 5 minutes), its output captured."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = [str(BIN / "sglance"), *args]
        return subprocess.run(
            command, capture_output=True, text=True, env=_environment(clouds), timeout=timeout, check=False
        )

    return run


@pytest.fixture(scope="package")
def sglance_background(clouds: Path) -> Callable[..., subprocess.Popen[str]]:
    """``sglance_background(*args)``: the command, started (the test stops it)."""

    def start(*args: str) -> subprocess.Popen[str]:
        command = [str(BIN / "sglance"), *args]
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment(clouds)
        )

    return start


@pytest.fixture(scope="package")
def openstack(clouds: Path) -> Run:
    """``openstack(*args)``: python-openstackclient, with this project's plugin installed."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        command = [str(BIN / "openstack"), *args]
        return subprocess.run(
            command, capture_output=True, text=True, env=_environment(clouds), timeout=timeout, check=False
        )

    return run


@dataclass
class Sides:
    """Both image APIs as one account."""

    session: ks_session.Session
    glance: str
    target: str

    def get(self, side: str, path: str) -> Any:
        """``GET`` on ``glance`` or ``target``; the JSON (None on 404)."""
        base = self.glance if side == "glance" else self.target
        response = self.session.get(base + path, raise_exc=False)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def image(self, side: str, image_id: str) -> dict[str, Any] | None:
        """One image as that side shows it."""
        found: dict[str, Any] | None = self.get(side, f"/v2/images/{image_id}")
        return found

    def members(self, side: str, image_id: str) -> dict[str, str]:
        """The image's members and their status."""
        return {m["member_id"]: m["status"] for m in self.get(side, f"/v2/images/{image_id}/members")["members"]}

    def upload(self, image_id: str) -> dict[str, Any] | None:
        """The target's open upload of the image (``GET /upload``), if any."""
        found: dict[str, Any] | None = self.get("target", f"/v2/images/{image_id}/upload")
        return found


@pytest.fixture(scope="package")
def admin_session(keystone: KeystoneEnv) -> Iterator[ks_session.Session]:
    """A keystoneauth session of the admin (scoped to project-a)."""
    session = ks_session.Session(auth=v3.Password(**keystone.accounts["admin"].auth(keystone.url)), timeout=60)
    yield session
    session.session.close()


@pytest.fixture(scope="package")
def admin(admin_session: ks_session.Session, real_glance: GlanceEnv, target: DevStack) -> Sides:
    """The admin's view of both sides."""
    return Sides(admin_session, real_glance.url, target.endpoint)


@pytest.fixture(scope="package")
def target_admin(admin_session: ks_session.Session, target: DevStack) -> Sides:
    """The admin's view of the target only (no Glance needed)."""
    return Sides(admin_session, "", target.endpoint)


@pytest.fixture(scope="package")
def users(keystone: KeystoneEnv, real_glance: GlanceEnv) -> Iterator[GlanceUsers]:
    """Glance's API as the test accounts."""
    made = GlanceUsers(keystone, real_glance.url)
    yield made
    made.close()


@pytest.fixture(scope="package")
def corpus(users: GlanceUsers) -> GlanceImages:
    """The images of ``corpus.specs()`` in the real Glance."""
    return create_corpus(users)


def report_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON report ``sglance migrate --format json`` printed (the run's stderr in the failure message)."""
    assert done.stdout.strip(), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report
