"""Lambda entry point: the FastAPI app behind Mangum, with Powertools logging and tracing.

With SnapStart the module runs once per published version and its state is restored into every execution
environment: after each restore, ``renew_state`` gives the app a new container (shared/snapstart.py).
"""

from __future__ import annotations

import asyncio
import gc
import warnings

# Cold start: the init phase allocates tens of thousands of long-lived objects (modules, classes, routes) and
# the cyclic collector would walk them again and again while they pile up (~50 ms measured here). Nothing
# made during init is garbage; collection resumes as soon as the app is built.
gc.disable()

from typing import Any  # noqa: E402

from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: E402
from mangum import Mangum  # noqa: E402

from functions.api.app import create_app, renew_state  # noqa: E402
from shared import snapstart  # noqa: E402
from shared.observability import get_logger  # noqa: E402


def _thread_event_loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop, made and set if it has none: Mangum runs every request on it, and asks for it
    with get_event_loop(), which Python 3.12 and 3.13 deprecate making a loop implicitly (3.14 refuses)."""
    with warnings.catch_warnings():
        # the deprecation (3.12, 3.13) or the RuntimeError (3.14) both say "none is set", before any is made
        warnings.simplefilter("error", DeprecationWarning)
        try:
            return asyncio.get_event_loop()
        except (DeprecationWarning, RuntimeError):
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            return loop


logger = get_logger("api")
_loop = _thread_event_loop()
_app = create_app()
_asgi = Mangum(_app, lifespan="off")
if _app.state.container.settings.init_ahead_of_requests:
    # Off the user's path only there: an on-demand cold start would pay it all the same, and GET /versions more.
    _app.state.container.warm()
snapstart.on_restore(lambda: renew_state(_app))
snapstart.install()
gc.enable()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """API Gateway (HTTP API, payload 2.0, or REST) event to response."""
    response: dict[str, Any] = _asgi(event, context)  # type: ignore[arg-type]
    return response
