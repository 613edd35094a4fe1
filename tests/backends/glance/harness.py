"""The test Glance's life in a pytest session: install if missing, start against the test Keystone, list it in the
catalog as the ``image`` service, stop.

Any failure fails the tests loudly with the script's own output; ``SGLANCE_SKIP_GLANCE=1`` (checked by the
``real_glance`` fixture in tests/support/glance.py) is the only way to skip them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.backends.keystone.accounts import KeystoneEnv, read_env_file
from tests.support.scripts import run_script as run_folder_script

SCRIPTS = Path(__file__).resolve().parent


@dataclass(frozen=True)
class GlanceEnv:
    """A running test Glance: its URL (the catalog's ``image`` endpoint too) and where its file store keeps bytes."""

    url: str
    run_dir: Path
    images_dir: Path
    install_seconds: float
    start_seconds: float


def run_script(script: str, *args: str | Path, timeout: float) -> str:
    """Run one of this folder's scripts; its stdout, or a loud test failure carrying its output."""
    return run_folder_script(SCRIPTS, script, *args, timeout=timeout, skip_hint="SGLANCE_SKIP_GLANCE=1")


@contextmanager
def running_glance(run_dir: Path, keystone: KeystoneEnv) -> Iterator[GlanceEnv]:
    """Glance started in ``run_dir`` (its service user is the Keystone's ``glance``); stopped on exit."""
    started = time.perf_counter()
    run_script("install.sh", timeout=900)  # ~20 ms when installed, ~90 s cold
    installed = time.perf_counter()
    service = keystone.accounts["glance"]
    settings = run_dir.parent / f"{run_dir.name}.settings"
    settings.touch(mode=0o600)
    memcached = read_env_file(keystone.run_dir / "env").get("MEMCACHED_SERVER", "")
    settings.write_text(
        f"GLANCE_KEYSTONE_URL={keystone.url}\nGLANCE_SERVICE_USER={service.name}\n"
        f"GLANCE_SERVICE_PASSWORD={service.password}\nGLANCE_SERVICE_PROJECT={service.project}\n"
        f"GLANCE_MEMCACHED={memcached}\nGLANCE_REGION={keystone.region}\n"
    )
    run_script("start.sh", run_dir, settings, timeout=180)
    try:
        env = read_env_file(run_dir / "env")
        url = env["GLANCE_URL"]
        with _catalog_entry(keystone, url):
            print(
                f"glance: {url} ready in {time.perf_counter() - installed:.1f} s (+{installed - started:.1f} s install)"
            )
            yield GlanceEnv(
                url, run_dir, Path(env["GLANCE_IMAGES_DIR"]), installed - started, time.perf_counter() - installed
            )
    finally:
        run_script("stop.sh", run_dir, timeout=60)


@contextmanager
def _catalog_entry(keystone: KeystoneEnv, url: str) -> Iterator[None]:
    """The ``image`` service and its public endpoint in the catalog, as a cloud lists its Glance; removed on exit."""
    admin = keystone.accounts["admin"]
    # The catalog is the system's: Keystone's secure-RBAC policy wants a system-scoped admin token for it.
    auth = v3.Password(
        auth_url=keystone.url,
        username=admin.name,
        password=admin.password,
        user_domain_name=admin.domain,
        system_scope="all",
    )
    session = ks_session.Session(auth=auth, timeout=30)
    base = keystone.url
    service = session.post(f"{base}/services", json={"service": {"type": "image", "name": "glance"}}).json()
    service_id = service["service"]["id"]
    body = {"endpoint": {"service_id": service_id, "interface": "public", "url": url, "region_id": keystone.region}}
    session.post(f"{base}/endpoints", json=body)
    try:
        yield
    finally:
        session.delete(f"{base}/services/{service_id}")  # takes its endpoints along
        session.session.close()
