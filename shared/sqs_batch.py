"""The one Lambda handler shape of the SQS workers: each record to a record handler, failures reported per record.

``sqs_batch_handler(record_handler, function)`` is a Lambda handler: a batch of SQS records in, a partial batch
response out, so only the records that raised are delivered again (and end in the queue's DLQ after its
maxReceiveCount); the function's own logger carries the Lambda context.

A record handler raises one of its ``expected`` exceptions for an outcome it has already logged (a deferral, a
retry it scheduled): the record is delivered again and nothing more is logged. Any other exception is logged once,
at ERROR with its traceback. A batch whose records all failed is still a partial batch response, not an error of
the invocation: the records are what failed, not the function.

Every record handler gets the invocation's Lambda context too; ``lambda_deadline`` turns it into the plain deadline
the services take (they never see Lambda types).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.deadline import WORKER, Deadline
from shared.observability import get_logger

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def sqs_batch_handler(
    record_handler: Callable[[SQSRecord, LambdaContext], None],
    function: str,
    expected: tuple[type[Exception], ...] = (),
) -> Handler:
    """A Lambda handler that runs ``record_handler`` on every record of an SQS batch (partial batch failures)."""
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    logger = get_logger(function)

    # Powertools passes the context to a record handler with a ``lambda_context`` parameter.
    def logged(record: SQSRecord, lambda_context: LambdaContext) -> None:
        try:
            record_handler(record, lambda_context)
        except expected:
            raise
        except Exception:
            logger.exception("record failed; it will be delivered again", extra={"message_id": record.message_id})
            raise

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """SQS batch -> partial batch response."""
        response = process_partial_response(event=event, record_handler=logged, processor=processor, context=context)
        return dict(response)

    return handler


def lambda_deadline(context: LambdaContext, margin_s: float) -> Deadline:
    """The deadline of a worker's invocation: its remaining time, less ``margin_s`` to hand the work on."""
    return Deadline.after(context.get_remaining_time_in_millis() / 1000 - margin_s, WORKER)
