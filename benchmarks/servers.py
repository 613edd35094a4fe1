"""Servers the benchmarks run in child processes: ``python -m benchmarks.servers {moto,api,bare} --port-file F``.

Each binds 127.0.0.1 on a free port, writes the port to ``--port-file`` once it accepts connections, and runs
until SIGTERM. One process per server means its CPU time (``/proc/<pid>/stat``) is its own.

- ``moto``: ``ThreadedMotoServer``, the emulator the tests use.
- ``api``: ``functions.api.app.create_app()`` under uvicorn, configured from the environment exactly as a
  deployed function is (``SGLANCE_*``), with the same uvicorn settings as ``devstack``. With ``--event-loop`` the
  same process also runs devstack's SQS event loop (the queue handlers, ``upload_complete`` among them), so the
  S3 event of a presigned upload is finalised there and its CPU counts as the API process's. The resources must
  already exist on the emulator (``devstack.provision``).
- ``bare``: a FastAPI app with nothing but two routes that return fixed JSON bodies (``--show-body`` and
  ``--list-body``: files holding the API's own responses), served the same way: the "how fast can FastAPI
  on uvicorn be here" reference.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def _write_port(port_file: str, port: int) -> None:
    tmp = Path(port_file + ".tmp")
    tmp.write_text(str(port))
    os.replace(tmp, port_file)


def _serve_moto(port_file: str) -> None:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _write_port(port_file, port)
    stop.wait()
    server.stop()


def _bare_app(show_body: Any, list_body: Any) -> Any:
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/v2/images")
    def list_images() -> dict[str, Any]:
        return dict(list_body)

    @app.get("/v2/images/{image_id}")
    def show_image(image_id: str) -> dict[str, Any]:
        return dict(show_body)

    return app


def _serve_asgi(app: Any, port_file: str) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    # Listening before uvicorn starts lets early connections wait in the backlog instead of being refused.
    sock.listen(128)
    config = uvicorn.Config(app, host=HOST, port=sock.getsockname()[1], log_level="warning")
    server = uvicorn.Server(config)
    _write_port(port_file, sock.getsockname()[1])
    server.run(sockets=[sock])


def _start_event_loop() -> Any:
    from devstack.event_loop import EventLoop, default_handlers
    from shared.config import get_settings
    from shared.resources import resources_for

    settings = get_settings()
    loop = EventLoop(default_handlers(resources_for(settings)), settings.aws_endpoint_url, settings.aws_region)
    loop.start()
    return loop


def main(argv: list[str] | None = None) -> None:
    """Run one server until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers")
    parser.add_argument("kind", choices=("moto", "api", "bare"))
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--show-body", help="bare: JSON file returned by GET /v2/images/{id}")
    parser.add_argument("--list-body", help="bare: JSON file returned by GET /v2/images")
    parser.add_argument("--event-loop", action="store_true", help="api: also run the SQS event loop (queue handlers)")
    args = parser.parse_args(argv)
    if args.kind == "moto":
        _serve_moto(args.port_file)
    elif args.kind == "api":
        from functions.api.app import create_app

        # Started before the port is written: once the caller sees the port, the queues are being polled.
        loop = _start_event_loop() if args.event_loop else None
        try:
            _serve_asgi(create_app(), args.port_file)
        finally:
            if loop is not None:
                loop.stop()
    else:
        show_body = json.loads(Path(args.show_body).read_text())
        list_body = json.loads(Path(args.list_body).read_text())
        _serve_asgi(_bare_app(show_body, list_body), args.port_file)


if __name__ == "__main__":
    main()
