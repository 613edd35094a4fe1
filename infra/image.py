"""The data plane's container image, built without Docker: an OCI image layout, then pushed registry to registry.

``build_image`` writes an OCI image layout (https://github.com/opencontainers/image-spec, ``oci-layout``,
``index.json``, ``blobs/sha256/...``) holding two layers of our own, made reproducibly (sorted entries, owner 0,
mtime 0, gzip without a timestamp), so the same files always give the same digests and tag:

- the dependencies: the Lambda layer's ``python/`` folder (``infra/packaging.py``: the cp313 manylinux wheels of
  ``[project.dependencies]`` for the architecture) under ``/opt/sglance/site-packages``;
- the code: the Lambda function package (``functions/``, ``shared/``, the operator's ``config/``) under
  ``/opt/sglance/app``.

Its config runs ``python -m functions.data_plane`` as an unprivileged user in ``/opt/sglance/app`` with both folders on
``PYTHONPATH``. The interpreter comes from the base image (``BASE_IMAGE``: Debian 12's glibc 2.36 runs the manylinux
2.34 wheels), which is not copied here: this machine reaches no container registry. ``push_image`` completes the
image where it goes: it reads the base image's manifest for the platform from its registry, copies the base layers
into the target repository (registry to registry, nothing is unpacked), uploads our layers, writes the config (the
base's environment, then ours) and the manifest under the tag. It speaks the OCI distribution API with ``requests``:
anonymous bearer tokens for public registries (public.ecr.aws, Docker Hub) and ECR's basic auth for the target
(``ecr:GetAuthorizationToken`` and the layer-upload actions).

    python -m infra.image build --arch arm64 --out .build/image
    python -m infra.image push --layout .build/image/<name> --repository <account>.dkr.ecr.<region>.amazonaws.com/<repo>
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.packaging import DEFAULT_BUILD_DIR, Architecture, LambdaPackage, build_package

# Debian 12 (glibc 2.36) with CPython 3.13 in /usr/local: the interpreter our wheels are built for.
BASE_IMAGE = "public.ecr.aws/docker/library/python:3.13-slim-bookworm"
APP_ROOT = "/opt/sglance"
CODE_DIR = f"{APP_ROOT}/app"
DEPS_DIR = f"{APP_ROOT}/site-packages"
# The server's entry point; a job task overrides it with ``python -m functions.task_runner <job>``.
COMMAND = ("python", "-m", "functions.data_plane")
# nobody:nogroup on Debian: the process owns nothing in the image and cannot write to it.
USER = "65534:65534"
DEFAULT_PORT = 8080
IMAGE_DIR = DEFAULT_BUILD_DIR.parent / "image"

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_ACCEPT = ", ".join((INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, _DOCKER_LIST, _DOCKER_MANIFEST))
BASE_ANNOTATION = "org.opencontainers.image.base.name"
_GOARCH = {"arm64": "arm64", "x86_64": "amd64"}


class ImageError(RuntimeError):
    """The image could not be built, read or pushed (the message says which step and why)."""


@dataclass(frozen=True)
class Blob:
    """A content-addressed blob of the layout."""

    digest: str
    size: int
    media_type: str

    def descriptor(self) -> dict[str, Any]:
        """The OCI descriptor of this blob."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class BuiltImage:
    """An OCI image layout of our layers: where it is, its tag, and what its manifest names."""

    layout: Path
    tag: str
    architecture: Architecture
    base: str
    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    # sha256 of each layer's uncompressed tar (the config's rootfs.diff_ids), in layer order.
    diff_ids: tuple[str, ...]


