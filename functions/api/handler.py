"""Lambda entry point: the FastAPI app behind Mangum, with Powertools logging and tracing."""

from __future__ import annotations

import gc

# Cold start: the init phase allocates tens of thousands of long-lived objects (modules, classes, routes) and
# the cyclic collector would walk them again and again while they pile up (~50 ms measured here). Nothing
# made during init is garbage; collection resumes as soon as the app is built.
gc.disable()

from typing import Any  # noqa: E402

from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402
from mangum import Mangum  # noqa: E402

from functions.api.app import create_app  # noqa: E402
from shared.observability import get_logger  # noqa: E402

logger = get_logger()
_asgi = Mangum(create_app(), lifespan="off")
gc.enable()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway (HTTP API, payload 2.0, or REST) event to response."""
    response: dict[str, Any] = _asgi(event, context)  # type: ignore[arg-type]
    return response
