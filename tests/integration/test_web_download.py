"""web-download into S3 (moto server) from a real HTTP server on loopback, through the URL policy.

The default policy refuses loopback, so most tests allowlist 127.0.0.1 and the server's port, exactly as an
operator would allowlist an internal mirror.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devstack.provision import provision
from shared.config import Settings
from shared.net.ssrf import UrlNotAllowedError, UrlPolicy, WebDownloadError
from shared.net.web_fetch import open_url
from shared.resources import resources_for
from shared.services.web_download import download_to_bucket
from shared.streams.digest import SizeCapExceededError, StreamDigest
from shared.upload_bucket.s3 import S3UploadBucket

pytestmark = pytest.mark.integration

REGION = "us-east-1"
MiB = 1024 * 1024
PART_SIZE = 5 * MiB
KEY = "images/0b9e7d5e-web/session-1"
BIG = os.urandom(11 * MiB + 12345)  # three multipart parts
SMALL = os.urandom(300 * 1024 + 7)  # one PUT
STALL_SECONDS = 1.5
READ_TIMEOUT = 0.4


REDIRECTS = {
    "redirect": "/small",
    "to-metadata": "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "to-localhost": "http://localhost:{port}/image",
    "to-other-port": "http://127.0.0.1:{other_port}/image",
    "to-encoded": "http://2130706433:{port}/image",
}
# path -> (declared Content-Length, bytes sent, pause before closing)
PARTIAL = {
    "truncated": (2 * MiB, MiB, 0.0),
    "truncated-multipart": (len(BIG), len(BIG) - MiB, 0.0),
    "stall": (MiB, 64 * 1024, STALL_SECONDS),
}


@dataclass
class Site:
    """A loopback HTTP server with one behaviour per path; records every request it gets."""

    server: ThreadingHTTPServer
    other_port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)
    tokens: list[tuple[str, str | None]] = field(default_factory=list)  # (path, X-Auth-Token header)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            site.requests.append((self.path, self.headers.get("Host", "")))
            site.tokens.append((self.path, self.headers.get("X-Auth-Token")))
            try:
                self._route()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _route(self) -> None:
            name, _, number = self.path.partition("/")[2].partition("/")
            if name == "chain":  # /chain/n takes n redirects to reach /small
                left = int(number)
                self._redirect(f"/chain/{left - 1}" if left > 1 else site.url("/small"))
            elif name == "loop":  # never ends
                self._redirect(f"/loop/{int(number) + 1}")
            elif name in REDIRECTS:
                self._redirect(REDIRECTS[name].format(port=site.port, other_port=site.other_port))
            elif name in PARTIAL:
                self._partial(*PARTIAL[name])
            elif name == "image":
                self._body(BIG)
            elif name == "small":
                self._body(SMALL)
            elif name == "host":
                self._body(self.headers.get("Host", "").encode())
            else:
                self.send_response(404)
                self.send_header("Content-Length", "9")
                self.end_headers()
                self.wfile.write(b"not found")

        def _body(self, data: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _partial(self, declared: int, sent: int, pause: float) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(declared))
            self.end_headers()
            self.wfile.write(BIG[:sent])
            self.wfile.flush()
            time.sleep(pause)
            self.close_connection = True

    return Handler


def _serve(site: Site) -> threading.Thread:
    thread = threading.Thread(target=site.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def site() -> Iterator[Site]:
    """The image server, plus a second loopback server (``other_port``) that no test may reach."""
    main = Site(ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))
    main.server.RequestHandlerClass = _handler(main)
    other = Site(ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))
    other.server.RequestHandlerClass = _handler(other)
    main.other_port = other.port
    threads = [_serve(main), _serve(other)]
    yield main
    assert other.requests == [], "a refused redirect target was contacted"
    for server in (main.server, other.server):
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=5)


@pytest.fixture
def bucket(moto_reset: str) -> Iterator[S3UploadBucket]:
    settings = Settings(aws_endpoint_url=moto_reset, aws_region=REGION)
    resources = resources_for(settings)
    provision(resources, moto_reset, REGION)
    made = S3UploadBucket(resources.image_bucket, REGION, moto_reset)
    yield made
    made.client.close()


@pytest.fixture
def policy(site: Site) -> UrlPolicy:
    """The default policy with the test server allowlisted (host and port) and a short read timeout."""
    return UrlPolicy(
        allowed_hosts=("127.0.0.1",),
        allowed_ports=(80, 443, site.port),
        max_redirects=5,
        connect_timeout=2.0,
        read_timeout=READ_TIMEOUT,
    )


class Recorder:
    """An ``on_chunk`` that keeps what it saw."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def __call__(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks)


