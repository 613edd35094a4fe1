"""Sending jobs to an SQS work queue (the client and the queue URL are looked up on first use)."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any


class WorkQueue:
    """One SQS queue that a worker function consumes."""

    def __init__(self, name: str, region: str, endpoint_url: str | None = None, client: Any | None = None) -> None:
        self.name = name
        self._region = region
        self._endpoint_url = endpoint_url
        if client is not None:
            self.__dict__["client"] = client

    @cached_property
    def client(self) -> Any:
        """The SQS client."""
        import boto3

        return boto3.client("sqs", region_name=self._region, endpoint_url=self._endpoint_url)

    @cached_property
    def url(self) -> str:
        """The queue URL."""
        url: str = self.client.get_queue_url(QueueName=self.name)["QueueUrl"]
        return url

    def send(self, job: dict[str, Any]) -> None:
        """Queue one job (a JSON object)."""
        self.client.send_message(QueueUrl=self.url, MessageBody=json.dumps(job, sort_keys=True))
