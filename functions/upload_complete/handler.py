"""Lambda entry point: S3 ObjectCreated notifications (through SQS) -> finalise each uploaded image.

At-least-once delivery: a duplicate or replayed event finds the image final and changes nothing. Failed
records are reported as partial batch failures, so only they are retried (and end in the DLQ).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.bootstrap import Container
from shared.config import get_settings
from shared.observability import get_logger
from shared.services.finalize import FinalizeDeferredError, Outcome
from shared.sqs_batch import lambda_deadline, sqs_batch_handler

FUNCTION = "upload-complete"
logger = get_logger(FUNCTION)
_container = Container(get_settings())


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """Finalise every object an S3 notification names (S3's test event names none); what does not fit the
    invocation's remaining time goes to a job."""
    deadline = lambda_deadline(lambda_context, _container.settings.worker_deadline_margin_seconds)
    body: dict[str, Any] = json.loads(record.body)
    for s3_record in body.get("Records", []):
        bucket = s3_record["s3"]["bucket"]["name"]
        # Emulators and AWS encode keys differently; unquote_plus decodes all of them.
        key = unquote_plus(s3_record["s3"]["object"]["key"])
        if bucket != _container.settings.image_bucket:
            logger.warning("event for another bucket ignored", extra={"bucket": bucket, "key": key})
            continue
        outcome = _container.finalizer.handle_object(key, deadline=deadline)
        logger.info("upload finalised", extra={"key": key, "outcome": outcome.value})
        if outcome is Outcome.DEFERRED:
            raise FinalizeDeferredError(key)


handler = sqs_batch_handler(record_handler, FUNCTION, expected=(FinalizeDeferredError,))
