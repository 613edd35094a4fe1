"""The job runner port: work that does not fit a Lambda worker's time runs as a job of the same code.

``JobLauncher.launch(job)`` starts ``python -m functions.task_runner`` with the job (``shared.jobs.envelope``) and
returns a reference to the run; the job calls the same service as the worker, under its own deadline
(``job_max_seconds``), so idempotency and status rules are the worker's. Adapters: ``ecs.EcsJobLauncher`` (ECS
RunTask of the job task definition, deployed) and ``local.SubprocessJobLauncher`` (a child process, the local
stack); ``NoJobLauncher`` refuses, so the work fails with the reason on the image (``job_launcher=none``, and
inside a job, which never hands on again).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from shared.jobs import envelope

if TYPE_CHECKING:
    from shared.jobs import Job

# The job's JSON in a job task's environment (Settings.job) and the command that runs it.
JOB_ENV = "SGLANCE_JOB"
TASK_RUNNER_MODULE = "functions.task_runner"


class JobLaunchError(Exception):
    """No job could be started for the work (no runner configured, or the runner refused)."""


def job_text(job: Job) -> str:
    """The job as the task runner reads it (argv or ``SGLANCE_JOB``)."""
    return json.dumps(envelope(job), separators=(",", ":"), sort_keys=True)


class JobLauncher(ABC):
    """Starts jobs; every adapter runs ``python -m functions.task_runner <job>`` somewhere."""

    def launch(self, job: Job) -> str:
        """Start one run of ``job``; returns a reference to it (an ECS task ARN, ``local:<pid>``).

        Raises:
            JobLaunchError: the job could not be started.
        """
        return self._launch(job, job_text(job))

    @abstractmethod
    def _launch(self, job: Job, text: str) -> str:
        """Start the run of ``job`` (``text``: its JSON)."""


class NoJobLauncher(JobLauncher):
    """Starts nothing: the work that does not fit fails with ``reason``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _launch(self, job: Job, text: str) -> str:
        raise JobLaunchError(self.reason)
