"""The data plane's server: uvicorn serving ``create_app()`` on ``data_plane_host:data_plane_port``.

``python -m functions.data_plane`` is the container's command. SIGTERM (a deployment, a scale-in) stops accepting
connections and gives transfers under way ``data_plane_shutdown_grace_seconds`` to finish.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import uvicorn

from functions.data_plane.app import create_app
from shared.config import Settings, get_settings


def build_server(settings: Settings | None = None, app: Any = None) -> uvicorn.Server:
    """The uvicorn server of the data plane (``app``: another ASGI app, for tests)."""
    settings = settings or get_settings()
    config = uvicorn.Config(
        app if app is not None else create_app(settings),
        host=settings.data_plane_host,
        port=settings.data_plane_port,
        log_level=logging.WARNING,
        access_log=False,  # the app writes one structured line per request
        server_header=False,
        timeout_keep_alive=settings.data_plane_keep_alive_seconds,
        timeout_graceful_shutdown=settings.data_plane_shutdown_grace_seconds,
    )
    return uvicorn.Server(config)


def serve(settings: Settings | None = None, sockets: list[socket.socket] | None = None) -> None:
    """Serve until SIGTERM or SIGINT (``sockets``: already listening ones, e.g. inherited from a launcher)."""
    build_server(settings).run(sockets=sockets)