def build_image(
    architecture: Architecture,
    *,
    package: LambdaPackage | None = None,
    out_dir: Path = IMAGE_DIR,
    base: str = BASE_IMAGE,
    policy_files: dict[str, Path] | None = None,
) -> BuiltImage:
    """Write the OCI image layout of the data plane for ``architecture`` (reused when its content is unchanged).

    Args:
        architecture: the tasks' CPU architecture; the dependency wheels are for it.
        package: the Lambda package to take the dependencies and code from (built for ``architecture`` if None).
        out_dir: where layouts are written, one folder per tag.
        base: the base image reference ``push_image`` completes the image with.
        policy_files: as ``build_package``'s (only used when ``package`` is None).

    Raises:
        ImageError: the package folders are missing.
    """
    package = package or build_package(architecture, policy_files=policy_files)
    deps = package.layer_dir / "python"
    if not deps.is_dir() or not package.code_dir.is_dir():
        raise ImageError(f"the Lambda package is incomplete: {package}")
    layer_tars = [_tar(deps, DEPS_DIR), _tar(package.code_dir, CODE_DIR)]
    diff_ids = tuple(_sha256(data) for data in layer_tars)
    config = image_config(architecture, diff_ids)
    config_bytes = _canonical(config)
    tag = hashlib.sha256(config_bytes + base.encode()).hexdigest()[:20]
    layout = out_dir / f"data-plane-{architecture}-{tag}"
    if (layout / "index.json").is_file():
        return read_layout(layout)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".image-", dir=out_dir))
    try:
        layers = tuple(_write_blob(staging, _gzip(data), LAYER_MEDIA_TYPE) for data in layer_tars)
        config_blob = _write_blob(staging, config_bytes, CONFIG_MEDIA_TYPE)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config_blob.descriptor(),
            "layers": [layer.descriptor() for layer in layers],
            "annotations": {BASE_ANNOTATION: base},
        }
        manifest_blob = _write_blob(staging, _canonical(manifest), MANIFEST_MEDIA_TYPE)
        index = {
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [
                {
                    **manifest_blob.descriptor(),
                    "platform": {"os": "linux", "architecture": _GOARCH[architecture]},
                    "annotations": {"org.opencontainers.image.ref.name": tag},
                }
            ],
        }
        (staging / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
        (staging / "index.json").write_bytes(_canonical(index))
        try:
            staging.rename(layout)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # the same content was written by another synthesis
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return read_layout(layout)


def image_config(architecture: Architecture, diff_ids: tuple[str, ...]) -> dict[str, Any]:
    """Our part of the image config: platform, user, environment, working directory, command, our layers."""
    return {
        "architecture": _GOARCH[architecture],
        "os": "linux",
        "config": {
            "User": USER,
            "Env": [
                f"PYTHONPATH={CODE_DIR}:{DEPS_DIR}",
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONUNBUFFERED=1",
                f"SGLANCE_DATA_PLANE_PORT={DEFAULT_PORT}",
            ],
            "WorkingDir": CODE_DIR,
            "Cmd": list(COMMAND),
            "ExposedPorts": {f"{DEFAULT_PORT}/tcp": {}},
            "Labels": {"org.opencontainers.image.title": "serverless-glance data plane"},
        },
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created_by": "infra/image.py: dependencies"}, {"created_by": "infra/image.py: code"}],
    }


def read_layout(layout: Path) -> BuiltImage:
    """The image of a layout ``build_image`` wrote, with every blob's digest checked.

    Raises:
        ImageError: the layout is not one image, or a blob does not match its digest.
    """
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    manifest = json.loads(_read_blob(layout, entry["digest"]))
    config = json.loads(_read_blob(layout, manifest["config"]["digest"]))
    layers = tuple(Blob(d["digest"], d["size"], d["mediaType"]) for d in manifest["layers"])
    for layer in layers:
        _read_blob(layout, layer.digest)
    architecture: Architecture = "arm64" if config["architecture"] == "arm64" else "x86_64"
    return BuiltImage(
        layout=layout,
        tag=entry["annotations"]["org.opencontainers.image.ref.name"],
        architecture=architecture,
        base=manifest["annotations"][BASE_ANNOTATION],
        manifest=Blob(entry["digest"], entry["size"], entry["mediaType"]),
        config=Blob(manifest["config"]["digest"], manifest["config"]["size"], CONFIG_MEDIA_TYPE),
        layers=layers,
        diff_ids=tuple(config["rootfs"]["diff_ids"]),
    )


def layer_members(image: BuiltImage, index: int) -> Iterator[tarfile.TarInfo]:
    """The entries of one of our layers (0: dependencies, 1: code)."""
    data = gzip.decompress(_read_blob(image.layout, image.layers[index].digest))
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        yield from archive.getmembers()


# -- push ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """``registry/repository[:tag|@digest]`` split up."""

    registry: str
    repository: str
    reference: str

    @classmethod
    def parse(cls, text: str, default_reference: str = "latest") -> Reference:
        """Parse an image reference (Docker Hub's short names included)."""
        name, digest = (text.split("@", 1) + [""])[:2]
        head, _, rest = name.partition("/")
        if not rest or ("." not in head and ":" not in head and head != "localhost"):
            head, rest = "registry-1.docker.io", name if "/" in name else f"library/{name}"
        repository, _, tag = rest.partition(":")
        return cls(head, repository, digest or tag or default_reference)

    def __str__(self) -> str:
        separator = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{separator}{self.reference}"


class Registry:
    """A minimal OCI distribution client: manifests and blobs of one repository (pull and push)."""

    def __init__(self, registry: str, repository: str, *, basic_auth: str | None = None, insecure: bool = False):
        import requests

        self.base = f"{'http' if insecure else 'https'}://{registry}/v2/{repository}"
        self.repository = repository
        self.session = requests.Session()
        self.basic_auth = basic_auth
        if basic_auth:
            self.session.headers["Authorization"] = f"Basic {basic_auth}"

    def close(self) -> None:
        """Close the connection pool."""
        self.session.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.session.request(method, url, timeout=300, **kwargs)
        if response.status_code == 401 and not self.basic_auth:
            self._bearer(response.headers.get("WWW-Authenticate", ""))
            response = self.session.request(method, url, timeout=300, **kwargs)
        return response

    def _bearer(self, challenge: str) -> None:
        """Anonymous token for a public registry (the challenge names the realm, service and scope)."""
        fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if not challenge.lower().startswith("bearer") or "realm" not in fields:
            raise ImageError(f"{self.base}: unauthorised and no bearer challenge ({challenge!r})")
        params = {k: v for k, v in fields.items() if k in {"service", "scope"}}
        params.setdefault("scope", f"repository:{self.repository}:pull")
        answer = self.session.get(fields["realm"], params=params, timeout=60)
        if answer.status_code != 200:
            raise ImageError(f"token from {fields['realm']}: HTTP {answer.status_code}")
        body = answer.json()
        self.session.headers["Authorization"] = f"Bearer {body.get('token') or body['access_token']}"

    def manifest(self, reference: str) -> tuple[dict[str, Any], str, bytes]:
        """The manifest (or index) under ``reference``: parsed, its media type, its bytes."""
        response = self._request("GET", f"{self.base}/manifests/{reference}", headers={"Accept": _ACCEPT})
        if response.status_code != 200:
            raise ImageError(f"{self.base}/manifests/{reference}: HTTP {response.status_code} {response.text[:300]}")
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        return json.loads(response.content), media_type, response.content

    def blob(self, digest: str) -> bytes:
        """A blob's bytes, checked against its digest."""
        response = self._request("GET", f"{self.base}/blobs/{digest}")
        if response.status_code != 200:
            raise ImageError(f"{self.base}/blobs/{digest}: HTTP {response.status_code}")
        if _sha256(response.content) != digest:
            raise ImageError(f"{self.base}/blobs/{digest}: content does not match its digest")
        data: bytes = response.content
        return data

    def has_manifest(self, reference: str) -> bool:
        """Whether the repository holds a manifest under ``reference``."""
        response = self._request("HEAD", f"{self.base}/manifests/{reference}", headers={"Accept": _ACCEPT})
        return bool(response.status_code == 200)

    def has_blob(self, digest: str) -> bool:
        """Whether the repository holds the blob."""
        return bool(self._request("HEAD", f"{self.base}/blobs/{digest}").status_code == 200)

    def put_blob(self, digest: str, data: bytes) -> None:
        """Upload a blob (monolithic: POST for a session, then one PUT), unless it is there already."""
        if self.has_blob(digest):
            return
        started = self._request("POST", f"{self.base}/blobs/uploads/")
        if started.status_code not in (201, 202):
            raise ImageError(f"{self.base}: blob upload refused, HTTP {started.status_code} {started.text[:300]}")
        location = started.headers["Location"]
        if location.startswith("/"):
            location = self.base.split("/v2/", 1)[0] + location
        separator = "&" if "?" in location else "?"
        done = self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if done.status_code != 201:
            raise ImageError(f"{self.base}: blob {digest} not stored, HTTP {done.status_code} {done.text[:300]}")

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> None:
        """Store a manifest under a tag."""
        done = self._request(
            "PUT", f"{self.base}/manifests/{reference}", data=data, headers={"Content-Type": media_type}
        )
        if done.status_code not in (200, 201):
            raise ImageError(f"{self.base}: manifest {reference} refused, HTTP {done.status_code} {done.text[:300]}")


def ecr_basic_auth(registry: str, ecr_client: Any) -> str:
    """ECR's basic credentials for ``registry`` (``ecr:GetAuthorizationToken``)."""
    data = ecr_client.get_authorization_token()["authorizationData"]
    match = [d for d in data if registry in d.get("proxyEndpoint", "")] or data
    token: str = match[0]["authorizationToken"]
    return token


def push_image(
    image: BuiltImage,
    repository: str,
    *,
    target_auth: str | None = None,
    insecure_registries: frozenset[str] = frozenset(),
) -> str:
    """Push ``image`` on top of its base to ``repository`` (``registry/name``) under its tag; returns the reference.

    Args:
        image: a layout ``build_image`` wrote.
        repository: where the image goes, e.g. ``111122223333.dkr.ecr.eu-west-1.amazonaws.com/sglance-prod``.
        target_auth: base64 ``user:password`` for the target (ECR's authorization token); None: anonymous.
        insecure_registries: registries reached over plain HTTP (a loopback test registry).

    Raises:
        ImageError: a registry refused a request, or the base has no manifest for the image's platform.
    """
    base_ref = Reference.parse(image.base)
    target = Reference.parse(repository, default_reference=image.tag)
    source = Registry(base_ref.registry, base_ref.repository, insecure=base_ref.registry in insecure_registries)
    sink = Registry(
        target.registry, target.repository, basic_auth=target_auth, insecure=target.registry in insecure_registries
    )
    try:
        if sink.has_manifest(target.reference):
            # Tags are content hashes (and immutable in ECR): this image is there already.
            return str(Reference(target.registry, target.repository, target.reference))
        base_manifest = _platform_manifest(source, base_ref.reference, _GOARCH[image.architecture])
        base_config = json.loads(source.blob(base_manifest["config"]["digest"]))
        for layer in base_manifest["layers"]:
            if not sink.has_blob(layer["digest"]):
                sink.put_blob(layer["digest"], source.blob(layer["digest"]))
        for layer in image.layers:
            sink.put_blob(layer.digest, _read_blob(image.layout, layer.digest))
        ours = json.loads(_read_blob(image.layout, image.config.digest))
        config = merged_config(base_config, ours)
        config_bytes = _canonical(config)
        config_digest = _sha256(config_bytes)
        sink.put_blob(config_digest, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": len(config_bytes)},
            "layers": [
                {"mediaType": _oci_layer_type(layer["mediaType"]), "digest": layer["digest"], "size": layer["size"]}
                for layer in base_manifest["layers"]
            ]
            + [layer.descriptor() for layer in image.layers],
            "annotations": {BASE_ANNOTATION: image.base},
        }
        sink.put_manifest(target.reference, _canonical(manifest), MANIFEST_MEDIA_TYPE)
    finally:
        source.close()
        sink.close()
    return str(Reference(target.registry, target.repository, target.reference))


def merged_config(base: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """The final image config: the base's filesystem and environment, then our layers, variables and command."""
    base_env = [item for item in base.get("config", {}).get("Env", []) or [] if not item.startswith("PYTHONPATH=")]
    ours_names = {item.split("=", 1)[0] for item in ours["config"]["Env"]}
    env = [item for item in base_env if item.split("=", 1)[0] not in ours_names] + ours["config"]["Env"]
    return {
        **ours,
        "config": {**ours["config"], "Env": env, "Entrypoint": None},
        "rootfs": {"type": "layers", "diff_ids": base["rootfs"]["diff_ids"] + ours["rootfs"]["diff_ids"]},
        "history": (base.get("history") or []) + ours["history"],
    }


def _platform_manifest(registry: Registry, reference: str, goarch: str) -> dict[str, Any]:
    manifest, media_type, _ = registry.manifest(reference)
    if media_type in (INDEX_MEDIA_TYPE, _DOCKER_LIST) or "manifests" in manifest:
        matching = [
            m
            for m in manifest["manifests"]
            if m.get("platform", {}).get("os") == "linux" and m.get("platform", {}).get("architecture") == goarch
        ]
        if not matching:
            raise ImageError(f"base image {reference} has no linux/{goarch} manifest")
        manifest, _, _ = registry.manifest(matching[0]["digest"])
    return manifest


def _oci_layer_type(media_type: str) -> str:
    return LAYER_MEDIA_TYPE if media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip" else media_type


# -- layout helpers -----------------------------------------------------------------------------------------------


def _tar(folder: Path, prefix: str) -> bytes:
    """A reproducible tar of ``folder`` under ``prefix``: sorted, root-owned, mtime 0, world-readable."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        parts = prefix.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            archive.addfile(_entry("/".join(parts[:depth]), tarfile.DIRTYPE, 0o755))
        for path in sorted(folder.rglob("*")):
            if "__pycache__" in path.parts:
                continue
            name = f"{prefix.strip('/')}/{path.relative_to(folder).as_posix()}"
            if path.is_symlink():
                info = _entry(name, tarfile.SYMTYPE, 0o777)
                info.linkname = os.readlink(path)
                archive.addfile(info)
            elif path.is_dir():
                archive.addfile(_entry(name, tarfile.DIRTYPE, 0o755))
            else:
                info = _entry(name, tarfile.REGTYPE, 0o755 if os.access(path, os.X_OK) else 0o644)
                info.size = path.stat().st_size
                with path.open("rb") as handle:
                    archive.addfile(info, handle)
    return buffer.getvalue()


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _write_blob(layout: Path, data: bytes, media_type: str) -> Blob:
    digest = _sha256(data)
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Blob(digest, len(data), media_type)


def _read_blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    if _sha256(data) != digest:
        raise ImageError(f"{layout}: blob {digest} does not match its digest")
    return data


def main() -> None:
    """Command line: build the layout, or push one."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write the OCI image layout")
    build.add_argument("--arch", choices=("arm64", "x86_64"), default="arm64")
    build.add_argument("--out", type=Path, default=IMAGE_DIR)
    build.add_argument("--base", default=BASE_IMAGE)
    push = commands.add_parser("push", help="push a layout on top of its base image")
    push.add_argument("--layout", type=Path, required=True)
    push.add_argument("--repository", required=True, help="registry/name, e.g. the ECR repository's URI")
    push.add_argument("--ecr", action="store_true", help="authenticate to the target with ecr:GetAuthorizationToken")
    push.add_argument("--insecure", action="append", default=[], help="a registry reached over plain HTTP")
    args = parser.parse_args()
    if args.command == "build":
        image = build_image(args.arch, out_dir=args.out, base=args.base)
        print(json.dumps({"layout": str(image.layout), "tag": image.tag, "base": image.base}))
        return
    image = read_layout(args.layout)
    auth = None
    if args.ecr:
        import boto3

        client = boto3.client("ecr")
        auth = ecr_basic_auth(Reference.parse(args.repository).registry, client)
    print(push_image(image, args.repository, target_auth=auth, insecure_registries=frozenset(args.insecure)))


if __name__ == "__main__":
    main()
