"""Fakes that record, for unit tests: a work queue that keeps the jobs it is sent, a job launcher that keeps the jobs
it is asked to start."""

from __future__ import annotations

from shared.jobrunner import JobLauncher
from shared.jobs import Job


class ListQueue:
    """Collects jobs instead of sending them to SQS."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    def send(self, job: Job) -> None:
        self.jobs.append(job)

    def take(self) -> list[Job]:
        jobs, self.jobs = self.jobs, []
        return jobs


class RecordingJobLauncher(JobLauncher):
    """A job launcher that keeps the jobs it is asked to start (and their JSON, as a job runner gets it)."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.texts: list[str] = []

    def _launch(self, job: Job, text: str) -> str:
        self.jobs.append(job)
        self.texts.append(text)
        return f"recorded:{len(self.jobs)}"
