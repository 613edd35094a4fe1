"""Data plane: Glance's PUT /file through our data plane and our presigned upload, on a real S3 (Ceph RGW), side by
side with real Glance's PUT /file, at 1 and 4 GiB.

What runs, in one process tree, one case at a time:

- a one-node Ceph cluster with the RADOS Gateway (``tests/backends/ceph/start.sh``, memstore sized for the largest
  image) holds the image bucket; a moto server in its own process holds the rest (DynamoDB, SQS, EventBridge);
- **data plane**: ``python -m functions.data_plane`` in its own process (the container's command, settings from
  ``SGLANCE_*``: ``s3_endpoint_url`` points the bucket at RGW). The client streams the body from memory in 1 MiB
  chunks with a Content-Length (as for Glance, whose uWSGI takes no chunked body); ``PUT /file`` answers 204 once
  the image is ``active``, so first byte → response is first byte → active;
- **presigned**: the session opened with the presigned-uploads service, 4 part PUTs in flight straight to RGW, then
  ``complete`` and the finaliser's ``handle_object`` in a child process (what ``upload_complete`` does on the S3
  event; RGW sends none to SQS), which reads the object back once;
- **Glance**: the reference Glance 33 on :9392 (uWSGI, file store; Keystone :5500, ``/tmp/ref-state/clouds.yaml``),
  ``PUT /file`` with a token, the same generator, as ``baseline.sh``'s requests client does (which sends a file).

Reported per case and size: MiB/s first byte → active, server CPU seconds per GiB (the data plane's process; the
finaliser child for presigned; every uWSGI process of Glance), and the server's peak RSS (sampled every 50 ms from
/proc; VmHWM of the finaliser child). CPU and RSS of the client are not counted. Without the RGW binaries, the
reference Glance or the memory for a size, that case or size is skipped and the table says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._common import (
    REPO_ROOT,
    PartResult,
    ServerProcess,
    SummaryRow,
    Table,
    child_env,
    fmt_ratio,
    proc_cpu_seconds,
    ratio,
)

if TYPE_CHECKING:
    from shared.bootstrap import Container
    from shared.config import Settings

MiB = 1024 * 1024
GiB = 1024 * MiB
SIZES_MIB = (1024, 4096)
SEND_CHUNK = MiB
PARALLEL = 4
PROJECT = "bench" + "0" * 27
CEPH = REPO_ROOT / "tests" / "backends" / "ceph"
GLANCE_URL = "http://127.0.0.1:9392"
REF_CLOUDS = Path("/tmp/ref-state/clouds.yaml")
REF_PIDS = Path("/tmp/ref-state/pids")
SAMPLE_S = 0.05
IDENTITY = {"X-Project-Id": PROJECT, "X-User-Id": "bench-user", "X-Roles": "admin,member,reader"}


@dataclass
class Case:
    """One upload: first byte → active, the server's CPU and its peak RSS."""

    flow: str
    mib: int
    seconds: float = 0.0
    cpu_s: float = 0.0
    peak_rss_kib: int = 0
    skipped: str = ""

    @property
    def mib_per_s(self) -> float:
        return self.mib / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu_s / (self.mib / 1024) if self.mib else 0.0


# -- sources and samplers ---------------------------------------------------------------------------


class _Body:
    """``size`` pseudo-random bytes in ``SEND_CHUNK`` pieces from a 64 MiB pool (cheap to make, not compressible),
    with a length: requests sends it streamed with a Content-Length (Glance under uWSGI takes no chunked body)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pool = os.urandom(64 * MiB)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        while sent < self.size:
            offset = sent % len(self.pool)
            piece = self.pool[offset : offset + min(SEND_CHUNK, self.size - sent)]
            sent += len(piece)
            yield piece


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class _RssSampler:
    """The largest summed VmRSS of some processes, sampled every ``SAMPLE_S`` while in the ``with`` block."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, sum(_status_kib(pid, "VmRSS") for pid in self.pids))
            self._stop.wait(SAMPLE_S)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _cpu(pids: Sequence[int]) -> float:
    return sum(proc_cpu_seconds(pid) for pid in pids)


# -- the real S3: one Ceph RGW --------------------------------------------------------------------------


