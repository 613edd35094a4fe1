"""The ``sglance`` client against the local stack: presigned single and multipart uploads, a crash and a resume,
retries of failed part PUTs, a refusal, abort, create in one command, verified and resumed downloads (streamed, and
redirected to S3 as behind API Gateway), and the command line.

The server picks the part size (``multipart_part_size``, 64 MiB by default); files are sized from what the stack
runs with, so the multipart cases send two parts, the second one small. moto keeps objects in memory: the whole
module sends about 135 MiB.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import urllib3
from keystoneauth1 import session as ks_session

from devstack.stack import DevStack
from sglance.connection import ApiConnection
from sglance.download import Downloader
from sglance.errors import ChecksumMismatchError, UploadInterruptedError, UploadRefusedError
from sglance.uploader import Uploader
from sglance.wire import FileDigest
from tests.api.support import A_MEMBER, GlanceHttp

pytestmark = pytest.mark.api

MiB = 1024 * 1024
SGLANCE = Path(sys.executable).parent / "sglance"


@pytest.fixture
def uploader(endpoint: str) -> Iterator[Uploader]:
    """A client acting as a member of project A, with short retry delays."""
    with Uploader(endpoint, A_MEMBER.headers, wait_timeout_s=30, retry_backoff_s=0.05, poll_interval_s=0.1) as client:
        yield client


@pytest.fixture
def part_size(stack: DevStack) -> int:
    """The server's multipart part size."""
    return stack.settings.multipart_part_size


def _image(http: GlanceHttp, tag: str) -> str:
    body = {"name": f"sglance-{tag}", "disk_format": "raw", "container_format": "bare", "tags": [tag]}
    return str(http.create(A_MEMBER, **body)["id"])


def _file(tmp_path: Path, size: int, name: str = "image.raw") -> Path:
    path = tmp_path / name
    with path.open("wb") as out:
        remaining = size
        while remaining:
            block = min(remaining, 8 * MiB)
            out.write(os.urandom(block))
            remaining -= block
    return path


