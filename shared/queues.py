"""Sending jobs (``shared/jobs.py``) to an SQS work queue; the queue URL is looked up on first use."""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.jobs import Job


class WorkQueue:
    """One SQS queue that a worker function consumes; ``client`` makes the SQS client (on the first send)."""

    def __init__(self, name: str, client: Callable[[], Any]) -> None:
        self.name = name
        self._make_client = client

    @cached_property
    def client(self) -> Any:
        """The SQS client."""
        return self._make_client()

    @cached_property
    def url(self) -> str:
        """The queue URL."""
        url: str = self.client.get_queue_url(QueueName=self.name)["QueueUrl"]
        return url

    def send(self, job: Job) -> None:
        """Queue one job."""
        self.client.send_message(QueueUrl=self.url, MessageBody=json.dumps(job.message(), sort_keys=True))
