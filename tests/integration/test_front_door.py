"""devstack/front_door.py over real sockets: routing as the deployed front door, bodies streamed both ways (chunked
or with a length), early refusals passed on, and a 502 when a plane cannot be reached."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devstack.front_door import FrontDoor, Upstream
from tests.support.serving import serve

MiB = 1024 * 1024


def _plane(name: str) -> Any:
    """An ASGI upstream that reads the whole body and answers what it saw, as JSON (``/refuse``: 413 unread;
    ``/big/N``: N MiB streamed back, chunked)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if scope["path"] == "/refuse":
            await send({"type": "http.response.start", "status": 413, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"no"})
            return
        if scope["path"].startswith("/big/"):
            await send({"type": "http.response.start", "status": 200, "headers": []})
            block = bytes(range(256)) * 4096
            for _ in range(int(scope["path"].rsplit("/", 1)[1])):
                await send({"type": "http.response.body", "body": block, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        digest, size = hashlib.md5(usedforsecurity=False), 0
        while True:
            message = await receive()
            digest.update(message.get("body", b""))
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        seen = {
            "plane": name,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "size": size,
            "md5": digest.hexdigest(),
            "headers": headers,
        }
        body = json.dumps(seen).encode()
        response_headers = [(b"content-type", b"application/json"), (b"x-plane", name.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture(scope="module")
def planes() -> Iterator[tuple[str, str]]:
    with serve(_plane("api")) as api, serve(_plane("data")) as data:
        yield api, data


@pytest.fixture(scope="module")
def front_door(planes: tuple[str, str]) -> Iterator[str]:
    api, data = planes
    with serve(FrontDoor(Upstream.from_url("API", api), Upstream.from_url("data plane", data))) as url:
        yield url


@pytest.mark.parametrize(
    ("method", "path", "plane"),
    [
        ("PUT", "/v2/images/abc/file", "data"),
        ("GET", "/v2/images/abc/file", "data"),
        ("DELETE", "/v2/images/abc/file", "data"),
        ("PUT", "/v2/images/abc/stage", "data"),
        ("PUT", "/v2.12/images/abc/file", "data"),
        ("GET", "/v2/images/abc", "api"),
        ("POST", "/v2/images/abc/import", "api"),
        ("POST", "/v2/images/abc/upload", "api"),
        ("GET", "/", "api"),
    ],
)
def test_front_door__routes_by_path_as_the_deployed_one(front_door: str, method: str, path: str, plane: str) -> None:
    seen = requests.request(method, f"{front_door}{path}?prefer=s3", timeout=10).json()

    assert (seen["plane"], seen["method"], seen["path"], seen["query"]) == (plane, method, path, "prefer=s3")


def test_front_door__without_a_data_plane__sends_every_route_to_the_api(planes: tuple[str, str]) -> None:
    with serve(FrontDoor(Upstream.from_url("API", planes[0]))) as url:
        seen = requests.put(f"{url}/v2/images/abc/file", data=b"x", timeout=10).json()

    assert seen["plane"] == "api"


def test_front_door__keeps_host_and_adds_forwarded_headers(front_door: str) -> None:
    headers = requests.get(f"{front_door}/v2/images", headers={"Host": "images.example:9292"}, timeout=10).json()[
        "headers"
    ]

    assert headers["host"] == "images.example:9292"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"


def test_front_door__streams_a_chunked_request_body_as_chunked(front_door: str) -> None:
    block = bytes(range(256)) * 4096
    expected = hashlib.md5(block * 40, usedforsecurity=False).hexdigest()

    seen = requests.put(f"{front_door}/v2/images/abc/file", data=(block for _ in range(40)), timeout=60).json()

    assert (seen["size"], seen["md5"]) == (40 * MiB, expected)
    assert seen["headers"]["transfer-encoding"] == "chunked" and "content-length" not in seen["headers"]


def test_front_door__passes_a_content_length_body_with_its_length(front_door: str) -> None:
    payload = b"z" * (3 * MiB + 17)

    seen = requests.put(f"{front_door}/v2/images/abc/stage", data=payload, timeout=60).json()

    assert (seen["size"], seen["headers"]["content-length"]) == (len(payload), str(len(payload)))
    assert "transfer-encoding" not in seen["headers"]


def test_front_door__streams_a_chunked_response_body(front_door: str) -> None:
    block = bytes(range(256)) * 4096
    digest = hashlib.md5(usedforsecurity=False)

    with requests.get(f"{front_door}/big/48", stream=True, timeout=60) as response:
        for chunk in response.iter_content(MiB):
            digest.update(chunk)

    assert response.status_code == 200
    assert digest.hexdigest() == hashlib.md5(block * 48, usedforsecurity=False).hexdigest()


def test_front_door__a_refusal_before_the_body_is_read__reaches_the_client(front_door: str) -> None:
    response = requests.put(f"{front_door}/refuse", data=b"x" * 4096, timeout=10)

    assert (response.status_code, response.content) == (413, b"no")


def test_front_door__a_plane_that_cannot_be_reached__is_502_json(planes: tuple[str, str]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with serve(FrontDoor(Upstream.from_url("API", planes[0]), Upstream("data plane", "127.0.0.1", port))) as url:
        response = requests.get(f"{url}/v2/images/abc/file", timeout=10)

    assert response.status_code == 502
    assert "data plane" in response.json()["message"]
