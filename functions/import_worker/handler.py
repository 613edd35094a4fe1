"""Lambda entry point: import jobs (through SQS) -> finish glance-direct and web-download imports.

Failed records are reported as partial batch failures, so only they are retried (and end in the DLQ).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.bootstrap import Container
from shared.config import get_settings
from shared.observability import get_logger
from shared.services.finalize import FinalizeDeferredError, Outcome

logger = get_logger()
processor = BatchProcessor(event_type=EventType.SQS)
_container = Container(get_settings())


def record_handler(record: SQSRecord) -> None:
    """Run one import job."""
    job: dict[str, Any] = json.loads(record.body)
    outcome = _container.import_worker.run(job)
    logger.info(
        "import finished",
        extra={"image_id": job.get("image_id"), "method": job.get("method"), "request_id": job.get("request_id"),
               "outcome": outcome.value},
    )  # fmt: skip
    if outcome is Outcome.DEFERRED:
        raise FinalizeDeferredError(job.get("image_id"))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """SQS batch of import jobs -> partial batch response."""
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