def _hashes(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    return hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha512(data).hexdigest()


def _assert_active_with(http: GlanceHttp, image_id: str, path: Path) -> None:
    md5, sha512 = _hashes(path)
    image = http.show(image_id, A_MEMBER).json()
    assert image["status"] == "active"
    assert (image["size"], image["checksum"], image["os_hash_algo"], image["os_hash_value"]) == (
        path.stat().st_size,
        md5,
        "sha512",
        sha512,
    )


def _sglance(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    headers = [f"--header={name}: {value}" for name, value in A_MEMBER.headers.items()]
    command = [str(SGLANCE), *args, "--endpoint", endpoint, *headers]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


class RecordingSession(requests.Session):
    """The HTTP session under the client's keystoneauth session: records every API call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append((str(method), urlsplit(str(url)).path))
        return super().request(method, url, *args, **kwargs)


class FaultyPool(urllib3.PoolManager):
    """Fails the next S3 PUTs as told ("reset": a dropped connection, "expired": S3's 403); records every S3 call."""

    def __init__(self, *faults: str) -> None:
        super().__init__(maxsize=8)
        self.faults = list(faults)
        self.calls: list[tuple[str, str]] = []

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> urllib3.BaseHTTPResponse:  # type: ignore[override]
        self.calls.append((method, urlsplit(url).path))
        if method == "PUT" and self.faults:
            fault = self.faults.pop(0)
            if fault == "reset":
                raise urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
            body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            return urllib3.HTTPResponse(body=body, status=403, preload_content=True)
        return super().urlopen(method, url, redirect=redirect, **kw)


class RewriteAfterHashing:
    """A progress sink that replaces the file's bytes (same size) once hashing is done, before any is sent."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def begin(self, label: str, total: int, completed: int = 0) -> None:
        if label == "uploading":
            self.path.write_bytes(os.urandom(total))

    def advance(self, amount: int) -> None:
        pass

    def close(self) -> None:
        pass


def test_upload__of_a_small_file__is_a_single_put_and_the_image_turns_active_with_its_checksums(
    http: GlanceHttp, tag: str, uploader: Uploader, tmp_path: Path
) -> None:
    image_id = _image(http, tag)
    path = _file(tmp_path, 3 * MiB + 17)

    result = uploader.upload(image_id, path)

    md5, sha512 = _hashes(path)
    assert (result.method, result.status, result.size) == ("single", "active", 3 * MiB + 17)
    assert (result.checksum, result.os_hash_value) == (md5, sha512)
    assert result.seconds_to_active is not None
    _assert_active_with(http, image_id, path)


def test_upload__forced_multipart__sends_every_part_and_the_image_turns_active(
    http: GlanceHttp, tag: str, uploader: Uploader, tmp_path: Path, part_size: int
) -> None:
    image_id = _image(http, tag)
    path = _file(tmp_path, part_size + MiB)

    result = uploader.upload(image_id, path, parallel=4, method="multipart")

    assert (result.method, result.status, result.parts_sent, result.resumed) == ("multipart", "active", (1, 2), False)
    assert result.bytes_sent == part_size + MiB
    _assert_active_with(http, image_id, path)


def test_resume__after_a_crash_after_one_part__sends_only_the_missing_parts(
    http: GlanceHttp, tag: str, uploader: Uploader, tmp_path: Path, part_size: int
) -> None:
    image_id = _image(http, tag)
    path = _file(tmp_path, part_size + MiB)

    with pytest.raises(UploadInterruptedError) as stopped:
        uploader.upload(image_id, path, parallel=1, method="multipart", stop_after_parts=1)
    session = uploader.status(image_id)
    result = uploader.resume(image_id, path)

    assert stopped.value.parts_sent == (1,)
    assert session is not None
    assert (session.image_status, session.missing_parts) == ("uploading", [2])
    assert [p.number for p in session.uploaded_parts] == [1]
    assert (result.resumed, result.parts_sent, result.bytes_sent) == (True, (2,), MiB)
    _assert_active_with(http, image_id, path)


def test_upload__with_a_dropped_connection_and_an_expired_url__retries_and_refreshes_the_url(
    http: GlanceHttp, tag: str, endpoint: str, tmp_path: Path
) -> None:
    image_id = _image(http, tag)
    path = _file(tmp_path, MiB)
    pool = FaultyPool("reset", "expired")
    api_calls = RecordingSession()
    connection = ApiConnection(ks_session.Session(session=api_calls, additional_headers=A_MEMBER.headers), endpoint)

    with Uploader(connection, retry_backoff_s=0.01, wait_timeout_s=30, pool=pool) as client:
        result = client.upload(image_id, path, method="multipart")

    puts = [path for method, path in pool.calls if method == "PUT"]
    refreshes = [path for method, path in api_calls.calls if method == "POST" and path.endswith("/upload/parts")]
    assert (result.status, result.parts_sent) == ("active", (1,))
    assert len(puts) == 3
    assert len(refreshes) == 1
    _assert_active_with(http, image_id, path)


def test_upload__of_bytes_that_differ_from_the_declared_checksum__is_refused_and_the_image_queued(
    http: GlanceHttp, tag: str, uploader: Uploader, tmp_path: Path
) -> None:
    image_id = _image(http, tag)
    path = _file(tmp_path, MiB)

    with pytest.raises(UploadRefusedError) as refused:
        uploader.upload(image_id, path, progress=RewriteAfterHashing(path))

    image = http.show(image_id, A_MEMBER).json()
    assert refused.value.status == "queued"
    assert "checksum" in refused.value.reason
    assert image["status"] == "queued"
    assert image["os_glance_upload_error"] == refused.value.reason


def test_abort__of_an_open_upload__queues_the_image_and_closes_the_session(
    http: GlanceHttp, tag: str, uploader: Uploader, endpoint: str, tmp_path: Path
) -> None:
    image_id = _image(http, tag)
    path = _file(tmp_path, MiB)
    with pytest.raises(UploadInterruptedError):
        uploader.upload(image_id, path, method="multipart", stop_after_parts=1)

    status = _sglance(endpoint, "status", image_id)
    aborted = _sglance(endpoint, "abort", image_id)
    after = http.request("GET", f"/v2/images/{image_id}/upload", persona=A_MEMBER)
    image = http.show(image_id, A_MEMBER).json()
    again = uploader.upload(image_id, path)

    assert status.returncode == 0, status.stderr
    assert "missing: 0" in status.stdout
    assert aborted.returncode == 0, aborted.stderr
    assert after.status_code == 404
    assert image["status"] == "queued"
    assert again.status == "active"


def test_cli_upload__exits_0_with_a_summary_and_the_image_active(
    http: GlanceHttp, tag: str, endpoint: str, tmp_path: Path
) -> None:
    image_id = _image(http, tag)
    path = _file(tmp_path, 2 * MiB)

    done = _sglance(endpoint, "upload", image_id, str(path), "--parallel", "2", "--wait-timeout", "30")
    no_session = _sglance(endpoint, "status", image_id)

    assert done.returncode == 0, done.stderr
    assert f"image {image_id} active" in done.stdout
    assert "checksums verified" in done.stdout
    assert no_session.returncode == 1
    _assert_active_with(http, image_id, path)


def test_verify__of_an_image_with_another_hash__raises_checksum_mismatch(tmp_path: Path) -> None:
    path = _file(tmp_path, 1024)
    md5, sha512 = _hashes(path)
    digest = FileDigest(1024, md5, sha512, 0.0)
    image = {"id": "x", "size": 1024, "checksum": md5, "os_hash_algo": "sha512", "os_hash_value": "0" * 128}

    with pytest.raises(ChecksumMismatchError) as mismatch:
        Uploader.verify(image, path, digest)

    assert list(mismatch.value.mismatches) == ["os_hash_value"]


def test_cli_create__registers_uploads_and_verifies_in_one_command(
    http: GlanceHttp, tag: str, endpoint: str, tmp_path: Path
) -> None:
    path = _file(tmp_path, 2 * MiB + 3)

    done = _sglance(
        endpoint, "create", f"sglance-{tag}", str(path), "--tag", tag, "--property", "os_distro=cirros",
        "--visibility", "private", "--min-disk", "1", "--wait-timeout", "30",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    image_id = done.stdout.split()[1]
    image = http.show(image_id, A_MEMBER).json()
    assert (image["name"], image["tags"], image["os_distro"], image["visibility"], image["min_disk"]) == (
        f"sglance-{tag}",
        [tag],
        "cirros",
        "private",
        1,
    )
    assert image["owner"] == A_MEMBER.project_id
    _assert_active_with(http, image_id, path)


class RecordingPool(urllib3.PoolManager):
    """Records the headers of every request sent through it (the presigned S3 requests)."""

    def __init__(self) -> None:
        super().__init__(maxsize=8)
        self.sent: list[tuple[str, dict[str, str]]] = []

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> urllib3.BaseHTTPResponse:  # type: ignore[override]
        self.sent.append((method, dict(kw.get("headers") or {})))
        return super().urlopen(method, url, redirect=redirect, **kw)


def test_download__resumes_a_partial_file_and_verifies_the_whole(
    http: GlanceHttp, tag: str, uploader: Uploader, tmp_path: Path
) -> None:
    image_id = _image(http, tag)
    path = _file(tmp_path, 5 * MiB + 1)
    uploader.upload(image_id, path)
    target = tmp_path / "back.raw"
    target.with_name("back.raw.part").write_bytes(path.read_bytes()[: 2 * MiB])

    result = Downloader(uploader.api, uploader.pool).download(image_id, target)

    assert (result.resumed_from, result.bytes_received) == (2 * MiB, 3 * MiB + 1)
    assert target.read_bytes() == path.read_bytes()
    assert not target.with_name("back.raw.part").exists()
    assert (result.checksum, result.os_hash_value) == _hashes(path)


def test_download__redirected_to_a_presigned_get__sends_s3_no_api_credentials(
    http: GlanceHttp, tag: str, uploader: Uploader, redirect_endpoint: str, tmp_path: Path
) -> None:
    image_id = _image(http, tag)
    path = _file(tmp_path, MiB)
    uploader.upload(image_id, path)
    pool = RecordingPool()

    with Uploader(redirect_endpoint, A_MEMBER.headers, token="a-token", pool=pool) as behind_gateway:
        result = Downloader(behind_gateway.api, pool).download(image_id, tmp_path / "back.raw")

    assert (tmp_path / "back.raw").read_bytes() == path.read_bytes()
    assert result.bytes_received == MiB
    assert [method for method, _ in pool.sent] == ["GET"]
    assert not {name.lower() for name in pool.sent[0][1]} & {"x-auth-token", "x-project-id", "x-roles", "x-user-id"}
