"""The data plane's container image (infra/image.py), built without Docker and checked as the runtime would see it.

- the OCI layout: reproducible digests, our two layers holding the dependencies and the code, the config;
- the layers run: unpacked into a folder, the app and its dependencies import from there alone;
- the push: to a real OCI registry on loopback (Debian's ``docker-registry``, the distribution project's server)
  on top of a base image that skopeo (an independent client) put there; skopeo then reads the result back, checking
  every digest. ``make backends`` installs both (tests/backends/registry/install.sh); ``SGLANCE_SKIP_REGISTRY=1``
  skips the push tests.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.image import (
    CODE_DIR,
    COMMAND,
    DEPS_DIR,
    USER,
    BuiltImage,
    build_image,
    layer_members,
    push_image,
    read_layout,
)
from infra.packaging import Architecture, LambdaPackage, build_package

# The host's architecture: the unpacked layers' compiled wheels must load here.
HOST_ARCH: Architecture = "arm64" if platform.machine() in {"aarch64", "arm64"} else "x86_64"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> LambdaPackage:
    """The Lambda package for the host's architecture (the dependency layer is cached in .build/lambda)."""
    return build_package(HOST_ARCH)


@pytest.fixture(scope="module")
def image(package: LambdaPackage, tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    return build_image(HOST_ARCH, package=package, out_dir=tmp_path_factory.mktemp("image"))


def test_image__is_reproducible_from_the_same_files(image: BuiltImage, package: LambdaPackage, tmp_path: Path) -> None:
    again = build_image(HOST_ARCH, package=package, out_dir=tmp_path)

    assert again.tag == image.tag
    assert again.manifest.digest == image.manifest.digest
    assert [layer.digest for layer in again.layers] == [layer.digest for layer in image.layers]


def test_image__layers_hold_the_dependencies_and_the_code_owned_by_root_at_time_zero(image: BuiltImage) -> None:
    deps = {member.name: member for member in layer_members(image, 0)}
    code = {member.name: member for member in layer_members(image, 1)}

    prefix_deps, prefix_code = DEPS_DIR.lstrip("/"), CODE_DIR.lstrip("/")
    assert f"{prefix_deps}/fastapi/__init__.py" in deps
    assert f"{prefix_deps}/pynamodb/__init__.py" in deps
    assert f"{prefix_code}/functions/api/handler.py" in code
    assert f"{prefix_code}/shared/config.py" in code
    assert not any("__pycache__" in name for name in (*deps, *code))
    assert not any(name.startswith(prefix_code) for name in deps)
    for member in (*deps.values(), *code.values()):
        assert (member.uid, member.gid, member.mtime) == (0, 0, 0), member.name
        assert member.mode & 0o004, f"{member.name} is not world-readable"


def test_image__config_runs_the_data_plane_unprivileged_with_both_folders_on_the_path(image: BuiltImage) -> None:
    config = json.loads((image.layout / "blobs" / "sha256" / image.config.digest.removeprefix("sha256:")).read_text())

    assert config["os"] == "linux"
    assert config["architecture"] == {"x86_64": "amd64", "arm64": "arm64"}[HOST_ARCH]
    assert config["config"]["Cmd"] == list(COMMAND)
    assert config["config"]["User"] == USER
    assert config["config"]["WorkingDir"] == CODE_DIR
    assert f"PYTHONPATH={CODE_DIR}:{DEPS_DIR}" in config["config"]["Env"]
    # diff_ids are the uncompressed layers' digests, as a runtime checks them.
    for layer, diff_id in zip(image.layers, image.diff_ids, strict=True):
        blob = (image.layout / "blobs" / "sha256" / layer.digest.removeprefix("sha256:")).read_bytes()
        assert f"sha256:{hashlib.sha256(gzip.decompress(blob)).hexdigest()}" == diff_id
    assert read_layout(image.layout) == image


def test_image__unpacked_layers__import_the_app_and_its_dependencies_from_the_image_alone(
    image: BuiltImage, tmp_path: Path
) -> None:
    root = tmp_path / "rootfs"
    for index in range(len(image.layers)):
        blob = (image.layout / "blobs" / "sha256" / image.layers[index].digest.removeprefix("sha256:")).read_bytes()
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as archive:
            archive.extractall(root, filter="tar")
    paths = [str(root / part.lstrip("/")) for part in f"{CODE_DIR}:{DEPS_DIR}".split(":")]
    probe = (
        "import sys; sys.path[:0] = sys.argv[1:]; "
        "import fastapi, pynamodb, boto3, uvicorn, functions.api.app, functions.data_plane.app, shared.config; "
        "print(fastapi.__file__); print(functions.api.app.__file__)"
    )

    # -I -S: no user site, no site-packages, no PYTHONPATH: only the stdlib and the unpacked layers.
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, *paths], capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr[-3000:]
    fastapi_file, app_file = done.stdout.split()
    assert fastapi_file.startswith(str(root / DEPS_DIR.lstrip("/")))
    assert app_file.startswith(str(root / CODE_DIR.lstrip("/")))


