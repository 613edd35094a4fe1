"""A local stand-in for Lambda's SQS event source mapping.

For each queue that has a handler, one thread long-polls the queue, hands each batch to
``handler(event, context)`` in the event shape Lambda uses, and deletes what the handler processed, with the
``ReportBatchItemFailures`` semantics the deployed mappings use:

- the handler returns ``None``, ``{}`` or an empty/``None`` ``batchItemFailures``: the whole batch is deleted;
- it returns ``{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}``: every other message is deleted,
  the listed ones stay and become visible again after the queue's visibility timeout, so the queue's redrive
  policy moves them to the DLQ after ``maxReceiveCount`` receives;
- it raises, or returns anything else (an empty, unknown or missing ``itemIdentifier``, a non-object): nothing
  is deleted, as Lambda treats the whole batch as failed.

Handlers are named ``"package.module:function"``. A queue whose handler module does not exist yet is not polled:
the loop logs once that the queue is idle and leaves its messages alone (they wait for a later run that has the
handler). A handler module that exists but fails to import is logged with its traceback and also left idle.

Failed messages reappear only after the queue's visibility timeout (900 s for the deployed queues), exactly as
on AWS; the integration tests use queues with a 1 s timeout.
"""

from __future__ import annotations

import base64
import importlib
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from shared.resources import Resources

log = logging.getLogger(__name__)

LambdaHandler = Callable[[dict[str, Any], "LambdaContext"], Any]

# Lambda's defaults for an SQS event source mapping on a standard queue.
DEFAULT_BATCH_SIZE = 10
# Short, so that stop() (Ctrl-C) returns within about a second; Lambda's pollers use 20 s.
DEFAULT_WAIT_TIME_S = 1
# AWS asks for a visibility timeout of at least six times the function timeout; the queues have 900 s.
DEFAULT_FUNCTION_TIMEOUT_S = 150.0

UPLOAD_COMPLETE_HANDLER = "functions.upload_complete.handler:handler"
STORE_SYNC_HANDLER = "functions.store_sync.handler:handler"
IMPORT_WORKER_HANDLER = "functions.import_worker.handler:handler"


def default_handlers(resources: Resources) -> dict[str, str]:
    """The handler of each work queue, as deployed: queue name -> ``"module:function"``."""
    return {
        resources.upload_queue.name: UPLOAD_COMPLETE_HANDLER,
        resources.store_sync_queue.name: STORE_SYNC_HANDLER,
        resources.import_queue.name: IMPORT_WORKER_HANDLER,
    }


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    timeout_s: float = DEFAULT_FUNCTION_TIMEOUT_S
    log_group_name: str = ""
    log_stream_name: str = "devstack"
    _started: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the (simulated) function timeout; never enforced locally."""
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


def resolve_handler(path: str, *, fresh: bool = False) -> LambdaHandler:
    """Import the callable named by ``"package.module:function"``.

    ``fresh``: re-run the module if it was imported before, as a new Lambda execution environment would: its
    module-level state (the container built from the settings at import) then reflects the current settings, not
    those of an earlier stack in the same process.
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"handler path {path!r} is not of the form 'package.module:function'")
    imported_before = module_name in sys.modules
    module = importlib.import_module(module_name)
    if fresh and imported_before:
        module = importlib.reload(module)
    handler = getattr(module, attr)
    if not callable(handler):
        raise TypeError(f"{path} is not callable")
    return handler  # type: ignore[no-any-return]


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ``Records`` entry of a Lambda SQS event, from a ReceiveMessage message."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _lambda_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _lambda_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    # Lambda spells message attributes in camelCase and carries binary values as base64 text.
    attribute: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute


def failed_message_ids(response: object, batch_ids: set[str]) -> set[str] | None:
    """The messages a handler's ``response`` reports as failed; ``None`` if the response is invalid (all failed)."""
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return None
        failed.add(identifier)
    return failed


@dataclass(frozen=True)
class _Subscription:
    queue_name: str
    queue_url: str
    queue_arn: str
    handler: LambdaHandler


