"""devstack.event_loop against a real moto server: the SQS event source mapping, locally."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack.event_loop import EventLoop
from devstack.provision import Provisioned, provision
from shared.resources import IMAGES_TABLE, QueueDef, Resources
from tests.conftest import AWS_REGION
from tests.integration.lambda_fakes import RecordingHandler

pytestmark = pytest.mark.integration

# Small enough that a failed message comes back within a second and dead-letters after its second failure.
MAX_RECEIVE_COUNT = 2
QUEUE = QueueDef("devstack-test-work", visibility_timeout_s=1, max_receive_count=MAX_RECEIVE_COUNT)
OTHER_QUEUE = QueueDef("devstack-test-other", visibility_timeout_s=1, max_receive_count=MAX_RECEIVE_COUNT)
RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "md5OfMessageAttributes",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}


# Resolved by its dotted path in the first test, as the default handlers are.
module_handler = RecordingHandler()


@pytest.fixture
def sqs(aws_client: Callable[[str], Any]) -> Any:
    return aws_client("sqs")


@pytest.fixture
def queues(moto_reset: str, sqs: Any) -> Provisioned:
    resources = Resources(
        table_name="devstack-test-images",
        table=IMAGES_TABLE,
        image_bucket="devstack-test-images",
        upload_queue=QUEUE,
        store_sync_queue=OTHER_QUEUE,
        import_queue=QueueDef("devstack-test-import", visibility_timeout_s=1, max_receive_count=2),
        event_bus_name="devstack-test-events",
    )
    provisioned = provision(resources, moto_reset, AWS_REGION)
    # Provisioning's bucket notification puts an s3:TestEvent on the first queue; these tests want it empty.
    sqs.purge_queue(QueueUrl=provisioned.queues[QUEUE.name].url)
    return provisioned


@pytest.fixture
def loops(moto_endpoint: str) -> Iterator[Callable[..., EventLoop]]:
    """Starts event loops on the moto server and stops whatever a test left running."""
    started: list[EventLoop] = []

    def start(handlers: dict[str, Any]) -> EventLoop:
        loop = EventLoop(handlers, moto_endpoint, AWS_REGION)
        loop.start()
        started.append(loop)
        return loop

    yield start
    for loop in started:
        loop.stop()


def _queue_depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def test_message__reaches_the_handler__as_a_lambda_sqs_event(
    queues: Provisioned, sqs: Any, loops: Callable[..., EventLoop]
) -> None:
    urls = queues.queues[QUEUE.name]
    module_handler.calls.clear()
    body = '{"hello": "world"}'
    sent = sqs.send_message(
        QueueUrl=urls.url,
        MessageBody=body,
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "upload"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )

    loop = loops({QUEUE.name: "tests.integration.test_event_loop:module_handler"})
    module_handler.wait_for(lambda: len(module_handler.calls) == 1)
    loop.stop()

    assert loop.active_queues == (QUEUE.name,)
    event, context = module_handler.calls[0]
    assert list(event) == ["Records"]
    (record,) = event["Records"]
    assert set(record) == RECORD_KEYS
    assert record["messageId"] == sent["MessageId"]
    assert record["body"] == body
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == urls.arn
    assert record["awsRegion"] == AWS_REGION
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "upload", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    assert context.function_name == QUEUE.name
    assert context.invoked_function_arn.startswith(f"arn:aws:lambda:{AWS_REGION}:")
    assert context.aws_request_id
    assert context.memory_limit_in_mb > 0
    assert 0 < context.get_remaining_time_in_millis() <= context.timeout_s * 1000
    assert _queue_depth(sqs, urls.url) == 0


def test_partial_batch_failure__deletes_the_others__and_the_failed_one_goes_to_the_dlq(
    queues: Provisioned, sqs: Any, loops: Callable[..., EventLoop]
) -> None:
    urls = queues.queues[QUEUE.name]

    def fail_bad(event: dict[str, Any]) -> dict[str, Any]:
        return {
            "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"]
        }

    handler = RecordingHandler(fail_bad)
    sqs.send_message_batch(
        QueueUrl=urls.url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(["ok-1", "bad", "ok-2"])]
    )

    loop = loops({QUEUE.name: handler})
    # After its last allowed receive, the next ReceiveMessage moves the message to the DLQ (moto does it lazily).
    deadline = time.monotonic() + 10
    while _queue_depth(sqs, urls.dlq_url) == 0:
        assert time.monotonic() < deadline, f"nothing dead-lettered; handler saw {handler.records}"
        time.sleep(0.2)
    loop.stop()

    bodies = [r["body"] for r in handler.records]
    assert sorted(bodies) == ["bad"] * MAX_RECEIVE_COUNT + ["ok-1", "ok-2"]
    bad_counts = [r["attributes"]["ApproximateReceiveCount"] for r in handler.records if r["body"] == "bad"]
    assert bad_counts == [str(n) for n in range(1, MAX_RECEIVE_COUNT + 1)]
    assert _queue_depth(sqs, urls.url) == 0
    dead = sqs.receive_message(QueueUrl=urls.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["bad"]


def _raise(event: dict[str, Any]) -> Any:
    raise RuntimeError("handler bug")


@pytest.mark.parametrize(
    "respond",
    [
        pytest.param(_raise, id="raises"),
        pytest.param(lambda event: {"batchItemFailures": [{"itemIdentifier": "no-such-id"}]}, id="unknown-id"),
        pytest.param(lambda event: {"batchItemFailures": [{"itemIdentifier": ""}]}, id="empty-id"),
    ],
)
def test_failed_invocation__deletes_nothing(
    queues: Provisioned,
    sqs: Any,
    loops: Callable[..., EventLoop],
    respond: Callable[[dict[str, Any]], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    urls = queues.queues[QUEUE.name]
    handler = RecordingHandler(respond)
    sqs.send_message_batch(
        QueueUrl=urls.url, Entries=[{"Id": "1", "MessageBody": "a"}, {"Id": "2", "MessageBody": "b"}]
    )

    loop = loops({QUEUE.name: handler})
    handler.wait_for(lambda: len(handler.records) >= 2)
    loop.stop()

    assert _queue_depth(sqs, urls.url) == 2
    assert any(r.levelno >= logging.WARNING and r.name == "devstack.event_loop" for r in caplog.records)


def test_missing_handler_module__leaves_the_queue_idle_and_unpolled(
    queues: Provisioned, sqs: Any, loops: Callable[..., EventLoop], caplog: pytest.LogCaptureFixture
) -> None:
    urls = queues.queues[QUEUE.name]
    sqs.send_message(QueueUrl=urls.url, MessageBody="waiting")
    caplog.set_level(logging.INFO, logger="devstack.event_loop")

    loop = loops({QUEUE.name: "functions.not_written_yet.handler:handler"})
    time.sleep(1.2)
    loop.stop()

    assert (loop.active_queues, loop.idle_queues) == ((), (QUEUE.name,))
    idle_logs = [r for r in caplog.records if "idle" in r.getMessage()]
    assert len(idle_logs) == 1
    assert idle_logs[0].levelno == logging.INFO
    message = sqs.receive_message(QueueUrl=urls.url, MessageSystemAttributeNames=["ApproximateReceiveCount"])
    assert message["Messages"][0]["Attributes"]["ApproximateReceiveCount"] == "1"


def test_stop__returns_within_about_one_long_poll(queues: Provisioned, loops: Callable[..., EventLoop]) -> None:
    loop = loops({QUEUE.name: RecordingHandler(), OTHER_QUEUE.name: RecordingHandler()})
    time.sleep(0.3)

    started = time.monotonic()
    loop.stop()

    assert time.monotonic() - started < 2.5
    assert not [t for t in threading.enumerate() if t.name.startswith("devstack-sqs-")]