# -- push to a real registry ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A distribution registry on loopback (plain HTTP); yields ``127.0.0.1:<port>``."""
    if os.environ.get("SGLANCE_SKIP_REGISTRY") == "1":
        pytest.skip("SGLANCE_SKIP_REGISTRY=1")
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not installed: run `make backends` (tests/backends/registry/install.sh)")
    folder = tmp_path_factory.mktemp("registry")
    address = f"127.0.0.1:{_free_port()}"
    config = folder / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"http:\n  addr: {address}\n"
        "log:\n  level: warn\n"
    )
    log = (folder / "registry.log").open("wb")
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"registry did not start: {(folder / 'registry.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield address
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        log.close()


def _base_layout(folder: Path, goarch: str) -> Path:
    """A tiny base image as an OCI layout: one layer with a marker file, a PATH in its environment."""
    layer_buffer = io.BytesIO()
    with tarfile.open(fileobj=layer_buffer, mode="w") as archive:
        data = b"base image marker\n"
        info = tarfile.TarInfo("etc/sglance-test-base")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    layer_tar = layer_buffer.getvalue()
    layer = gzip.compress(layer_tar, mtime=0)
    config = json.dumps(
        {
            "architecture": goarch,
            "os": "linux",
            "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"]},
        }
    ).encode()
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(layer),
                        "size": len(layer)}],
        }
    ).encode()  # fmt: skip
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": put(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "1"},
            }
        ],
    }
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return folder


def _skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_push__puts_the_base_layers_then_ours_under_the_tag_and_skopeo_reads_it_back(
    registry: str, package: LambdaPackage, tmp_path: Path
) -> None:
    goarch = {"x86_64": "amd64", "arm64": "arm64"}[HOST_ARCH]
    base = _base_layout(tmp_path / "base", goarch)
    _skopeo("copy", "--dest-tls-verify=false", f"oci:{base}:1", f"docker://{registry}/library/base:1")
    built = build_image(HOST_ARCH, package=package, out_dir=tmp_path / "image", base=f"{registry}/library/base:1")

    pushed = push_image(built, f"{registry}/sglance-data-plane", insecure_registries=frozenset({registry}))
    # A second push (a redeploy) finds every blob there and rewrites the same manifest.
    again = push_image(built, f"{registry}/sglance-data-plane", insecure_registries=frozenset({registry}))

    assert pushed == again == f"{registry}/sglance-data-plane:{built.tag}"
    inspected = json.loads(_skopeo("inspect", "--tls-verify=false", f"docker://{pushed}"))
    base_inspected = json.loads(_skopeo("inspect", "--tls-verify=false", f"docker://{registry}/library/base:1"))
    assert inspected["Layers"] == base_inspected["Layers"] + [layer.digest for layer in built.layers]
    assert inspected["Architecture"] == goarch
    assert "PATH=/usr/local/bin:/usr/bin:/bin" in inspected["Env"]
    assert f"PYTHONPATH={CODE_DIR}:{DEPS_DIR}" in inspected["Env"]
    config = json.loads(_skopeo("inspect", "--config", "--tls-verify=false", f"docker://{pushed}"))
    assert config["config"]["Cmd"] == list(COMMAND)
    assert config["config"]["User"] == USER
    assert len(config["rootfs"]["diff_ids"]) == 3
    # skopeo copies every blob back and checks each digest (and the config's diff_ids against the layers).
    _skopeo("copy", "--src-tls-verify=false", f"docker://{pushed}", f"oci:{tmp_path / 'pulled'}:x")
    names = [name for blob in (tmp_path / "pulled" / "blobs" / "sha256").iterdir() for name in _layer_names(blob)]
    assert names.count("etc/sglance-test-base") == 1


def _layer_names(path: Path) -> list[str]:
    data = path.read_bytes()
    if data[:2] != b"\x1f\x8b":
        return []
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as archive:
        return archive.getnames()