class EventLoop:
    """Polls each queue that has a handler and invokes it like an SQS event source mapping does."""

    def __init__(
        self,
        handlers: Mapping[str, str | LambdaHandler],
        endpoint_url: str | None,
        region: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        wait_time_s: int = DEFAULT_WAIT_TIME_S,
        function_timeout_s: float = DEFAULT_FUNCTION_TIMEOUT_S,
        stop_event: threading.Event | None = None,
    ) -> None:
        if not 1 <= batch_size <= 10:
            raise ValueError("batch_size must be between 1 and 10 (one ReceiveMessage call per batch)")
        self._handlers = dict(handlers)
        self._endpoint_url = endpoint_url
        self._region = region
        self._batch_size = batch_size
        self._wait_time_s = wait_time_s
        self._function_timeout_s = function_timeout_s
        self._stop = stop_event or threading.Event()
        self._threads: list[threading.Thread] = []
        self.active_queues: tuple[str, ...] = ()
        self.idle_queues: tuple[str, ...] = ()

    @cached_property
    def _sqs(self) -> Any:
        session = boto3.session.Session(region_name=self._region)
        return session.client("sqs", endpoint_url=self._endpoint_url, region_name=self._region)

    def start(self) -> None:
        """Resolve the handlers and start one polling thread per queue that has one."""
        if self._threads:
            raise RuntimeError("the event loop is already running")
        self._stop.clear()
        subscriptions: list[_Subscription] = []
        idle: list[str] = []
        for queue_name, spec in self._handlers.items():
            handler = self._load(queue_name, spec)
            if handler is None:
                idle.append(queue_name)
                continue
            url = self._sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
            arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            subscriptions.append(_Subscription(queue_name, url, arn, handler))
        self.active_queues = tuple(s.queue_name for s in subscriptions)
        self.idle_queues = tuple(idle)
        for subscription in subscriptions:
            thread = threading.Thread(
                target=self._poll, args=(subscription,), name=f"devstack-sqs-{subscription.queue_name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop polling, wait for the batches in progress, and close the SQS client."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s still running after %.0f s; leaving it (daemon thread)", thread.name, timeout_s)
        self._threads.clear()
        if "_sqs" in self.__dict__:
            self.__dict__.pop("_sqs").close()

    def __enter__(self) -> EventLoop:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _load(self, queue_name: str, spec: str | LambdaHandler) -> LambdaHandler | None:
        if not isinstance(spec, str):
            return spec
        module_name = spec.partition(":")[0]
        try:
            return resolve_handler(spec, fresh=True)
        except ModuleNotFoundError as exc:
            # Only "the handler's own module (or its package) is missing" means "not written yet".
            if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
                log.exception("queue %s is idle: its handler %s failed to import", queue_name, spec)
            else:
                log.info("queue %s is idle: its handler module %s does not exist yet", queue_name, module_name)
        except (ImportError, AttributeError, TypeError, ValueError):
            log.exception("queue %s is idle: its handler %s could not be loaded", queue_name, spec)
        return None

    def _poll(self, subscription: _Subscription) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=subscription.queue_url,
                    MaxNumberOfMessages=self._batch_size,
                    WaitTimeSeconds=self._wait_time_s,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except (BotoCoreError, ClientError):
                if self._stop.is_set():
                    break
                if not failing:
                    log.exception("receiving from %s failed; retrying every second", subscription.queue_name)
                failing = True
                self._stop.wait(1.0)
                continue
            failing = False
            messages = response.get("Messages", [])
            if messages:
                self._invoke(subscription, messages)

    def _invoke(self, subscription: _Subscription, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(m, subscription.queue_arn, self._region) for m in messages]}
        account = subscription.queue_arn.split(":")[4]
        context = LambdaContext(
            function_name=subscription.queue_name,
            invoked_function_arn=f"arn:aws:lambda:{self._region}:{account}:function:{subscription.queue_name}",
            timeout_s=self._function_timeout_s,
        )
        batch_ids = {m["MessageId"] for m in messages}
        try:
            result = subscription.handler(event, context)
        except Exception:
            log.exception(
                "handler for %s raised; the %d messages stay on the queue", subscription.queue_name, len(messages)
            )
            return
        failed = failed_message_ids(result, batch_ids)
        if failed is None:
            log.warning(
                "handler for %s returned an invalid batch response %r; nothing deleted", subscription.queue_name, result
            )
            return
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._delete(subscription, done)

    def _delete(self, subscription: _Subscription, messages: list[dict[str, Any]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        try:
            result = self._sqs.delete_message_batch(QueueUrl=subscription.queue_url, Entries=entries)
        except (BotoCoreError, ClientError):
            log.exception("deleting %d processed messages from %s failed", len(entries), subscription.queue_name)
            return
        for failure in result.get("Failed", []):
            log.warning("could not delete a processed message from %s: %s", subscription.queue_name, failure)
