"""Ceph RBD on the test cluster (pytest plugin, registered in tests/conftest.py).

- ``rbd_cluster`` (session): the ``rgw`` fixture's one-node cluster (tests/backends/ceph) with the pool ``images``
  made for RBD (application ``rbd``, ``rbd pool init``), as an ``RbdCluster``: the ceph.conf path, the pool, the
  cluster's fsid, the ``rados``/``rbd`` modules and an ``ioctx()`` on the pool for looking behind the driver. The
  modules come from ``shared.stores.rbd_bindings.load_bindings``: Debian's python3-rbd extension modules, loaded by path
  (never all of dist-packages on ``sys.path``). ``SGLANCE_SKIP_RGW=1`` skips its tests as it does ``rgw``'s.

Those modules are built for one Python: Debian 12's python3-rbd for its Python 3.11, where the project runs on 3.13.
When this interpreter cannot load them, every collected test that needs ``rbd_cluster`` is replaced by an
``RbdChildItem`` of the same node id: the first one runs all of them, once, in a child pytest on the interpreter
the bindings were built for (the virtualenv ``tests/backends/ceph/rbd-python.sh`` makes; ``SGLANCE_RBD_PYTHON``
names another), and each one reports the child's outcome of its test as its own: passed, failed with the child's
traceback, or skipped with the child's reason. Tests of the RBD driver that need no cluster run here as usual.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.stores.errors import StoreConfigError
from shared.stores.rbd_bindings import load_bindings
from tests.support.scripts import run_script

POOL = "images"
REPO_ROOT = Path(__file__).resolve().parents[2]
CEPH_SCRIPTS = REPO_ROOT / "tests" / "backends" / "ceph"
# Set in the child pytest: where it appends one JSON line per test phase for its parent to read.
REPORT_ENV = "SGLANCE_RBD_CHILD_REPORT"
# The whole child run: the cluster's start plus every RBD test (each also bound by its own timeout there).
CHILD_TIMEOUT_S = 1500


@dataclass(frozen=True)
class RbdCluster:
    """The test cluster as an RBD store sees it."""

    conffile: str
    pool: str
    fsid: str
    rados: Any
    rbd: Any
    handle: Any

    @contextlib.contextmanager
    def ioctx(self) -> Iterator[Any]:
        """An I/O context on the pool."""
        ioctx = self.handle.open_ioctx(self.pool)
        try:
            yield ioctx
        finally:
            ioctx.close()


def _make_rbd_pool(rbd: Any, handle: Any, pool: str) -> None:
    for command in (
        {"prefix": "osd pool create", "pool": pool, "pg_num": 8, "pgp_num": 8},
        {"prefix": "osd pool application enable", "pool": pool, "app": "rbd"},
    ):
        rc, _, err = handle.mon_command(json.dumps(command), b"")
        if rc not in (0, -17):  # -17: exists
            pytest.fail(f"ceph {command['prefix']} {pool}: {rc} {err}", pytrace=False)
    with handle.open_ioctx(pool) as ioctx:
        # a written probe proves the pool's placement groups are active (no mgr reports their states)
        ioctx.write_full("sglance-probe", b"x")
        ioctx.remove_object("sglance-probe")
        rbd.RBD().pool_init(ioctx, False)


@pytest.fixture(scope="session")
def rbd_cluster(rgw: dict[str, str]) -> Iterator[RbdCluster]:
    """The ``rgw`` cluster with the RBD pool ``images``, and a librados handle on it."""
    rados, rbd = load_bindings()
    handle = rados.Rados(conffile=rgw["CEPH_CONF"], conf={"rados_osd_op_timeout": "30", "rados_mon_op_timeout": "30"})
    handle.connect(timeout=10)
    try:
        _make_rbd_pool(rbd, handle, POOL)
        yield RbdCluster(rgw["CEPH_CONF"], POOL, str(handle.get_fsid()), rados, rbd, handle)
    finally:
        handle.shutdown()


# -- the RBD tests on the interpreter the bindings were built for --------------------------------------------------


def _bindings_load_here() -> bool:
    try:
        load_bindings()
    except StoreConfigError:
        return False
    return True


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so the proxies are what they select from
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Replace the tests that need ``rbd_cluster`` by proxies when this interpreter cannot load the bindings."""
    if os.environ.get(REPORT_ENV):
        return  # the child itself
    wanted = [item for item in items if "rbd_cluster" in getattr(item, "fixturenames", ())]
    if not wanted or _bindings_load_here():
        return
    child = _RbdChild(session)
    proxies = {
        id(item): RbdChildItem.from_parent(item.parent, name=item.name, child=child, original=item) for item in wanted
    }
    items[:] = [proxies.get(id(item), item) for item in items]


