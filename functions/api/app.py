"""create_app(): the FastAPI application holding the domain controller (served by Mangum on Lambda, uvicorn locally)."""

from __future__ import annotations

import importlib
import re
import time
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.api.errors import error_body, error_text, status_for, unauthorized_body, wants_json, www_authenticate
from functions.api.routers import discovery, image_data, images, members, quotas, schemas, stores, tasks, versions
from functions.api.schemas import all_schemas
from shared.bootstrap import Container
from shared.config import Settings, get_settings
from shared.domain.errors import GlanceError, NotAuthenticatedError, UnsupportedMediaTypeError
from shared.observability import get_logger

REQUEST_ID_HEADER = "x-openstack-request-id"
# /v2.0/ ... /v2.N/ reach the same API as /v2/ (Glance's version negotiation).
_VERSIONED_PREFIX = re.compile(r"^/v2\.\d+(?=/|$)")
_SERVER_ERROR = "The server has either erred or is incapable of performing the requested operation."
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE"})
_BODY_TOLERATED_PATHS = frozenset({"/v2/images", "/v2/images/"})
_ROUTERS: tuple[APIRouter, ...] = (
    versions.router,
    schemas.router,
    images.router,
    image_data.data_router,
    image_data.router,
    discovery.router,
    members.router,
    stores.router,
    tasks.router,
    quotas.router,
)

# What the data plane serves: the routes whose bodies are image data, the same code as in the API function.
DATA_ROUTERS: tuple[APIRouter, ...] = (image_data.data_router,)


class LazyRouter:
    """An ASGI app that imports ``module`` and serves its ``attr`` router on its first request: the metadata
    definitions catalog is mounted this way, so the image path's cold start never imports it."""

    def __init__(self, module: str, attr: str = "router") -> None:
        self.module = module
        self.attr = attr
        self._router: APIRouter | None = None

    @property
    def router(self) -> APIRouter:
        """The router, imported on first use."""
        if self._router is None:
            self._router = getattr(importlib.import_module(self.module), self.attr)
        return self._router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)


# Mount point -> lazily imported router (paths inside are relative to the mount).
_LAZY_MOUNTS: tuple[tuple[str, str, str], ...] = (
    ("/v2/metadefs", "functions.api.routers.metadefs", "router"),
    ("/v2/schemas/metadefs", "functions.api.routers.metadefs", "schemas_router"),
)


class RequestContextMiddleware:
    """Gives every request a Glance-style id, rewrites versioned prefixes, rejects bodies where Glance does,
    and writes one structured access-log line."""

    def __init__(self, app: ASGIApp, function: str = "api") -> None:
        self.app = app
        # the entry point's own logger: the data plane's lines say so
        self.logger = get_logger(function)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{uuid.uuid4()}"
        scope.setdefault("state", {})["request_id"] = request_id
        scope["path"] = _VERSIONED_PREFIX.sub("/v2", scope["path"])
        started = time.perf_counter()
        status_holder: dict[str, int] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        accept = _header(scope, b"accept")
        try:
            if _rejects_body(scope):
                response = _error_response(accept, HTTPStatus.BAD_REQUEST, "This request does not accept a body.")
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette's outermost middleware would answer an escaped exception itself, without the request id
            # and without this access-log line; answer it here instead.
            self.logger.exception("unhandled error", extra={"request_id": request_id})
            if "status" in status_holder:
                # The response has begun: the only honest end is a broken connection.
                raise
            await _error_response(accept, HTTPStatus.INTERNAL_SERVER_ERROR, _SERVER_ERROR)(scope, receive, send_with_id)
        finally:
            self.logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status_holder.get("status", HTTPStatus.INTERNAL_SERVER_ERROR.value),
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _rejects_body(scope: Scope) -> bool:
    """Glance's body_reject: a body on GET/HEAD/DELETE is 400, except on the image list (Glance serves it)."""
    if scope["method"] not in _BODYLESS_METHODS or scope["path"] in _BODY_TOLERATED_PATHS:
        return False
    try:
        return int(_header(scope, b"content-length") or 0) > 0
    except ValueError:
        return False