def download(url: str, policy: UrlPolicy, bucket: S3UploadBucket, on_chunk: Callable[[bytes], None]) -> int:
    return download_to_bucket(url, policy, bucket, KEY, PART_SIZE, on_chunk, chunk_size=256 * 1024)


def stored(bucket: S3UploadBucket) -> bytes:
    return b"".join(bucket.read(KEY).chunks)


def assert_bucket_empty(bucket: S3UploadBucket) -> None:
    objects = bucket.client.list_objects_v2(Bucket=bucket.bucket)
    uploads = bucket.client.list_multipart_uploads(Bucket=bucket.bucket)
    assert objects.get("KeyCount", 0) == 0, objects.get("Contents")
    assert uploads.get("Uploads", []) == []


# -- the policy at the door ----------------------------------------------------------------------------------------


def test_default_policy__refuses_the_loopback_server(site: Site, bucket: S3UploadBucket) -> None:
    seen = Recorder()

    with pytest.raises(UrlNotAllowedError):
        download(site.url("/image"), UrlPolicy.from_settings(Settings()), bucket, seen)
    with pytest.raises(UrlNotAllowedError, match="non-public|not public"):
        download(site.url("/image"), UrlPolicy(allowed_ports=(site.port,)), bucket, seen)

    assert site.requests == []
    assert seen.chunks == []
    assert_bucket_empty(bucket)


# -- successful downloads ------------------------------------------------------------------------------------------


def test_download__of_a_large_image__lands_in_s3_as_multipart_and_every_chunk_is_seen(
    site: Site, bucket: S3UploadBucket, policy: UrlPolicy
) -> None:
    seen = Recorder()

    with StreamDigest("sha512", None, size_cap=64 * MiB) as digest:

        def on_chunk(chunk: bytes) -> None:  # what the import worker does, plus a record
            seen(chunk)
            digest.feed(chunk)

        written = download(site.url("/image"), policy, bucket, on_chunk)
        result = digest.finish()

    assert written == len(BIG)
    assert stored(bucket) == BIG
    assert seen.data == BIG
    assert max(len(c) for c in seen.chunks) <= 256 * 1024
    assert (result.size, result.checksum) == (len(BIG), hashlib.md5(BIG).hexdigest())
    assert result.os_hash_value == hashlib.sha512(BIG).hexdigest()
    etag = bucket.client.head_object(Bucket=bucket.bucket, Key=KEY)["ETag"]
    assert etag.strip('"').endswith("-3")  # three parts


def test_download__of_a_small_image__is_one_put(site: Site, bucket: S3UploadBucket, policy: UrlPolicy) -> None:
    seen = Recorder()

    assert download(site.url("/small"), policy, bucket, seen) == len(SMALL)

    assert stored(bucket) == SMALL
    assert seen.data == SMALL
    etag = bucket.client.head_object(Bucket=bucket.bucket, Key=KEY)["ETag"]
    assert etag.strip('"') == hashlib.md5(SMALL).hexdigest()


def test_download__following_a_relative_redirect__stores_the_target(
    site: Site, bucket: S3UploadBucket, policy: UrlPolicy
) -> None:
    download(site.url("/redirect"), policy, bucket, Recorder())

    assert stored(bucket) == SMALL
    assert site.paths() == ["/redirect", "/small"]


def test_download__with_exactly_max_redirects__succeeds(site: Site, bucket: S3UploadBucket, policy: UrlPolicy) -> None:
    download(site.url("/chain/5"), policy, bucket, Recorder())

    assert stored(bucket) == SMALL
    assert site.paths() == ["/chain/5", "/chain/4", "/chain/3", "/chain/2", "/chain/1", "/small"]


