"""The local front door: one image endpoint before both planes, routing as the deployed one does.

Requests whose path is a data route (shared/data_routes.py: ``/v2*/images/*/file`` and ``/v2*/images/*/stage``, any
method) go to the data plane, everything else to the API; with no data plane, everything goes to the API (the
deployment with the data plane off). Bodies stream both ways, chunked or with a Content-Length, a chunk at a time:
the front door never holds a whole request or response. As a load balancer does, it answers nothing itself but a
502 when the plane cannot be reached, adds ``X-Forwarded-For`` / ``X-Forwarded-Proto`` and keeps ``Host``.

``python -m devstack.front_door --fd N --api URL [--data-plane URL]`` serves it on a socket the stack bound.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11
import uvicorn

from devstack.processes import exit_with_parent, listening_socket
from shared.data_routes import is_data_route

# Hop-by-hop headers (RFC 9110 7.6.1) are the connection's, not the message's: never forwarded. ``expect`` too: the
# front door answers 100-continue itself (uvicorn does when the body is first read).
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
    }
)
_READ_SIZE = 256 * 1024
_CONNECT_TIMEOUT_S = 10.0
KEEP_ALIVE_S = 120

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upstream:
    """A plane the front door forwards to."""

    name: str
    host: str
    port: int

    @classmethod
    def from_url(cls, name: str, url: str) -> Upstream:
        """``http://host:port`` as an upstream."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(f"{name}: expected http://host:port, got {url!r}")
        return cls(name, parts.hostname, parts.port)


class _UpstreamFailedError(Exception):
    """The plane could not be reached, or broke the exchange before its response began."""