def _error_response(
    accept: str | None, status: HTTPStatus, message: str, headers: dict[str, str] | None = None
) -> Response:
    if wants_json(accept):
        return JSONResponse(error_body(status, message), status_code=status.value, headers=headers)
    return PlainTextResponse(error_text(status, message), status_code=status.value, headers=headers)


async def _on_glance_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GlanceError)
    if isinstance(exc, NotAuthenticatedError):
        # what keystonemiddleware answers in front of Glance: JSON, with the challenge naming Keystone
        challenge = {"WWW-Authenticate": www_authenticate(exc.uri)}
        return JSONResponse(unauthorized_body(exc.message), status_code=HTTPStatus.UNAUTHORIZED, headers=challenge)
    headers = None
    if isinstance(exc, UnsupportedMediaTypeError):
        headers = {"Accept-Patch": ", ".join(sorted(exc.allowed))}
    return _error_response(request.headers.get("accept"), status_for(exc), exc.message, headers)


def _lazy_mounts(routers: tuple[APIRouter, ...]) -> tuple[tuple[str, str, str], ...]:
    """The lazily mounted routers of an app serving ``routers``: the metadefs catalog is the API's only (the data
    plane serves its data routes and nothing else)."""
    return _LAZY_MOUNTS if routers == _ROUTERS else ()


def _allowed_methods(routers: tuple[APIRouter, ...], path: str) -> str:
    """Every method some route of ``routers`` serves at ``path`` (Starlette's own 405 names only the first route's)."""
    methods: set[str] = set()
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.path_regex.match(path):
                methods.update(route.methods or ())
    for prefix, module, attr in _lazy_mounts(routers):
        if path.startswith(prefix + "/"):
            # Only asked after a request reached the mount, so the router is already imported.
            for route in getattr(importlib.import_module(module), attr).routes:
                if isinstance(route, APIRoute) and route.path_regex.match(path[len(prefix) :]):
                    methods.update(route.methods or ())
    return ", ".join(sorted(methods))


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = HTTPStatus(exc.status_code)
    message = exc.detail if isinstance(exc.detail, str) else status.description
    headers = dict(exc.headers or {})
    if status is HTTPStatus.METHOD_NOT_ALLOWED:
        headers["Allow"] = _allowed_methods(request.app.state.routers, request.scope["path"])
    return _error_response(request.headers.get("accept"), status, message, headers)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    return _error_response(request.headers.get("accept"), HTTPStatus.BAD_REQUEST, str(exc))


def create_app(
    settings: Settings | None = None,
    overrides: dict[str, Any] | None = None,
    routers: tuple[APIRouter, ...] = _ROUTERS,
    function: str = "api",
) -> FastAPI:
    """Build the API. ``overrides`` replaces parts of the container (tests use fakes through it); ``routers``: the
    routes served (the data plane serves ``DATA_ROUTERS`` only, functions/data_plane); ``function``: the entry point
    the access log names."""
    settings = settings or get_settings()
    # Glance answers 404 for a path with a trailing slash (/v2/images/), never a redirect.
    app = FastAPI(
        title="Serverless Glance",
        version="2.5",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.state.container = Container(settings, overrides or {})
    # What deps.py builds from the container, once per app (renew_state drops it with the container).
    app.state.controllers = {}
    app.state.schemas = all_schemas(settings)
    app.add_exception_handler(GlanceError, _on_glance_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.state.routers = routers
    for router in routers:
        app.include_router(router)
    for prefix, module, attr in _lazy_mounts(routers):
        app.mount(prefix, LazyRouter(module, attr))
    app.add_middleware(RequestContextMiddleware, function=function)
    return app


def renew_state(app: FastAPI) -> None:
    """A new container and no controllers built from the old one: nothing made before (SDK clients and their
    connections, the Keystone session, tokens and caches) is used again. The API function calls it after a SnapStart
    restore, so that environments restored from one snapshot share none of it."""
    old: Container = app.state.container
    app.state.container = Container(old.settings, old.overrides)
    app.state.controllers = {}
