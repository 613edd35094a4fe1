"""Lambda entry point: store_sync jobs (through SQS) -> copy images between stores, delete store copies.

Each record is one job (``shared.services.replication``). A retryable failure makes the record visible again
after an exponential backoff (ChangeMessageVisibility) and reports it as a partial batch failure; after
``store_sync_max_attempts`` deliveries (the queue's maxReceiveCount) the failure is recorded on the image and the
record ends in the DLQ.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.bootstrap import Container
from shared.config import get_settings
from shared.jobs import CopyJob, store_sync_job
from shared.observability import get_logger
from shared.services.replication import JobFailedError, RetryLaterError
from shared.sqs_batch import lambda_deadline, sqs_batch_handler

FUNCTION = "store-sync"
logger = get_logger(FUNCTION)
_container = Container(get_settings())


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """Run one store_sync job (a copy that does not fit the invocation's remaining time goes to a job)."""
    job = store_sync_job(json.loads(record.body))
    deadline = lambda_deadline(lambda_context, _container.settings.worker_deadline_margin_seconds)
    attempt = int(record.attributes.approximate_receive_count or 1)
    op = "copy" if isinstance(job, CopyJob) else "delete"
    fields = {"image_id": job.image_id, "store": job.store, "op": op, "attempt": attempt}
    try:
        outcome = _container.store_sync.run(job, attempt, deadline)
    except RetryLaterError as exc:
        logger.warning("store_sync job failed; retrying", extra={**fields, "reason": str(exc), "delay": exc.delay})
        _visible_again(record, exc.delay)
        raise
    except JobFailedError as exc:
        logger.error("store_sync job failed for good; to the DLQ", extra={**fields, "reason": str(exc)})
        # SQS moves a message to the DLQ when it is received once more than maxReceiveCount: at once, not after
        # the queue's visibility timeout.
        _visible_again(record, 0)
        raise
    logger.info("store_sync job done", extra={**fields, "outcome": outcome.value})


def _visible_again(record: SQSRecord, delay: int) -> None:
    queue = _container.store_sync_queue
    queue.client.change_message_visibility(
        QueueUrl=queue.url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
    )


handler = sqs_batch_handler(record_handler, FUNCTION, expected=(RetryLaterError, JobFailedError))
