"""Lambda entry point: import jobs (through SQS) -> finish glance-direct, web-download and location imports.

Failed records are reported as partial batch failures, so only they are retried (and end in the DLQ).
"""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from shared.bootstrap import Container
from shared.config import get_settings
from shared.jobs import import_job
from shared.observability import get_logger
from shared.services.finalize import FinalizeDeferredError, Outcome
from shared.sqs_batch import sqs_batch_handler

FUNCTION = "import-worker"
logger = get_logger(FUNCTION)
_container = Container(get_settings())


def record_handler(record: SQSRecord) -> None:
    """Run one import job."""
    job = import_job(json.loads(record.body))
    outcome = _container.import_worker.run(job)
    fields = {"image_id": job.image_id, "method": job.method, "request_id": job.request_id}
    logger.info("import finished", extra={**fields, "outcome": outcome.value})
    if outcome is Outcome.DEFERRED:
        raise FinalizeDeferredError(job.image_id)


handler = sqs_batch_handler(record_handler, FUNCTION, expected=(FinalizeDeferredError,))
