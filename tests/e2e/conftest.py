"""The deployed stack on an emulator: synthesized by the CDK app, created by the emulator's CloudFormation.

- ``emulator`` (package: stopped, and the environment restored, when this folder is done): the AWS endpoint.
  By default a MiniStack started here on a free loopback port (``make ministack`` installs it in
  ``.venv-ministack``; ``SGLANCE_MINISTACK`` names another executable), with ``AUTH=true`` so every call a Lambda
  makes is checked against its execution role and the resource policies: the least-privilege roles of the stacks
  are exercised, not only asserted. It serves HTTPS only (a certificate made here for 127.0.0.1), because the
  bucket and queue policies deny every request without TLS, as on AWS. ``SGLANCE_E2E_ENDPOINT`` (e.g.
  ``https://localhost.localstack.cloud:4566``, a LocalStack started from ``localstack/``) uses that emulator
  instead and starts nothing.
- ``deployed`` (package): the app synthesized with ``tests/e2e``'s operator configuration (stage ``e2e``, the
  ``keystone`` fixture's URL, the emulator endpoint, the host's architecture so the local Lambda processes can load
  the layer's wheels), deployed by ``infra.emulator``, and the Keystone service password written to its secret,
  as an operator does after the first deploy.

Authentication is real: Keystone tokens validated by the deployed API function with the service user's password
read from Secrets Manager. No development auth mode is deployed (settings refuse it inside Lambda).
``SGLANCE_SKIP_E2E=1`` skips the folder.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
import certifi
import pytest
import requests

from infra.emulator import Deployed, deploy_assembly

if TYPE_CHECKING:
    from tests.backends.keystone.accounts import KeystoneEnv

REPO_ROOT = Path(__file__).resolve().parents[2]
MINISTACK = REPO_ROOT / ".venv-ministack" / "bin" / "ministack"
REGION = "us-east-1"
# MiniStack and LocalStack accept these; presigned URLs are checked against them.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
STAGE = "e2e"
IMAGE_BUCKET = "sglance-e2e-images"
FILE_STORE = "local-files"


@dataclass(frozen=True)
class Emulator:
    """An AWS endpoint on loopback, and the log of the emulator started for it (if any)."""

    endpoint: str
    log: Path | None

    def client(self, service: str) -> object:
        """A boto3 client for the emulator (close it after use)."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def log_tail(self, lines: int = 60) -> str:
        """The end of the emulator's log, for assertion messages."""
        if self.log is None or not self.log.exists():
            return "(no emulator log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass(frozen=True)
class DeployedStack:
    """The deployed image API: where to send requests, and the Host header API Gateway routes on."""

    emulator: Emulator
    outputs: Deployed
    api_host: str
    keystone: KeystoneEnv
    file_store: Path
    # The synthesized cloud assembly that was deployed (a test deploys it again).
    assembly: Path

    def api(self, token: str | None = None) -> requests.Session:
        """A session whose requests reach the HTTP API (``session.get(stack.url("/versions"))``)."""
        session = requests.Session()
        session.headers["Host"] = self.api_host
        if token is not None:
            session.headers["X-Auth-Token"] = token
        return session

    def url(self, path: str) -> str:
        """The emulator URL of an API path."""
        return f"{self.emulator.endpoint}{path}"


@pytest.fixture(scope="package")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The emulator endpoint: an external one from SGLANCE_E2E_ENDPOINT, or a MiniStack started here."""
    if os.environ.get("SGLANCE_SKIP_E2E") == "1":
        pytest.skip("SGLANCE_SKIP_E2E=1: end-to-end tests of the deployed stack skipped")
    external = os.environ.get("SGLANCE_E2E_ENDPOINT")
    with pytest.MonkeyPatch.context() as env:
        for name, value in CREDENTIALS.items():
            env.setenv(name, value)
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        if external:
            yield Emulator(endpoint=external.rstrip("/"), log=None)
            return
        folder = tmp_path_factory.mktemp("ministack")
        cert, key, bundle = _certificate(folder)
        # boto3 and requests in this process (deploy, presigned URLs) trust the emulator's certificate too.
        env.setenv("AWS_CA_BUNDLE", str(bundle))
        env.setenv("REQUESTS_CA_BUNDLE", str(bundle))
        yield from _ministack(folder, cert, key)


def _certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A self-signed certificate for the loopback emulator, and a CA bundle of the system roots plus it."""
    cert, key, bundle = folder / "tls.crt", folder / "tls.key", folder / "ca-bundle.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:*.execute-api.localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    bundle.write_text(Path(certifi.where()).read_text() + cert.read_text())
    return cert, key, bundle


