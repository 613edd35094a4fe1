"""A real Ceph RADOS Gateway for the tests (pytest plugin, registered in tests/conftest.py).

- ``rgw`` (session): one mon, one memstore OSD and radosgw on 127.0.0.1 from ``tests/backends/ceph`` (installed on
  first use if ``radosgw`` is missing), its ``env`` file as a dict: ``CEPH_S3_ENDPOINT``, ``CEPH_S3_REGION``,
  ``CEPH_S3_ACCESS_KEY``, ``CEPH_S3_SECRET_KEY``. Started on first use, stopped at the end of the session; 2-3 s to
  start. ``SGLANCE_SKIP_RGW=1`` skips its tests on purpose; any other failure to start fails them loudly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.scripts import run_script

CEPH_SCRIPTS = Path(__file__).resolve().parents[1] / "backends" / "ceph"


def _run(script: str, *args: str | Path, timeout: float) -> str:
    """Run one of the ceph scripts; any failure fails the tests loudly, with the script's own words."""
    return run_script(CEPH_SCRIPTS, script, *args, timeout=timeout, skip_hint="SGLANCE_SKIP_RGW=1")


@pytest.fixture(scope="session")
def rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running RADOS Gateway for the session: its ``env`` file (endpoint, region, keys) as a dict."""
    if os.environ.get("SGLANCE_SKIP_RGW") == "1":
        pytest.skip("SGLANCE_SKIP_RGW=1: tests against a real Ceph RGW skipped")
    if shutil.which("radosgw") is None:
        _run("install.sh", timeout=540)
    run_dir = tmp_path_factory.mktemp("rgw")
    _run("start.sh", run_dir, timeout=180)
    try:
        lines = (run_dir / "env").read_text().splitlines()
        yield dict(line.split("=", 1) for line in lines if "=" in line)
    finally:
        _run("stop.sh", run_dir, timeout=60)
