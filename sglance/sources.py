"""Where the bytes of an upload come from: a local file, or another image API's ``GET /file`` (ranges of it).

A source hands out exactly ``length`` bytes from ``offset`` in chunks of at most ``CHUNK_SIZE``: what a transfer
thread holds in memory at a time, whatever the image's size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from sglance.api import ImageApi
from sglance.errors import ApiError, SourceError
from sglance.wire import MiB

# Bytes read from the source and sent per write: the whole memory a transfer thread needs.
CHUNK_SIZE = MiB
_REDIRECT_TIMEOUT = urllib3.Timeout(connect=10.0, read=300.0)


class Cancelled(Exception):
    """The transfer was told to stop while a body was being read."""


class RetryableSourceError(SourceError):
    """The source failed in a way another attempt may not (a connection cut, a 5xx)."""


class ByteSource(Protocol):
    """Bytes by range."""

    def chunks(self, offset: int, length: int, stop: threading.Event) -> Iterator[bytes]:
        """Exactly ``length`` bytes from ``offset``; raises ``SourceError`` if fewer arrive, ``Cancelled`` on stop."""


class FileSource:
    """A local file (which must not change while it is sent)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def chunks(self, offset: int, length: int, stop: threading.Event) -> Iterator[bytes]:
        """Seek and read."""
        with self.path.open("rb") as file:
            file.seek(offset)
            remaining = length
            while remaining:
                if stop.is_set():
                    raise Cancelled
                chunk = file.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    raise SourceError(f"{self.path} is shorter than when it was hashed")
                remaining -= len(chunk)
                yield chunk


class ApiSource:
    """The data of an image of an image API (a Glance, or ours), read with range requests.

    A redirect (a presigned S3 GET) is followed with ``pool``, without the API's credentials.
    """

    def __init__(self, api: ImageApi, image_id: str, size: int, pool: urllib3.PoolManager) -> None:
        self.api = api
        self.image_id = image_id
        self.size = size
        self.pool = pool

    def chunks(self, offset: int, length: int, stop: threading.Event) -> Iterator[bytes]:
        """One GET (a range unless it is the whole image), streamed."""
        whole = offset == 0 and length == self.size
        try:
            response = self.api.open_data(self.image_id, offset, None if whole else length)
        except ApiError as exc:
            retry = exc.status == 0 or exc.status >= 500
            raise (RetryableSourceError if retry else SourceError)(f"reading the source: {exc}") from exc
        try:
            if response.is_redirect:
                yield from self._redirected(response.headers["Location"], offset, length, whole, stop)
                return
            if not whole and response.status_code != 206:
                raise SourceError(f"the source answered {response.status_code} to a range request, not 206")
            yield from _exactly(_raw_chunks(response.raw, stop), length)
        except Urllib3Error as exc:
            raise RetryableSourceError(f"reading the source: {exc}") from exc
        finally:
            response.close()

    def _redirected(self, url: str, offset: int, length: int, whole: bool, stop: threading.Event) -> Iterator[bytes]:
        headers = {} if whole else {"Range": f"bytes={offset}-{offset + length - 1}"}
        response = self.pool.request(
            "GET", url, headers=headers, preload_content=False, timeout=_REDIRECT_TIMEOUT, retries=False
        )
        try:
            if response.status not in ((200,) if whole else (206,)):
                raise RetryableSourceError(f"the redirected download answered {response.status}")
            yield from _exactly(_raw_chunks(response, stop), length)
        finally:
            response.release_conn()


def _raw_chunks(raw: urllib3.BaseHTTPResponse, stop: threading.Event) -> Iterator[bytes]:
    while True:
        if stop.is_set():
            raise Cancelled
        chunk = raw.read(CHUNK_SIZE)
        if not chunk:
            return
        yield chunk


def _exactly(chunks: Iterator[bytes], length: int) -> Iterator[bytes]:
    remaining = length
    for chunk in chunks:
        if len(chunk) > remaining:
            raise SourceError(f"the source sent more than the {length} bytes asked for")
        remaining -= len(chunk)
        yield chunk
    if remaining:
        raise RetryableSourceError(f"the source ended {remaining} bytes early")
