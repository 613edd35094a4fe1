"""The deployed shape on one machine: real clients through the front door, whose data routes reach the data plane
(its own process) and whose other routes reach the API with the API function's body limit.

- ``openstack image create --file`` of a real qcow2 larger than the API's limit, and ``openstack image save``;
- ``openstack image create --import`` (glance-direct: ``PUT /stage`` then the import call);
- glanceclient's chunked upload (Nova's and Cinder's shape: ``images.upload`` with a file-like body, no
  Content-Length) of 1 GiB, with the data plane's peak memory read from /proc and bounded, then the streamed
  download checked against both hashes;
- the same body sent to the API directly: Glance's 413, as JSON, naming the data plane and the presigned upload.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.stack import DevStack
from tests.api.support import A_MEMBER, GlanceHttp

pytestmark = pytest.mark.api

MiB = 1024 * 1024
GiB = 1024 * MiB
OPENSTACK = Path(sys.executable).parent / "openstack"
CLI_TIMEOUT_S = 300
QEMU_IMG = shutil.which("qemu-img")
needs_qemu_img = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img is not installed (Debian: qemu-utils)")


def _openstack(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    # A clouds.yaml or OS_* variables of the person running the tests must not redirect the CLI.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    command = [str(OPENSTACK), "--os-auth-type", "none", "--os-endpoint", endpoint, "--os-image-api-version", "2"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, timeout=CLI_TIMEOUT_S, check=False, stdin=None
    )


def _image(http: GlanceHttp, image_id: str) -> dict[str, Any]:
    response = http.show(image_id)
    assert response.status_code == 200, response.text
    image: dict[str, Any] = response.json()
    return image


def _wait_status(http: GlanceHttp, image_id: str, wanted: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        image = _image(http, image_id)
        if image["status"] == wanted or time.monotonic() > deadline:
            return image
        time.sleep(0.2)


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(MiB):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def qcow2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real qcow2 made by qemu-img from 12 MiB of pseudo-random data: larger than the API function's limit."""
    if QEMU_IMG is None:
        pytest.skip("qemu-img is not installed (Debian: qemu-utils)")
    folder = tmp_path_factory.mktemp("qcow2")
    raw, image = folder / "disk.raw", folder / "disk.qcow2"
    raw.write_bytes(random.Random(12).randbytes(12 * MiB))
    subprocess.run([QEMU_IMG, "convert", "-f", "raw", "-O", "qcow2", str(raw), str(image)], check=True, timeout=60)
    return image


def test_stack__serves_clients_through_the_front_door_before_both_planes(stack: DevStack) -> None:
    assert stack.data_plane_endpoint is not None
    assert stack.endpoint not in (stack.api_endpoint, stack.data_plane_endpoint)
    assert stack.settings.api_body_limit > 0 and stack.settings.data_delivery == "redirect"


