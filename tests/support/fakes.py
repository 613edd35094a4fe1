"""Fakes that record, for unit tests: a work queue that keeps the jobs it is sent."""

from __future__ import annotations

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
