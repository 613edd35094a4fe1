"""Local adapter of the job runner: the job as a child process of the local stack, ``python -m functions.task_runner``.

The child inherits the stack's environment (the emulator endpoint and credentials the handlers see) and gets the job
as its argument, exactly the command an ECS job runs. Each child is reaped by a thread of its own when it exits;
``wait`` waits for all of them.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import TYPE_CHECKING

from shared.jobrunner import TASK_RUNNER_MODULE, JobLauncher, JobLaunchError

if TYPE_CHECKING:
    from shared.jobs import Job


class SubprocessJobLauncher(JobLauncher):
    """Runs each job in a new Python process (this interpreter) with the current directory's code."""

    def __init__(self, python: str = sys.executable, cwd: str | None = None) -> None:
        self.python = python
        self.cwd = cwd
        self._children: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()

    def _launch(self, job: Job, text: str) -> str:
        try:
            child = subprocess.Popen([self.python, "-m", TASK_RUNNER_MODULE, text], cwd=self.cwd)  # noqa: S603
        except OSError as exc:
            raise JobLaunchError(f"could not start the local job: {exc}") from exc
        # Reaped as soon as it exits, whoever holds the launcher then (no zombie, no unreaped child at shutdown).
        threading.Thread(target=child.wait, name=f"job-{child.pid}", daemon=True).start()
        with self._lock:
            self._children = [c for c in self._children if c.poll() is None]
            self._children.append(child)
        return f"local:{child.pid}"

    def wait(self, timeout_s: float | None = None) -> list[int]:
        """Wait for every job started so far; their exit codes."""
        with self._lock:
            children, self._children = self._children, []
        return [child.wait(timeout_s) for child in children]
