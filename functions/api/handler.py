"""Lambda entry point: the FastAPI app behind Mangum, with Powertools logging and tracing."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from functions.api.app import create_app
from shared.observability import get_logger

logger = get_logger()
_asgi = Mangum(create_app(), lifespan="off")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway (HTTP API, payload 2.0, or REST) event to response."""
    response: dict[str, Any] = _asgi(event, context)  # type: ignore[arg-type]
    return response