class RbdChildItem(pytest.Item):
    """One RBD test, run by the child pytest; reports the child's outcome of the test with the same node id."""

    def __init__(self, *, child: _RbdChild, original: pytest.Item, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.child = child
        self.child_nodeid = original.nodeid
        self.location_of = original.location
        for mark in original.own_markers:  # what -m selects on, as on the original
            self.own_markers.append(mark)
            self.keywords[mark.name] = mark
        self.add_marker(pytest.mark.timeout(CHILD_TIMEOUT_S + 60))  # the first proxy waits for the whole child
        self.extra_keyword_matches.update(original.extra_keyword_matches)

    def runtest(self) -> None:
        """Pass, fail or skip as the child's run of the same test did."""
        phases = self.child.results().get(self.child_nodeid)
        if not phases:
            pytest.fail(f"the RBD child pytest did not run {self.child_nodeid}:\n{self.child.output}", pytrace=False)
        where = f"(run by {self.child.python}, the Python Debian's python3-rbd is built for)"
        for phase in phases:
            if phase["outcome"] == "failed":
                pytest.fail(f"{phase['when']} failed {where}:\n{phase['longrepr']}", pytrace=False)
        for phase in phases:
            if phase["outcome"] == "skipped":
                pytest.skip(f"{phase['longrepr']} {where}")

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        """Where the test is (the original's location)."""
        path, line, name = self.location_of
        return path, line, name


class _RbdChild:
    """The child pytest of every selected RBD test, run once on first use."""

    def __init__(self, session: pytest.Session) -> None:
        self.session = session
        self.python = os.environ.get("SGLANCE_RBD_PYTHON", "")
        self.output = ""
        self._results: dict[str, list[dict[str, str]]] | None = None
        self._outcome: BaseException | None = None  # a skip or failure of the run itself, for every proxy

    def results(self) -> dict[str, list[dict[str, str]]]:
        """Node id -> its phases' outcomes (setup, call, teardown) in the child."""
        if self._outcome is not None:
            raise self._outcome
        if self._results is None:
            try:
                self._results = self._run()
            except BaseException as exc:  # pytest's skip and fail outcomes are BaseExceptions
                self._outcome = exc
                raise
        return self._results

    def _run(self) -> dict[str, list[dict[str, str]]]:
        if os.environ.get("SGLANCE_SKIP_RGW") == "1":
            pytest.skip("SGLANCE_SKIP_RGW=1: tests against a real Ceph cluster skipped")
        if not self.python:
            lines = run_script(CEPH_SCRIPTS, "rbd-python.sh", timeout=600, skip_hint="SGLANCE_SKIP_RGW=1").split()
            self.python = lines[-1]
        nodeids = [item.child_nodeid for item in self.session.items if isinstance(item, RbdChildItem)]
        with tempfile.TemporaryDirectory(prefix="sglance-rbd-child-") as folder:
            return self._run_child(nodeids, Path(folder) / "report.jsonl")

    def _run_child(self, nodeids: list[str], report: Path) -> dict[str, list[dict[str, str]]]:
        command = [
            self.python, "-m", "pytest", "-p", "no:cacheprovider", "--noconftest",
            "-p", "tests.support.rgw", "-p", "tests.support.rbd", "-q", "-rN", *nodeids,
        ]  # fmt: skip
        env = {**os.environ, REPORT_ENV: str(report)}
        try:
            done = subprocess.run(
                command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"the RBD child pytest did not finish in {CHILD_TIMEOUT_S} s: {exc.stdout!r}", pytrace=False)
        self.output = (done.stdout + done.stderr)[-6000:]
        results: dict[str, list[dict[str, str]]] = {}
        if report.exists():
            for line in report.read_text().splitlines():
                phase = json.loads(line)
                results.setdefault(phase.pop("nodeid"), []).append(phase)
        return results


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """In the child: one JSON line per phase of every test, for the parent's proxies."""
    path = os.environ.get(REPORT_ENV)
    if not path:
        return
    # a skip's longrepr is (path, line, reason): the reason alone
    skipped = report.skipped and isinstance(report.longrepr, tuple)
    text = str(report.longrepr[2]) if skipped else report.longreprtext  # type: ignore[index]
    line = {"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome, "longrepr": text}
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
