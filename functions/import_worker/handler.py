"""Lambda entry point: import jobs (through SQS) -> finish glance-direct, web-download and location imports.

Failed records are reported as partial batch failures, so only they are retried (and end in the DLQ).
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.bootstrap import Container
from shared.config import get_settings
from shared.jobs import import_job
from shared.observability import get_logger
from shared.services.finalize import FinalizeDeferredError, Outcome
from shared.sqs_batch import lambda_deadline, sqs_batch_handler

FUNCTION = "import-worker"
logger = get_logger(FUNCTION)
_container = Container(get_settings())


def record_handler(record: SQSRecord, lambda_context: LambdaContext) -> None:
    """Run one import job (handed to a job when it does not fit the invocation's remaining time)."""
    job = import_job(json.loads(record.body))
    deadline = lambda_deadline(lambda_context, _container.settings.worker_deadline_margin_seconds)
    outcome = _container.import_worker.run(job, deadline)
    fields = {"image_id": job.image_id, "method": job.method, "request_id": job.request_id}
    logger.info("import finished", extra={**fields, "outcome": outcome.value})
    if outcome is Outcome.DEFERRED:
        raise FinalizeDeferredError(job.image_id)


handler = sqs_batch_handler(record_handler, FUNCTION, expected=(FinalizeDeferredError,))
