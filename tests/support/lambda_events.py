"""What Lambda hands a handler, for tests that call one directly: an SQS record of an event source mapping, and
the invocation context (the attributes the handlers and Powertools read)."""

from __future__ import annotations

import json
from typing import Any

ACCOUNT = "123456789012"


def sqs_record(message_id: str, body: dict[str, Any], region: str = "us-east-1") -> dict[str, Any]:
    """One record of an SQS batch from the upload-complete queue, holding ``body`` as JSON."""
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{region}:{ACCOUNT}:sglance-upload-complete",
        "awsRegion": region,
    }


class LambdaContext:
    """The context of one invocation of ``function_name`` with ``remaining_ms`` left before its timeout."""

    memory_limit_in_mb = 1024
    aws_request_id = "req-test"

    def __init__(self, function_name: str, remaining_ms: int = 60_000) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}"
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        """What the handler asks to size its work to the deadline."""
        return self.remaining_ms