@needs_qemu_img
def test_openstack_image_create_file__real_qcow2_over_the_api_limit__is_active_and_saved_back(
    endpoint: str, http: GlanceHttp, stack: DevStack, qcow2: Path, tag: str, tmp_path: Path
) -> None:
    assert qcow2.stat().st_size > stack.settings.api_body_limit
    created = _openstack(
        endpoint,
        "image", "create", f"qcow2-{tag}", "--file", str(qcow2),
        "--disk-format", "qcow2", "--container-format", "bare", "--tag", tag, "-f", "value", "-c", "id",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    image = _image(http, created.stdout.strip())
    saved = tmp_path / "saved.qcow2"
    save = _openstack(endpoint, "image", "save", "--file", str(saved), image["id"])

    assert (image["status"], image["size"], image["checksum"]) == ("active", qcow2.stat().st_size, _md5(qcow2))
    assert image["virtual_size"] == 12 * MiB  # qemu's view of the disk, from the format inspection on the stream
    assert save.returncode == 0, save.stderr
    assert _md5(saved) == image["checksum"]


@needs_qemu_img
def test_openstack_image_create_import__stages_through_the_data_plane_and_imports_glance_direct(
    endpoint: str, http: GlanceHttp, qcow2: Path, tag: str
) -> None:
    created = _openstack(
        endpoint,
        "image", "create", f"import-{tag}", "--import", "--file", str(qcow2),
        "--disk-format", "qcow2", "--container-format", "bare", "--tag", tag, "-f", "value", "-c", "id",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr

    image = _wait_status(http, created.stdout.strip(), "active")

    assert (image["status"], image["checksum"], image["virtual_size"]) == ("active", _md5(qcow2), 12 * MiB)


class _Source:
    """A file-like 1 GiB of pseudo-random bytes, made as it is read and hashed on the way (nothing kept)."""

    def __init__(self, size: int, block: int = 4 * MiB) -> None:
        self.left = size
        self.blocks = random.Random(1).randbytes(block), random.Random(2).randbytes(block)
        self.count = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha512 = hashlib.sha512()

    def read(self, size: int = -1) -> bytes:
        block = self.blocks[self.count % 2][: min(self.left, len(self.blocks[0]))]
        if size >= 0:
            block = block[:size]
        self.count += 1
        self.left -= len(block)
        self.md5.update(block)
        self.sha512.update(block)
        return block


def _memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc (peak RSS reset)")
def test_glanceclient_chunked_upload__of_1_gib__streams_with_bounded_memory_and_downloads_verified(
    stack: DevStack, glance_a_member: Any, http: GlanceHttp, tag: str
) -> None:
    pid = stack.data_plane_pid
    assert pid is not None
    image = glance_a_member.images.create(name=f"nova-{tag}", disk_format="raw", container_format="bare", tags=[tag])
    source = _Source(GiB)
    # The peak resident size of the data plane is measured from here (Linux: writing 5 resets VmHWM).
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _memory_kib(pid, "VmRSS")

    # What Nova does with a snapshot: a file-like body, which glanceclient sends chunked (no Content-Length).
    glance_a_member.images.upload(image["id"], source)
    peak = _memory_kib(pid, "VmHWM")

    uploaded = _image(http, image["id"])
    assert (uploaded["status"], uploaded["size"]) == ("active", GiB)
    assert uploaded["checksum"] == source.md5.hexdigest()
    assert uploaded["os_hash_value"] == source.sha512.hexdigest()
    # Bounded by the part size, never the image: the part being filled, its copy, the part uploading and the SDK's
    # buffers (~5 parts measured: 312 MiB above idle with 64 MiB parts), less than half of this 1 GiB.
    part, grown = stack.settings.multipart_part_size, (peak - before) * 1024
    assert grown < min(6 * part, GiB // 2), f"the data plane grew {grown // MiB} MiB"

    md5, sha512, size = hashlib.md5(usedforsecurity=False), hashlib.sha512(), 0
    for chunk in glance_a_member.images.data(image["id"]):
        md5.update(chunk)
        sha512.update(chunk)
        size += len(chunk)
    assert (size, md5.hexdigest(), sha512.hexdigest()) == (GiB, uploaded["checksum"], uploaded["os_hash_value"])


def test_put_file__over_the_limit_sent_to_the_api_directly__is_glances_413_json_naming_the_data_plane(
    stack: DevStack, http: GlanceHttp, tag: str
) -> None:
    image_id = http.create(A_MEMBER, disk_format="raw", container_format="bare", tags=[tag])["id"]
    body = bytes(stack.settings.api_body_limit + 1)
    headers = {**A_MEMBER.headers, "Content-Type": "application/octet-stream", "Accept": "application/json"}

    direct = requests.put(f"{stack.api_endpoint}/v2/images/{image_id}/file", data=body, headers=headers, timeout=60)

    assert direct.status_code == 413
    error = direct.json()
    assert error["code"].startswith("413")
    assert "data plane" in error["message"] and "POST /v2/images/{id}/upload" in error["message"]
    assert _image(http, image_id)["status"] == "queued"
    # the same body through the front door is taken by the data plane
    through = requests.put(f"{stack.endpoint}/v2/images/{image_id}/file", data=body, headers=headers, timeout=60)
    assert through.status_code == 204, through.text
    assert _image(http, image_id)["status"] == "active"