def _start_rgw(run_dir: Path, memstore_bytes: int) -> dict[str, str]:
    env = {**os.environ, "CEPH_MEMSTORE_BYTES": str(memstore_bytes)}
    subprocess.run(
        ["bash", str(CEPH / "start.sh"), str(run_dir)], check=True, env=env, capture_output=True, timeout=300
    )
    lines = (run_dir / "env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _rgw_gc(run_dir: Path) -> None:
    command = ["radosgw-admin", "-c", str(run_dir / "ceph.conf"), "gc", "process", "--include-all"]
    subprocess.run(command, check=False, capture_output=True, timeout=300)


def _stop_rgw(run_dir: Path) -> None:
    subprocess.run(["bash", str(CEPH / "stop.sh"), str(run_dir)], check=False, capture_output=True, timeout=120)


def _rgw_env(rgw: dict[str, str], moto_url: str) -> dict[str, str]:
    # moto takes any credentials, RGW only its user's: one pair serves both.
    return {
        "AWS_ACCESS_KEY_ID": rgw["CEPH_S3_ACCESS_KEY"],
        "AWS_SECRET_ACCESS_KEY": rgw["CEPH_S3_SECRET_KEY"],
        "SGLANCE_AWS_ENDPOINT_URL": moto_url,
        "SGLANCE_S3_ENDPOINT_URL": rgw["CEPH_S3_ENDPOINT"],
        "SGLANCE_NOTIFICATION_DRIVER": "noop",
    }


def _settings_and_container(env: dict[str, str]) -> tuple[Settings, Container]:
    from devstack.provision import provision
    from shared.bootstrap import Container
    from shared.config import Settings
    from shared.resources import resources_for

    for name in [k for k in os.environ if k.startswith(("SGLANCE_", "AWS_"))]:
        del os.environ[name]
    os.environ.update(env)
    settings = Settings(auth_mode="trusted-headers")
    # DynamoDB and the queues on moto; the bucket on RGW (provision's bucket on moto goes unused).
    provision(resources_for(settings), env["SGLANCE_AWS_ENDPOINT_URL"], settings.aws_region)
    container = Container(settings)
    container.aws.client("s3").create_bucket(Bucket=settings.image_bucket)
    return settings, container


def _new_image(container: Container) -> str:
    from shared.domain.image import Image

    image = container.image_uow.add(
        Image.new(owner=PROJECT, name="bench-data-plane", disk_format="raw", container_format="bare")
    )
    return image.id


# -- the cases ----------------------------------------------------------------------------------------------


def _data_plane(container: Container, env: dict[str, str], mib: int) -> Case:
    import requests

    from benchmarks._common import HOST

    case = Case("data plane PUT /file", mib)
    port = _free_port()
    child = child_env({**env, "SGLANCE_DATA_PLANE_HOST": HOST, "SGLANCE_DATA_PLANE_PORT": str(port)})
    log = (REPO_ROOT / ".bench" / "data-plane.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "functions.data_plane"], cwd=REPO_ROOT, env=child, stdout=log, stderr=log
    )
    log.close()
    url = f"http://{HOST}:{port}"
    try:
        _wait_http(f"{url}/healthcheck", process)
        image_id = _new_image(container)
        # a small warm-up image: the clients, the digest threads and the inspection modules are loaded
        warm = _new_image(container)
        headers = {**IDENTITY, "Content-Type": "application/octet-stream"}
        requests.put(f"{url}/v2/images/{warm}/file", data=b"\0" * MiB, headers=headers, timeout=60)
        cpu_before = proc_cpu_seconds(process.pid)
        with _RssSampler([process.pid]) as rss:
            started = time.perf_counter()
            response = requests.put(f"{url}/v2/images/{image_id}/file", data=_Body(mib * MiB), headers=headers)
            case.seconds = time.perf_counter() - started
        case.cpu_s = proc_cpu_seconds(process.pid) - cpu_before
        case.peak_rss_kib = rss.peak_kib
        if response.status_code != 204:
            case.skipped = f"PUT /file answered {response.status_code}: {response.text[:200]}"
        elif (status := container.images.get(image_id).status.value) != "active":
            case.skipped = f"image {status} after PUT /file"
        _delete_data(container, image_id)
    finally:
        process.terminate()
        process.wait(30)
    return case


def _presigned(container: Container, env: dict[str, str], mib: int) -> Case:
    import requests

    case = Case("presigned multipart + finaliser", mib)
    size = mib * MiB
    uploads = container.uploads
    image_id = _new_image(container)
    opened = uploads.open(container.images.get(image_id), uploads.plan(size, None, multipart=True))
    session = opened.session
    if session.parts_count > len(opened.parts):
        opened_parts = opened.parts + uploads.part_urls(
            container.images.get(image_id), list(range(len(opened.parts) + 1, session.parts_count + 1))
        )
    else:
        opened_parts = opened.parts
    pool = os.urandom(64 * MiB)

    def send(part: Any) -> None:
        # a buffer of the part's length: the signed Content-Length is sent (a generator would go chunked)
        request = part.request
        body = memoryview(pool)[: part.size]
        response = requests.put(request.url, data=body, headers=dict(request.headers), timeout=600)
        response.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(PARALLEL) as threads:
        list(threads.map(send, opened_parts))
    uploads.complete(container.images.get(image_id))
    finalised = _finalize_child(env, session.key)
    case.seconds = time.perf_counter() - started
    case.cpu_s = finalised["cpu_s"]
    case.peak_rss_kib = finalised["hwm_kib"]
    if finalised["outcome"] != "active":
        case.skipped = f"finaliser outcome {finalised['outcome']}"
    _delete_data(container, image_id)
    return case


def _finalize_child(env: dict[str, str], key: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp, "result.json")
        cmd = [sys.executable, "-m", "benchmarks.data_plane", "finalize", "--out", str(out), "--key", key]
        done = subprocess.run(cmd, cwd=REPO_ROOT, env=child_env(env), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"finaliser child failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def finalize_child(argv: Sequence[str]) -> None:
    """The presigned case's finaliser: ``handle_object`` on the key, its CPU seconds and VmHWM."""
    import argparse

    from shared.bootstrap import Container
    from shared.config import get_settings

    parser = argparse.ArgumentParser(prog="python -m benchmarks.data_plane finalize")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    container = Container(get_settings().model_copy(update={"proxy_finalize_grace_seconds": 0}))
    cpu_before = time.process_time()
    outcome = container.finalizer.handle_object(args.key).value
    result = {
        "outcome": outcome,
        "cpu_s": time.process_time() - cpu_before,
        "hwm_kib": _status_kib(os.getpid(), "VmHWM"),
    }
    args.out.write_text(json.dumps(result))


def _glance(mib: int) -> Case:
    import requests

    case = Case("Glance 33 PUT /file", mib)
    pids = _glance_pids()
    if not pids:
        case.skipped = f"the reference Glance is not running ({REF_PIDS})"
        return case
    token = _glance_token()
    headers = {"X-Auth-Token": token}
    created = requests.post(
        f"{GLANCE_URL}/v2/images",
        json={"name": "bench-data-plane", "disk_format": "raw", "container_format": "bare"},
        headers=headers,
        timeout=30,
    )
    created.raise_for_status()
    image_id = created.json()["id"]
    try:
        cpu_before = _cpu(pids)
        with _RssSampler(pids) as rss:
            started = time.perf_counter()
            response = requests.put(
                f"{GLANCE_URL}/v2/images/{image_id}/file",
                data=_Body(mib * MiB),
                headers={**headers, "Content-Type": "application/octet-stream"},
            )
            case.seconds = time.perf_counter() - started
        case.cpu_s = _cpu(pids) - cpu_before
        case.peak_rss_kib = rss.peak_kib
        if response.status_code != 204:
            case.skipped = f"Glance answered {response.status_code}"
    finally:
        requests.delete(f"{GLANCE_URL}/v2/images/{image_id}", headers=headers, timeout=60)
    return case


def _glance_pids() -> list[int]:
    """The reference Glance's uWSGI master (``glance-api`` in its pids file) and its workers."""
    try:
        entries = dict(line.split() for line in REF_PIDS.read_text().splitlines() if line.strip())
    except (OSError, ValueError):
        return []
    master = int(entries.get("glance-api", 0))
    if not master or not Path(f"/proc/{master}").exists():
        return []
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [master, *map(int, children)]


def _glance_token() -> str:
    import yaml  # type: ignore[import-untyped]
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = yaml.safe_load(REF_CLOUDS.read_text())["clouds"]["ref-admin"]["auth"]
    password = v3.Password(**auth)
    token = ks_session.Session(auth=password).get_token()
    if token is None:
        raise RuntimeError("the reference Keystone issued no token")
    return str(token)


def _delete_data(container: Container, image_id: str) -> None:
    """Free RGW's memory for the next case (memstore keeps objects in RAM)."""
    image = container.images.get(image_id)
    for location in image.locations:
        container.image_bucket.delete(location.url.split("/", 3)[3])


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the data plane exited ({process.returncode}); see .bench/data-plane.log")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise RuntimeError("the data plane did not answer") from None
            time.sleep(0.1)


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


CASES: tuple[tuple[str, Callable[[Container, dict[str, str], int], Case]], ...] = (
    ("data plane PUT /file", _data_plane),
    ("presigned multipart + finaliser", _presigned),
    ("Glance 33 PUT /file", lambda _container, _env, mib: _glance(mib)),
)


# -- the part -------------------------------------------------------------------------------------------------


def run(sizes_mib: Sequence[int] = SIZES_MIB) -> PartResult:
    """Every case at every size that fits in memory; RGW and moto started here and stopped at the end."""
    if shutil.which("radosgw") is None:
        return _report([], ["no Ceph RGW (tests/backends/ceph/install.sh installs it): nothing measured"])
    # memstore holds the largest image once (each case's object is deleted before the next), RGW and moto some more
    fits = [mib for mib in sizes_mib if _mem_available() > 2 * mib * MiB + 4 * GiB]
    notes = [f"{mib} MiB skipped: not enough free memory for RGW's memstore" for mib in sizes_mib if mib not in fits]
    if not fits:
        return _report([], notes)
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="bench-rgw-") as tmp:
        run_dir = Path(tmp) / "rgw"
        rgw = _start_rgw(run_dir, max(fits) * MiB + 3 * GiB)
        try:
            with ServerProcess("moto", name="data-plane-moto") as moto:
                env = _rgw_env(rgw, moto.url)
                _, container = _settings_and_container(env)
                for mib in fits:
                    for flow, measure in CASES:
                        try:
                            cases.append(measure(container, env, mib))
                        except Exception as exc:  # one failed case is reported, the others still run
                            cases.append(Case(flow, mib, skipped=f"failed: {type(exc).__name__}: {str(exc)[:160]}"))
                        # RGW deletes the parts of a deleted object later (its GC): free memstore now
                        _rgw_gc(run_dir)
        finally:
            _stop_rgw(run_dir)
    return _report(cases, notes)


def _report(cases: list[Case], notes: list[str]) -> PartResult:
    table = Table(
        "data plane: first byte -> active on a real S3 (Ceph RGW), vs real Glance's PUT /file",
        ["flow", "size", "MiB/s", "server CPU-s/GiB", "server peak RSS MiB", "note"],
        left=frozenset({0, 5}),
    )
    for case in cases:
        table.rows.append(
            [
                case.flow,
                f"{case.mib // 1024} GiB" if case.mib % 1024 == 0 else f"{case.mib} MiB",
                f"{case.mib_per_s:.1f}",
                f"{case.cpu_per_gib:.2f}",
                f"{case.peak_rss_kib // 1024}",
                case.skipped,
            ]
        )
    table.notes.extend(
        [
            "data plane: the container's process, the body streamed with a Content-Length; 204 means active",
            "RGW is plain HTTP: botocore then SHA-256-signs every part the data plane sends (over HTTPS, as on AWS,"
            " it does not), so the data plane's CPU includes a third full hash here",
            "presigned: 4 parts in flight to RGW, then complete + the finaliser (its CPU and VmHWM; it reads once)",
            "Glance: the reference Glance 33 (uWSGI, file store), every uWSGI process's CPU and summed RSS",
            *notes,
        ]
    )
    summary = []
    by = {(c.flow.split()[0], c.mib): c for c in cases if not c.skipped}
    for mib in sorted({c.mib for c in cases}):
        ours, glance = by.get(("data", mib)), by.get(("Glance", mib))
        if ours and glance:
            summary.append(
                SummaryRow(
                    f"data plane/Glance MiB/s at {mib} MiB",
                    fmt_ratio(ratio(ours.mib_per_s, glance.mib_per_s)),
                    ">= 1",
                    f"{ours.mib_per_s:.0f} vs {glance.mib_per_s:.0f} MiB/s",
                )
            )
            summary.append(
                SummaryRow(
                    f"data plane/Glance CPU-s per GiB at {mib} MiB",
                    fmt_ratio(ratio(ours.cpu_per_gib, glance.cpu_per_gib)),
                    "<= 1",
                    f"{ours.cpu_per_gib:.2f} vs {glance.cpu_per_gib:.2f}",
                )
            )
    return PartResult("data_plane", [table], summary, {"cases": [asdict(c) for c in cases]})


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.data_plane [--sizes 1024,4096]`` alone, or ``finalize`` (the presigned case's child)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "finalize":
        finalize_child(args[1:])
        return
    sizes: tuple[int, ...] = SIZES_MIB
    if len(args) == 2 and args[0] == "--sizes":
        sizes = tuple(int(s) for s in args[1].split(","))
    result = run(sizes)
    for table in result.tables:
        print(table.render())
    for row in result.summary:
        print(f"{row.name}: {row.value} (target {row.target}; {row.detail})")


if __name__ == "__main__":
    main()
