"""A real Swift for the tests (pytest plugin, registered in tests/conftest.py).

- ``swift`` (session): a one-node Swift on 127.0.0.1 from ``tests/backends/swift`` (installed on first use if
  missing; tempauth, SLO, DLO; every port free at start), its ``env`` file as a dict (``SWIFT_AUTH_URL``,
  ``SWIFT_USER``, ``SWIFT_KEY``, ``SWIFT_STORAGE_URL``, ``SWIFT_PROXY_PORT``, ``SWIFT_RUN_DIR``, ...). About 5 s to
  start. ``SGLANCE_SKIP_SWIFT=1`` skips its tests; any other failure fails them loudly.
- ``swift_proxy`` (function): a ``SwiftProxy`` that SIGKILLs the running proxy server and relaunches it with the
  same command line ("the target dies mid-copy"); after the test the proxy is running again, whatever happened.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.scripts import run_script

SWIFT_SCRIPTS = Path(__file__).resolve().parents[1] / "backends" / "swift"


def _run(script: str, *args: str | Path, timeout: float) -> str:
    return run_script(SWIFT_SCRIPTS, script, *args, timeout=timeout, skip_hint="SGLANCE_SKIP_SWIFT=1")


def read_env(path: Path) -> dict[str, str]:
    """A ``KEY=VALUE`` file as a dict."""
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="session")
def swift(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running Swift for the session: its ``env`` file (auth URL, user, key, storage URL, ports) as a dict."""
    if os.environ.get("SGLANCE_SKIP_SWIFT") == "1":
        pytest.skip("SGLANCE_SKIP_SWIFT=1: tests against a real Swift skipped")
    if shutil.which("swift-proxy-server") is None:
        _run("install.sh", timeout=540)
    run_dir = tmp_path_factory.mktemp("swift")
    _run("start.sh", run_dir, timeout=120)
    try:
        yield read_env(run_dir / "env")
    finally:
        _run("stop.sh", run_dir, timeout=60)


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (PID 1 may reap our reparented servers late)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class SwiftProxy:
    """The proxy server of a ``start.sh`` run: kill it (SIGKILL, as a crash) and start it again."""

    def __init__(self, env: dict[str, str]) -> None:
        self.run_dir = Path(env["SWIFT_RUN_DIR"])
        self.port = int(env["SWIFT_PROXY_PORT"])
        self._command: list[str] | None = None

    def pid(self) -> int | None:
        """The running proxy's PID (from the run's pid file), or None."""
        for line in (self.run_dir / "pids").read_text().split():
            pid = int(line)
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(b"swift-proxy-server") for part in command) and _running(pid):
                return pid
        return None

    def kill(self) -> None:
        """SIGKILL the proxy (no graceful shutdown: open connections break) and wait until it is gone."""
        pid = self.pid()
        if pid is None:
            raise RuntimeError(f"no running Swift proxy in {self.run_dir}/pids")
        self._command = [part.decode() for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if part]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _running(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Swift proxy (pid {pid}) survived SIGKILL for 10 s")
            time.sleep(0.02)

    def start(self, timeout: float = 30) -> None:
        """Relaunch the killed proxy with the same command line; returns once its healthcheck answers."""
        if self._command is None:
            raise RuntimeError("start() relaunches a proxy that kill() stopped")
        log = self.run_dir / "log" / "proxy.log"
        # as start.sh launches it: own session, reparented to PID 1 once this bash exits (no Popen to reap)
        launched = subprocess.run(
            ["bash", "-c", 'log=$1; shift; setsid "$@" >>"$log" 2>&1 </dev/null & echo $!', "bash", str(log)]
            + self._command,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        pid = int(launched.stdout.strip())
        pids = self.run_dir / "pids"
        pids.write_text("".join(f"{line}\n" for line in pids.read_text().split() if _running(int(line))) + f"{pid}\n")
        deadline = time.monotonic() + timeout
        while True:
            if not _running(pid):
                raise RuntimeError(f"the relaunched Swift proxy exited; see {log}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthcheck", timeout=1) as answer:
                    answer.read()
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the relaunched Swift proxy did not answer in {timeout:.0f} s") from None
                time.sleep(0.05)
        self._command = None

    @property
    def down(self) -> bool:
        """True between ``kill()`` and ``start()``."""
        return self._command is not None

    @contextmanager
    def killed(self) -> Iterator[None]:
        """The proxy is down inside the block and running again after it."""
        self.kill()
        try:
            yield
        finally:
            self.start()


@pytest.fixture
def swift_proxy(swift: dict[str, str]) -> Iterator[SwiftProxy]:
    """The session Swift's proxy, to kill and restart; running again after the test."""
    proxy = SwiftProxy(swift)
    try:
        yield proxy
    finally:
        if proxy.down:
            proxy.start()