def test_fetch__connects_to_the_validated_address_and_keeps_the_name_in_the_host_header(
    site: Site, policy: UrlPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once, by the check; a later, different answer is never used."""
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "10.255.255.1", "10.255.255.1"])
    lookups: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "mirror.test":
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    allowlisted = UrlPolicy(allowed_hosts=("mirror.test",), allowed_ports=(site.port,), read_timeout=READ_TIMEOUT)

    with open_url(f"http://mirror.test:{site.port}/host", allowlisted) as response:
        body = b"".join(response.iter_content(1024))

    assert body == f"mirror.test:{site.port}".encode()
    assert lookups == ["mirror.test"]


# -- refusals and failures leave nothing behind ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/to-metadata", "/to-localhost", "/to-other-port", "/to-encoded"])
def test_download__redirecting_to_a_disallowed_target__is_refused_at_the_hop(
    path: str, site: Site, bucket: S3UploadBucket, policy: UrlPolicy
) -> None:
    seen = Recorder()

    with pytest.raises(UrlNotAllowedError, match="redirects to a URL that is not allowed"):
        download(site.url(path), policy, bucket, seen)

    assert site.paths() == [path]
    assert seen.chunks == []
    assert_bucket_empty(bucket)


def test_download__with_more_than_max_redirects__is_refused(
    site: Site, bucket: S3UploadBucket, policy: UrlPolicy
) -> None:
    with pytest.raises(WebDownloadError, match="more than 5 redirects"):
        download(site.url("/loop/0"), policy, bucket, Recorder())

    assert site.paths() == [f"/loop/{n}" for n in range(6)]
    assert_bucket_empty(bucket)


def test_download__of_a_missing_file__is_refused_with_the_status(
    site: Site, bucket: S3UploadBucket, policy: UrlPolicy
) -> None:
    with pytest.raises(WebDownloadError) as caught:
        download(site.url("/nothing-here.qcow2"), policy, bucket, Recorder())

    assert caught.value.message == "The URL could not be fetched: the server answered HTTP 404 Not Found."
    assert_bucket_empty(bucket)


class AbortRecordingBucket(S3UploadBucket):
    """The image bucket on the same client, noting the key of every AbortMultipartUpload that client sends."""

    def __init__(self, bucket: S3UploadBucket) -> None:
        super().__init__(bucket.bucket, REGION, client=bucket.client)
        self.aborted: list[str] = []
        self.client.meta.events.register("provide-client-params.s3.AbortMultipartUpload", self._record)

    def _record(self, params: dict[str, Any], **kwargs: Any) -> None:
        self.aborted.append(params["Key"])


@pytest.mark.parametrize(("path", "parts_written"), [("/truncated", False), ("/truncated-multipart", True)])
def test_download__of_a_truncated_body__fails_and_stores_nothing(
    path: str, parts_written: bool, site: Site, bucket: S3UploadBucket, policy: UrlPolicy
) -> None:
    seen = Recorder()
    observed = AbortRecordingBucket(bucket)

    with pytest.raises(WebDownloadError, match="broke off before the body was complete"):
        download(site.url(path), policy, observed, seen)

    assert seen.chunks
    assert observed.aborted == ([KEY] if parts_written else [])
    assert_bucket_empty(bucket)


def test_download__of_a_stalled_body__times_out_and_stores_nothing(
    site: Site, bucket: S3UploadBucket, policy: UrlPolicy
) -> None:
    started = time.monotonic()

    with pytest.raises(WebDownloadError, match="stopped sending data"):
        download(site.url("/stall"), policy, bucket, Recorder())

    assert time.monotonic() - started < STALL_SECONDS
    assert_bucket_empty(bucket)


def test_download__stopped_by_the_size_cap__stores_nothing(
    site: Site, bucket: S3UploadBucket, policy: UrlPolicy
) -> None:
    observed = AbortRecordingBucket(bucket)

    with StreamDigest("sha256", None, size_cap=6 * MiB) as digest, pytest.raises(SizeCapExceededError):
        download(site.url("/image"), policy, observed, digest.feed)

    assert observed.aborted == [KEY]  # the first 5 MiB part had been uploaded
    assert_bucket_empty(bucket)


def test_headers__follow_a_same_origin_redirect_but_never_go_to_another_host(site: Site, policy: UrlPolicy) -> None:
    # glance-download's token: sent to the catalog URL's origin only
    both = dataclasses.replace(policy, allowed_hosts=("127.0.0.1", "localhost"))
    token = {"X-Auth-Token": "caller-token"}
    with open_url(site.url("/redirect"), both, token) as response:
        b"".join(response.iter_content(MiB))
    with open_url(site.url("/to-localhost"), both, token) as response:
        b"".join(response.iter_content(MiB))
    assert site.tokens == [
        ("/redirect", "caller-token"),
        ("/small", "caller-token"),
        ("/to-localhost", "caller-token"),
        ("/image", None),
    ]
