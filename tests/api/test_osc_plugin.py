"""The ``openstack`` CLI (python-openstackclient) with this project's plugin installed, as a subprocess against the
local stack, with the command line ``make run`` prints (``--os-auth-type none --os-endpoint URL``: the development
identity, an admin): ``image upload`` (create + presigned upload + verify, or into an existing image), ``image upload
show|resume|abort``, ``image download``. ``image migrate`` runs in tests/migration, against a real Glance.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import DevStack
from sglance.errors import UploadInterruptedError
from sglance.uploader import Uploader
from tests.api.support import GlanceHttp

pytestmark = pytest.mark.api

MiB = 1024 * 1024
OPENSTACK = Path(sys.executable).parent / "openstack"


def _openstack(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    # A clouds.yaml or OS_* variables of the person running the tests must not redirect the CLI.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "SGLANCE_"))}
    command = [str(OPENSTACK), "--os-auth-type", "none", "--os-endpoint", endpoint, "--os-image-api-version", "2"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, timeout=120, check=False, stdin=subprocess.DEVNULL
    )


def _json(endpoint: str, *args: str) -> Any:
    done = _openstack(endpoint, *args, "-f", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "disk.raw"
    path.write_bytes(os.urandom(size))
    return path


def _digests(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    return hashlib.md5(data, usedforsecurity=False).hexdigest(), hashlib.sha512(data).hexdigest()


def test_image_upload__creates_the_image_uploads_in_parts_and_verifies_it(
    endpoint: str, http: GlanceHttp, tag: str, tmp_path: Path, stack: DevStack
) -> None:
    path = _file(tmp_path, stack.settings.multipart_part_size + MiB)

    shown = _json(
        endpoint, "image", "upload", f"osc-{tag}", "--file", str(path), "--method", "multipart", "--parallel", "2",
        "--disk-format", "raw", "--property", "os_distro=cirros", "--tag", tag, "--min-ram", "256",
    )  # fmt: skip

    image = http.show(shown["id"]).json()
    md5, sha512 = _digests(path)
    assert (shown["status"], shown["method"], shown["parts_sent"], shown["verified"]) == (
        "active",
        "multipart",
        2,
        True,
    )
    assert (image["name"], image["status"], image["os_distro"], image["tags"], image["min_ram"]) == (
        f"osc-{tag}",
        "active",
        "cirros",
        [tag],
        256,
    )
    assert (image["checksum"], image["os_hash_value"]) == (md5, sha512) == (shown["checksum"], shown["os_hash_value"])


def test_image_upload__into_an_existing_image_and_download__round_trips_verified(
    endpoint: str, http: GlanceHttp, tag: str, tmp_path: Path
) -> None:
    path = _file(tmp_path, 3 * MiB + 1)
    image_id = http.create(name=f"osc-{tag}", disk_format="raw", container_format="bare", tags=[tag])["id"]
    target = tmp_path / "back.raw"

    uploaded = _json(endpoint, "image", "upload", "--image", image_id, "--file", str(path))
    downloaded = _json(endpoint, "image", "download", image_id, "--file", str(target))

    assert (uploaded["id"], uploaded["status"], uploaded["method"]) == (image_id, "active", "single")
    assert (downloaded["verified"], downloaded["bytes_received"], downloaded["checksum"]) == (
        True,
        path.stat().st_size,
        _digests(path)[0],
    )
    assert target.read_bytes() == path.read_bytes()


def test_image_upload_show_resume_abort__continue_or_drop_an_interrupted_upload(
    endpoint: str, http: GlanceHttp, tag: str, tmp_path: Path, stack: DevStack
) -> None:
    path = _file(tmp_path, stack.settings.multipart_part_size + 2 * MiB)
    ids = [
        http.create(name=f"osc-{tag}-{i}", disk_format="raw", container_format="bare", tags=[tag])["id"] for i in (1, 2)
    ]
    with Uploader(endpoint) as uploader:
        for image_id in ids:
            with pytest.raises(UploadInterruptedError):
                uploader.upload(image_id, path, parallel=1, method="multipart", stop_after_parts=1)

    status = _json(endpoint, "image", "upload", "show", ids[0])
    resumed = _json(endpoint, "image", "upload", "resume", ids[0], "--file", str(path))
    aborted = _openstack(endpoint, "image", "upload", "abort", ids[1])
    none_open = _openstack(endpoint, "image", "upload", "show", ids[1])

    assert (status["image_status"], status["parts_done"], status["parts_missing"]) == ("uploading", "1", "2")
    assert (resumed["status"], resumed["resumed"], resumed["parts_sent"]) == ("active", True, 1)
    assert aborted.returncode == 0, aborted.stderr
    assert http.show(ids[1]).json()["status"] == "queued"
    assert none_open.returncode == 1
    assert f"image {ids[1]} has no open upload" in none_open.stderr


def test_image_upload__of_a_missing_file__fails_before_creating_anything(
    endpoint: str, http: GlanceHttp, tag: str
) -> None:
    done = _openstack(endpoint, "image", "upload", f"osc-{tag}", "--file", "/nonexistent/disk.raw", "--tag", tag)

    assert done.returncode == 1
    assert "/nonexistent/disk.raw: no such file" in done.stderr
    assert http.list_ids(tag=tag) == []
