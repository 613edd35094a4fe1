"""create_app(): the data plane's ASGI application, the API function's own data routes and services.

The same routers, controllers, services and composition root as ``functions/api`` (one code path: the same
authentication, policy, quotas and notifications), built with ``Settings.for_data_plane()``: bodies of any size up
to ``image_size_cap`` stream into a multipart upload, hashed and inspected on the way, and downloads stream. Only
the data routes are served (the front door sends nothing else here, shared/data_routes.py), plus ``/healthcheck``
for the load balancer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response

from functions.api.app import DATA_ROUTERS
from functions.api.app import create_app as create_api_app
from shared.config import Settings, get_settings

HEALTHCHECK_PATH = "/healthcheck"


def create_app(settings: Settings | None = None, overrides: dict[str, Any] | None = None) -> FastAPI:
    """Build the data plane. ``overrides`` replaces parts of the container, as for the API."""
    settings = (settings or get_settings()).for_data_plane()
    app = create_api_app(settings, overrides, routers=DATA_ROUTERS, function="data-plane")
    app.router.lifespan_context = _threads(settings.data_plane_max_transfers)
    app.add_api_route(HEALTHCHECK_PATH, _healthcheck, methods=["GET", "HEAD"], include_in_schema=False)
    return app


def _threads(transfers: int) -> Any:
    """A lifespan giving every transfer its thread: an upload's body is consumed in one for its whole length (the
    default executor has only a few), and downloads read their chunks through anyio's thread limiter."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import asyncio

        executor = ThreadPoolExecutor(transfers, thread_name_prefix="data-plane")
        asyncio.get_running_loop().set_default_executor(executor)
        # starts, checks and records of requests, beside the streams themselves
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2 * transfers
        try:
            yield
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    return lifespan


def _healthcheck() -> Response:
    """The load balancer's target health check: the process serves requests (no dependency is asked)."""
    return PlainTextResponse("OK")
