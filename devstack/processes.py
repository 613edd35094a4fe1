"""The stack's own child processes (the data plane, the front door): started on a socket the stack bound, stopped by
their pid, and gone with the stack even when it dies without stopping them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from http.client import HTTPConnection, HTTPException

# How long a child has to answer its first request, and to stop after SIGTERM before it is killed.
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_PARENT_POLL_S = 0.5


class ChildStartError(RuntimeError):
    """A child process did not start (it exited, or never answered)."""


class ChildProcess:
    """``python -m <module> --fd N ...`` serving on ``sock`` (bound and listening here, so its port is known and
    "address in use" is found before the child starts); the environment is this process's."""

    def __init__(self, name: str, module: str, sock: socket.socket, args: Sequence[str] = ()) -> None:
        self.name = name
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        command = [sys.executable, "-m", module, "--fd", str(sock.fileno()), "--parent-pid", str(os.getpid()), *args]
        try:
            self._process = subprocess.Popen(command, pass_fds=(sock.fileno(),))
        finally:
            sock.close()  # the child holds its own copy

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._process.pid

    def wait_ready(self, path: str = "/", timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until the child answers an HTTP request for ``path`` (any status); raises if it exits or times out."""
        host, _, port = self.url.removeprefix("http://").partition(":")
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise ChildStartError(f"the {self.name} exited with status {self._process.returncode}; see its log")
            connection = HTTPConnection(host, int(port), timeout=2)
            try:
                connection.request("GET", path)
                connection.getresponse().read()
                return
            except (OSError, HTTPException):
                if time.monotonic() > deadline:
                    self.stop()
                    raise ChildStartError(f"the {self.name} did not answer within {timeout:.0f} s") from None
                time.sleep(0.1)
            finally:
                connection.close()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``STOP_TIMEOUT_S``."""
        if self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def listening_socket(fd: int) -> socket.socket:
    """The listening socket a ``ChildProcess`` passed down as ``--fd``."""
    return socket.socket(fileno=fd)


def exit_with_parent(parent_pid: int) -> None:
    """SIGTERM this process when ``parent_pid`` is gone (the stack died without stopping its children)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_POLL_S)
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
