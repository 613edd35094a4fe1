"""Keystone mode for the local stack: the API validates real tokens, so every ``openstack image ...`` command
(``image add project``, ``image set --accept``, ...) works as it does in a cloud.

Two ways, chosen on ``python -m devstack``'s command line:

- ``--keystone``: start the Keystone 30 the tests use (tests/backends/keystone: its own virtualenv in
  ``~/.cache/sglance/keystone-venv``, memcached, gunicorn on a free loopback port, state under the stack's folder),
  create its accounts (an admin, members of two projects, a reader, the ``glance`` service user), register the
  stack as the catalog's ``image`` endpoint and write a clouds.yaml with one cloud per account.
- ``--keystone-url URL``: a Keystone the user names. The service user that validates tokens comes from the usual
  settings (``SGLANCE_KEYSTONE_SERVICE_USERNAME``, ``..._PASSWORD``, ``..._PROJECT_NAME``); the catalog is left
  alone, and the printed clouds.yaml sends image calls to the local stack with ``image_endpoint_override``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from pydantic import SecretStr

if TYPE_CHECKING:
    from tests.backends.keystone.accounts import KeystoneEnv

REPO = Path(__file__).resolve().parent.parent
KEYSTONE_SCRIPTS = REPO / "tests" / "backends" / "keystone"
# clouds.yaml names: the cloud of account "member-a" is "sglance-member-a".
CLOUD_PREFIX = "sglance-"
# The accounts printed, in this order (tests/backends/keystone/accounts.py creates them).
LISTED_ACCOUNTS = ("admin", "member-a", "member-b", "reader-a")


class KeystoneModeError(RuntimeError):
    """The Keystone could not be installed, started or set up (the message carries the script's output)."""


@dataclass(frozen=True)
class Cloud:
    """One clouds.yaml entry: an account and the project its tokens are scoped to."""

    name: str
    username: str
    password: str
    project_name: str | None
    project_id: str | None = None


@dataclass(frozen=True)
class KeystoneMode:
    """What the API needs to validate tokens against a Keystone, and the clouds a user can log in as."""

    url: str
    region: str
    # Settings overrides (shared/config.py names) that put the API in Keystone mode.
    settings: Mapping[str, Any]
    clouds: tuple[Cloud, ...] = ()
    # Set when this process started the Keystone: its run folder (logs in log/).
    run_dir: Path | None = None
    projects: Mapping[str, str] = field(default_factory=dict)


def named_keystone(url: str, region: str = "RegionOne") -> KeystoneMode:
    """A Keystone the user runs: tokens are validated as the service user the ``SGLANCE_KEYSTONE_*`` settings name."""
    url = url.rstrip("/")
    return KeystoneMode(url=url, region=region, settings={"auth_mode": "keystone", "keystone_url": url})


@contextmanager
def started_keystone(run_dir: Path) -> Iterator[KeystoneMode]:
    """The tests' Keystone, installed if missing and started in ``run_dir`` with its accounts; stopped on exit."""
    from tests.backends.keystone.accounts import create_accounts, read_env_file

    _script("install.sh", timeout=900)
    _script("start.sh", run_dir, timeout=180)
    try:
        values = read_env_file(run_dir / "env")
        env = create_accounts(
            values["KEYSTONE_URL"], values["KEYSTONE_REGION"], values["KEYSTONE_ADMIN_PASSWORD"], run_dir
        )
        yield mode_for(env)
    finally:
        _script("stop.sh", run_dir, timeout=60)


def mode_for(env: KeystoneEnv) -> KeystoneMode:
    """Keystone mode for the tests' Keystone (its accounts as clouds, ``glance`` validating tokens)."""
    clouds = tuple(
        Cloud(CLOUD_PREFIX + name, name, account.password, account.project, account.project_id)
        for name in LISTED_ACCOUNTS
        for account in (env.accounts[name],)
    )
    return KeystoneMode(
        url=env.url,
        region=env.region,
        settings={**env.settings(), "keystone_service_password": SecretStr(env.accounts["glance"].password)},
        clouds=clouds,
        run_dir=env.run_dir,
        projects=env.projects,
    )


def admin_session(mode: KeystoneMode) -> ks_session.Session:
    """A keystoneauth session of the admin cloud (only for a Keystone this process started)."""
    admin = next(cloud for cloud in mode.clouds if cloud.username == "admin")
    auth = v3.Password(
        auth_url=mode.url,
        username=admin.username,
        password=admin.password,
        user_domain_name="Default",
        project_name=admin.project_name,
        project_domain_name="Default",
    )
    return ks_session.Session(auth=auth, session=requests.Session(), timeout=30)


def register_endpoint(
    session: ks_session.Session, url: str, region: str, service_type: str = "image"
) -> dict[str, str | None]:
    """Make ``url`` the public, internal and admin endpoint of ``service_type`` in the catalog (idempotent); returns
    what each interface pointed at before (None: no such endpoint), for ``restore_endpoints``."""
    base = _identity_url(session)
    services = session.get(f"{base}/services", params={"type": service_type}).json()["services"]
    if services:
        service_id = services[0]["id"]
    else:
        body = {"service": {"type": service_type, "name": "glance" if service_type == "image" else service_type}}
        service_id = session.post(f"{base}/services", json=body).json()["service"]["id"]
    existing = session.get(f"{base}/endpoints", params={"service_id": service_id}).json()["endpoints"]
    by_interface = {endpoint["interface"]: endpoint for endpoint in existing}
    previous: dict[str, str | None] = {}
    for interface in ("public", "internal", "admin"):
        endpoint = by_interface.get(interface)
        previous[interface] = None if endpoint is None else endpoint["url"]
        if endpoint is None:
            body = {"endpoint": {"service_id": service_id, "interface": interface, "url": url, "region_id": region}}
            session.post(f"{base}/endpoints", json=body)
        elif endpoint["url"] != url:
            session.patch(f"{base}/endpoints/{endpoint['id']}", json={"endpoint": {"url": url}})
    return previous


def restore_endpoints(
    session: ks_session.Session, previous: dict[str, str | None], service_type: str = "image"
) -> None:
    """Put the catalog's ``service_type`` endpoints back as ``register_endpoint`` found them (a Keystone shared with
    other users, or with other tests, keeps pointing at a live service)."""
    base = _identity_url(session)
    for service in session.get(f"{base}/services", params={"type": service_type}).json()["services"][:1]:
        endpoints = session.get(f"{base}/endpoints", params={"service_id": service["id"]}).json()["endpoints"]
        for endpoint in endpoints:
            before = previous.get(endpoint["interface"], endpoint["url"])
            if before is None:
                session.delete(f"{base}/endpoints/{endpoint['id']}")
            elif before != endpoint["url"]:
                session.patch(f"{base}/endpoints/{endpoint['id']}", json={"endpoint": {"url": before}})


def clouds_yaml(mode: KeystoneMode, image_endpoint: str) -> str:
    """A clouds.yaml with one cloud per account (for a named Keystone: one to fill in)."""
    clouds = mode.clouds or (Cloud(f"{CLOUD_PREFIX}local", "<your user>", "<your password>", "<your project>"),)
    lines = ["clouds:"]
    for cloud in clouds:
        lines += [
            f"  {cloud.name}:",
            f"    region_name: {mode.region}",
            "    identity_api_version: 3",
            "    image_api_version: 2",
            # The catalog of a Keystone we did not set up may name another image service.
            f"    image_endpoint_override: {image_endpoint}",
            "    auth:",
            f"      auth_url: {mode.url}",
            f"      username: {cloud.username}",
            f"      password: {cloud.password}",
            "      user_domain_name: Default",
        ]
        if cloud.project_name is not None:
            lines += [f"      project_name: {cloud.project_name}", "      project_domain_name: Default"]
    return "\n".join(lines) + "\n"


def write_clouds_yaml(mode: KeystoneMode, image_endpoint: str, path: Path) -> Path:
    """Write ``clouds_yaml`` to ``path`` readable by its owner only (it holds passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(clouds_yaml(mode, image_endpoint))
    return path


def _identity_url(session: ks_session.Session) -> str:
    url = session.get_endpoint(service_type="identity", interface="public")
    assert url is not None
    return str(url).rstrip("/").removesuffix("/v3") + "/v3"


def _script(name: str, *args: str | Path, timeout: float) -> str:
    command = ["bash", str(KEYSTONE_SCRIPTS / name), *map(str, args)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise KeystoneModeError(f"{name} did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise KeystoneModeError(
            f"{name} failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        )
    return done.stdout