def _ministack(folder: Path, cert: Path, key: Path) -> Iterator[Emulator]:
    executable = os.environ.get("SGLANCE_MINISTACK") or str(MINISTACK)
    if not shutil.which(executable):
        pytest.fail(f"MiniStack not found at {executable}: run `make ministack` (or set SGLANCE_MINISTACK)")
    port = _free_port()
    log = folder / "ministack.log"
    environment = {
        **os.environ,
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "AUTH": "true",
        "USE_SSL": "1",
        "MINISTACK_SSL_CERT": str(cert),
        "MINISTACK_SSL_KEY": str(key),
        # The Lambda processes inherit these: their SDK and urllib calls (custom resources) trust the emulator.
        "SSL_CERT_FILE": os.environ["AWS_CA_BUNDLE"],
        "LAMBDA_EXECUTOR": "local",
        # Keep the emulator's state in this test's folder, never in the user's home.
        "HOME": str(folder),
        "TMPDIR": str(folder),
    }
    with log.open("wb") as output:
        process = subprocess.Popen(
            [executable], env=environment, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    endpoint = f"https://127.0.0.1:{port}"
    try:
        _wait_ready(endpoint, process, log, ssl.create_default_context(cafile=str(cert)))
        yield Emulator(endpoint=endpoint, log=log)
    finally:
        # MiniStack runs each Lambda in a child process of its own session; end the whole group we started.
        with _suppress_lookup():
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with _suppress_lookup():
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


class _suppress_lookup:  # noqa: N801 - reads as contextlib.suppress
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, ProcessLookupError)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _wait_ready(
    endpoint: str, process: subprocess.Popen[bytes], log: Path, context: ssl.SSLContext, timeout_s: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"MiniStack exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"MiniStack not ready after {timeout_s:.0f} s:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="package")
def deployed(emulator: Emulator, keystone: KeystoneEnv, tmp_path_factory: pytest.TempPathFactory) -> DeployedStack:
    """The CDK app synthesized for the emulator and deployed there; the Keystone service secret filled in."""
    folder = tmp_path_factory.mktemp("e2e-deploy")
    file_store = folder / "file-store"
    file_store.mkdir()
    config = {
        "stage": STAGE,
        "image_bucket": IMAGE_BUCKET,
        "keystone_url": keystone.url,
        "keystone_service_username": "glance",
        "keystone_service_project_name": "service",
        "emulator_endpoint_url": emulator.endpoint,
        # The emulator runs the handlers on this machine: the layer's compiled wheels must be for it.
        "architecture": "arm64" if platform.machine() in {"aarch64", "arm64"} else "x86_64",
        "log_retention_days": 1,
        # A file store the store_sync function replicates every active image to (MiniStack runs it on this host).
        "stores": {FILE_STORE: {"type": "file", "data_dir": str(file_store)}},
        "replicate_to": [FILE_STORE],
    }
    (folder / "e2e.json").write_text(json.dumps(config))
    assembly = folder / "cdk.out"
    _synth(assembly, folder / "e2e.json")
    started = time.perf_counter()
    try:
        outputs = deploy_assembly(assembly, emulator.endpoint, REGION)
    except Exception as exc:
        pytest.fail(f"deploy failed: {exc}\n--- emulator log ---\n{emulator.log_tail()}")
    print(f"e2e: deployed {len(outputs.outputs)} stacks in {time.perf_counter() - started:.1f} s")
    secrets = emulator.client("secretsmanager")
    try:
        # What an operator does once after the first deploy (docs/operators.md).
        secret_id = f"sglance/{STAGE}/keystone-service"
        secrets.put_secret_value(  # type: ignore[attr-defined]
            SecretId=secret_id, SecretString=json.dumps({"password": keystone.accounts["glance"].password})
        )
    finally:
        secrets.close()  # type: ignore[attr-defined]
    api_host = urlsplit(outputs.output("Endpoint")).netloc
    return DeployedStack(
        emulator=emulator,
        outputs=outputs,
        api_host=api_host,
        keystone=keystone,
        file_store=file_store,
        assembly=assembly,
    )


def _synth(assembly: Path, config_file: Path) -> None:
    environment = {
        **os.environ,
        "CDK_OUTDIR": str(assembly),
        "CDK_CONTEXT_JSON": json.dumps({"config": str(config_file)}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": os.environ.get(
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20"
        ),
    }
    done = subprocess.run(
        [sys.executable, "infra/cdk_app.py"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cdk synth failed:\n{done.stderr[-5000:]}")
