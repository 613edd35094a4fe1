"""``sglance`` against an image API that misbehaves, served by a small stub on loopback: what a corrupt store, a
download cut short or a source Glance without digests look like to the client. The stub stands in for the API only
where the real one cannot be made to misbehave; everything it answers has the shape Glance gives it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse

from sglance.api import ImageApi
from sglance.connection import ApiConnection
from sglance.download import Downloader
from sglance.errors import ChecksumMismatchError, SourceError
from sglance.sources import ApiSource
from tests.support.serving import serve

pytestmark = pytest.mark.integration

DATA = os.urandom(3 * 1024 * 1024 + 5)


def _image(**changes: Any) -> dict[str, Any]:
    return {
        "id": "img",
        "status": "active",
        "size": len(DATA),
        "checksum": hashlib.md5(DATA, usedforsecurity=False).hexdigest(),
        "os_hash_algo": "sha512",
        "os_hash_value": hashlib.sha512(DATA).hexdigest(),
        **changes,
    }


def _stub(image: dict[str, Any], body: bytes, *, cut_after: int | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/v2/images/{image_id}")
    def show(image_id: str) -> dict[str, Any]:
        return image

    @app.get("/v2/images/{image_id}/file")
    def data(image_id: str, request: Request) -> Response:
        first, _, last = request.headers.get("range", "bytes=0-").removeprefix("bytes=").partition("-")
        start, end = int(first), int(last) + 1 if last else len(body)
        chunk = body[start:end]

        def stream() -> Iterator[bytes]:
            yield chunk[:cut_after] if cut_after is not None else chunk

        headers = {"Content-Length": str(len(chunk))}
        if request.headers.get("range"):
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(body)}"
        return StreamingResponse(stream(), status_code=206 if request.headers.get("range") else 200, headers=headers)

    return app


def _api(url: str) -> ImageApi:
    return ImageApi(ApiConnection.from_headers(url))


def test_download__of_bytes_that_are_not_the_image__fails_and_leaves_no_file(tmp_path: Path) -> None:
    corrupt = bytearray(DATA)
    corrupt[1000] ^= 0xFF
    with serve(_stub(_image(), bytes(corrupt))) as url:
        api = _api(url)
        with pytest.raises(ChecksumMismatchError) as mismatch:
            Downloader(api).download("img", tmp_path / "out")
        api.connection.close()

    assert set(mismatch.value.mismatches) == {"checksum", "os_hash_value"}
    assert list(tmp_path.iterdir()) == []


def test_download__cut_short__keeps_the_part_file_for_a_resume(tmp_path: Path) -> None:
    with serve(_stub(_image(), DATA, cut_after=1024 * 1024)) as url:
        api = _api(url)
        with pytest.raises(SourceError, match="early|IncompleteRead|Connection"):
            Downloader(api).download("img", tmp_path / "out")
        api.connection.close()

    assert not (tmp_path / "out").exists()
    assert (tmp_path / "out.part").stat().st_size == 1024 * 1024


def test_source_range__answered_with_the_whole_image__is_refused() -> None:
    app = FastAPI()

    @app.get("/v2/images/{image_id}/file")
    def whole(image_id: str) -> Response:
        return Response(DATA, media_type="application/octet-stream")

    with serve(app) as url:
        api = _api(url)
        source = ApiSource(api, "img", len(DATA), pool=None)  # type: ignore[arg-type]
        with pytest.raises(SourceError, match="not 206"):
            list(source.chunks(10, 100, threading.Event()))
        api.connection.close()
