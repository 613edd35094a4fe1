"""Reads Glance notifications from the queue the bus rule copies them to (devstack provisions both)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3

Event = dict[str, Any]


class NotificationQueue:
    """Drains the notification queue into memory; tests pick the events about their own resources."""

    def __init__(self, aws_endpoint: str, region: str, queue_name: str) -> None:
        self._sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name=region)
        self._url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        self.seen: list[Event] = []

    def close(self) -> None:
        """Close the SQS client."""
        self._sqs.close()

    def _drain(self) -> None:
        while True:
            batch = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = batch.get("Messages", [])
            if not messages:
                return
            for message in messages:
                self.seen.append(json.loads(message["Body"]))
            self._sqs.delete_message_batch(
                QueueUrl=self._url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def wait_for(self, keep: Callable[[Event], bool], count: int, timeout_s: float = 15) -> list[Event]:
        """The events ``keep`` selects, in publish order, once at least ``count`` have arrived (or on timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._drain()
            kept = [e for e in self.seen if keep(e)]
            if len(kept) >= count or time.monotonic() > deadline:
                return kept
            time.sleep(0.2)


def about_image(image_id: str) -> Callable[[Event], bool]:
    """Events whose payload is the image, one of its members, its data, or one of its tasks."""

    def keep(event: Event) -> bool:
        payload = event["detail"]["payload"]
        if isinstance(payload, str):
            return image_id in payload
        return image_id in (payload.get("id"), payload.get("image_id"))

    return keep


def types(events: list[Event]) -> list[str]:
    """The ``detail-type`` of each event."""
    return [e["detail-type"] for e in events]
