"""The SQS workers' handler shape: partial batch responses, expected outcomes logged once at INFO by the worker
(no traceback), unexpected ones once at ERROR with their traceback, and each function's lines with its own context."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from shared.observability import get_logger
from shared.sqs_batch import sqs_batch_handler


class DeferredError(Exception):
    """An outcome the record handler logged itself."""


@dataclass
class Context:
    function_name: str
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:f"
    aws_request_id: str = "req"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _event(*bodies: str) -> dict[str, Any]:
    records = [
        {
            "messageId": f"m{i}",
            "receiptHandle": f"r{i}",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
            "awsRegion": "us-east-1",
        }
        for i, body in enumerate(bodies)
    ]
    return {"Records": records}


@pytest.fixture
def lines() -> Any:
    """Every JSON line the test functions' loggers write."""
    stream = io.StringIO()
    handlers = []
    for name in ("t-defer", "t-api"):
        logger = get_logger(name)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logger.registered_formatter)
        logger._logger.addHandler(handler)
        handlers.append((logger, handler))

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]

    yield read
    for logger, handler in handlers:
        logger._logger.removeHandler(handler)


def _worker(record: SQSRecord, lambda_context: object) -> None:
    if record.body == "defer":
        get_logger("t-defer").info("deferred")
        raise DeferredError(record.body)
    if record.body == "boom":
        raise RuntimeError("unexpected")


def test_a_batch_that_only_defers__is_a_partial_response_with_no_error_logged(lines: Any) -> None:
    handler = sqs_batch_handler(_worker, "t-defer", expected=(DeferredError,))

    response = handler(_event("defer", "defer"), Context("sglance-t-defer"))  # type: ignore[arg-type]

    assert response == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m1"}]}
    logged = lines()
    assert [line["message"] for line in logged] == ["deferred", "deferred"]
    assert all(line["level"] == "INFO" and "exception" not in line for line in logged)


def test_an_unexpected_error__is_logged_once_at_error_with_its_traceback(lines: Any) -> None:
    handler = sqs_batch_handler(_worker, "t-defer", expected=(DeferredError,))

    response = handler(_event("ok", "boom"), Context("sglance-t-defer"))  # type: ignore[arg-type]

    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    errors = [line for line in lines() if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["message_id"] == "m1"
    assert "RuntimeError: unexpected" in errors[0]["exception"]


def test_each_function_logs_with_its_own_lambda_context__not_another_functions(lines: Any) -> None:
    handler = sqs_batch_handler(_worker, "t-defer", expected=(DeferredError,))
    handler(_event("defer"), Context("sglance-t-defer"))  # type: ignore[arg-type]

    get_logger("t-api").info("request")

    by_message = {line["message"]: line for line in lines()}
    assert by_message["deferred"]["function_name"] == "sglance-t-defer"
    assert "function_name" not in by_message["request"]
    assert by_message["request"]["service"].endswith("-t-api")