class FrontDoor:
    """The ASGI application of the front door."""

    def __init__(self, api: Upstream, data_plane: Upstream | None = None) -> None:
        self.api = api
        self.data_plane = data_plane

    def route(self, path: str) -> Upstream:
        """Where a request for ``path`` goes."""
        if self.data_plane is not None and is_data_route(path):
            return self.data_plane
        return self.api

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        upstream = self.route(scope["path"])
        exchange = _Exchange(scope, receive, send, upstream)
        await exchange.run()


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class _Exchange:
    """One request forwarded to one plane and its response streamed back, on a connection of its own."""

    def __init__(self, scope: dict[str, Any], receive: Any, send: Any, upstream: Upstream) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.upstream = upstream
        self.conn = h11.Connection(h11.CLIENT)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def run(self) -> None:
        try:
            try:
                response = await self._forward_request()
            except _UpstreamFailedError as exc:
                scope = self.scope
                log.warning("front door: %s %s -> %s: %s", scope["method"], scope["path"], self.upstream.name, exc)
                await self._bad_gateway(str(exc))
                return
            await self._stream_response(response)
        finally:
            if self.writer is not None:
                self.writer.close()
                with contextlib.suppress(OSError):
                    await self.writer.wait_closed()

    async def _forward_request(self) -> h11.Response:
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(self.upstream.host, self.upstream.port), _CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            raise _UpstreamFailedError(f"cannot connect to the {self.upstream.name}: {exc}") from None
        await self._write(self.conn.send(self._request()))
        body = asyncio.create_task(self._pump_body())
        head = asyncio.create_task(self._response_head())
        done, _ = await asyncio.wait({body, head}, return_when=asyncio.FIRST_COMPLETED)
        if body in done and body.exception() is not None:
            # the client went away, or the plane stopped reading: nothing to answer
            head.cancel()
            with contextlib.suppress(BaseException):
                await head
            raise _UpstreamFailedError(f"request body not delivered: {body.exception()!r}")
        try:
            response = await head
        except _UpstreamFailedError:
            body.cancel()
            raise
        if not body.done():
            # The plane answered before the body ended (a refusal: 413, 415, 409 ...): the rest is not needed.
            body.cancel()
            with contextlib.suppress(BaseException):
                await body
        return response

    def _request(self) -> h11.Request:
        scope = self.scope
        headers: list[tuple[bytes, bytes]] = []
        framed = False
        for name, value in scope["headers"]:
            lowered = name.lower()
            if lowered == b"transfer-encoding":
                framed = True
            if lowered == b"content-length":
                framed = True
                headers.append((lowered, value))
                continue
            if lowered not in _HOP_BY_HOP and not lowered.startswith(b"x-forwarded-"):
                headers.append((lowered, value))
        if framed and not any(name == b"content-length" for name, _ in headers):
            headers.append((b"transfer-encoding", b"chunked"))
        client = scope.get("client")
        if client:
            headers.append((b"x-forwarded-for", str(client[0]).encode()))
        headers.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode()))
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        return h11.Request(method=scope["method"], target=target, headers=headers)

    async def _pump_body(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ConnectionResetError("the client disconnected")
            chunk = message.get("body", b"")
            if chunk:
                await self._write(self.conn.send(h11.Data(data=chunk)))
            if not message.get("more_body", False):
                break
        await self._write(self.conn.send(h11.EndOfMessage()))

    async def _write(self, data: bytes | None) -> None:
        assert self.writer is not None
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _next_event(self) -> Any:
        assert self.reader is not None
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.conn.receive_data(await self.reader.read(_READ_SIZE))

    async def _response_head(self) -> h11.Response:
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, h11.Response):
                    return event
                if isinstance(event, h11.ConnectionClosed):
                    raise _UpstreamFailedError(f"the {self.upstream.name} closed the connection without a response")
                # h11.InformationalResponse (100 Continue): the front door's own client got its own
        except (OSError, h11.RemoteProtocolError) as exc:
            raise _UpstreamFailedError(f"no response from the {self.upstream.name}: {exc!r}") from None

    async def _stream_response(self, response: h11.Response) -> None:
        headers = [(name.lower(), value) for name, value in response.headers if name.lower() not in _HOP_BY_HOP]
        await self.send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        while True:
            # a failure here (the plane died mid-body) propagates: uvicorn breaks the client connection, as a load
            # balancer does when its target resets
            event = await self._next_event()
            if isinstance(event, h11.Data):
                await self.send({"type": "http.response.body", "body": bytes(event.data), "more_body": True})
            elif isinstance(event, h11.EndOfMessage):
                await self.send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            else:
                raise ConnectionResetError(f"the {self.upstream.name} ended its response early: {event!r}")

    async def _bad_gateway(self, reason: str) -> None:
        body = json.dumps({"message": f"Bad Gateway: {reason}", "code": "502 Bad Gateway", "title": "Bad Gateway"})
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await self.send({"type": "http.response.start", "status": 502, "headers": headers})
        await self.send({"type": "http.response.body", "body": body.encode(), "more_body": False})


def build_server(front_door: FrontDoor) -> uvicorn.Server:
    """uvicorn serving the front door (host and port come from the socket it is given)."""
    config = uvicorn.Config(
        front_door,
        log_level=logging.WARNING,
        access_log=False,
        server_header=False,
        date_header=False,
        lifespan="on",
        # longer than clients keep pooled connections between calls (as API Gateway and load balancers do)
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


def main(argv: list[str] | None = None) -> None:
    """Serve the front door on the inherited socket until SIGTERM (or the stack's exit)."""
    parser = argparse.ArgumentParser(prog="python -m devstack.front_door")
    parser.add_argument("--fd", type=int, required=True, help="listening socket inherited from the stack")
    parser.add_argument("--parent-pid", type=int, required=True, help="exit when this process is gone")
    parser.add_argument("--api", required=True, help="the API: http://host:port")
    parser.add_argument("--data-plane", help="the data plane: http://host:port (none: every route to the API)")
    args = parser.parse_args(argv)
    exit_with_parent(args.parent_pid)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    data_plane = Upstream.from_url("data plane", args.data_plane) if args.data_plane else None
    front_door = FrontDoor(Upstream.from_url("API", args.api), data_plane)
    build_server(front_door).run(sockets=[listening_socket(args.fd)])


if __name__ == "__main__":
    main()
