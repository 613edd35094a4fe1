"""store_sync: an image copied from the primary bucket to Swift, against ``swift upload`` of the same bytes.

Three measurements in one run, against one real Swift (``tests/backends/swift/start.sh``: loopback, free ports,
tempauth) and moto servers in their own processes:

1. **Copy throughput.** ``StoreSync.run({"op": "copy", ...})`` copies an active image whose bytes are in the
   primary bucket on moto to the ``swift`` store: GET from moto, md5 and sha512 on the way (checked against the
   image's recorded checksums), the PUT to Swift, and the two record updates on moto's DynamoDB. The store has the
   driver's default settings: ``large_object_size`` is 5 GiB, so the image is one streaming PUT. The reference is
   the python-swiftclient CLI, ``swift upload`` of the same bytes from a local file, run as a user runs it (a fresh
   process, its own auth). The two alternate, ``reps`` times each. The same pair then runs once more with 200 MiB
   segments: a Static Large Object for us (the ``swift-slo`` store), ``swift upload -S`` for the CLI.
2. **Where the time goes.** One pass each over the same bytes: moto's GET drained through the primary store's
   driver (no hashing); ``SwiftStore.add`` from the local file (hashing and PUT, no moto); swiftclient's
   ``put_object`` of the file in this process (the PUT alone); the hashing limit (md5 || sha512, two threads, in
   memory).
3. **Memory.** ``StoreSync.run`` in a fresh child process, after a small warm-up copy, for a 256 MiB and a 2 GiB
   image (VmHWM from ``/proc/self/status``).

Run as ``python -m benchmarks.store_sync copy ...`` this module is the child process of measurement 3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks._common import (
    BENCH_DIR,
    REPO_ROOT,
    PartResult,
    ServerProcess,
    SummaryRow,
    Table,
    child_env,
    fmt_ratio,
    median,
    proc_cpu_seconds,
    ratio,
    use_fake_aws_env,
)
from benchmarks.uploads import (
    MEMORY_MARGIN,
    MOTO_SINGLE_PUT_FACTOR,
    SEND_CHUNK,
    blocks,
    hashing_limit,
    mem_available,
    status_kib,
    uploading_image,
)
from benchmarks.uploads import (
    image_bucket as _image_bucket,
)

if TYPE_CHECKING:
    from shared.bootstrap import Container
    from shared.config import Settings
    from shared.jobs import CopyJob

MiB = 1024 * 1024
SWIFT_SCRIPTS = REPO_ROOT / "tests" / "backends" / "swift"
STORE = "swift"
SLO_STORE = "swift-slo"
SEGMENT_MIB = 200
CONTAINER = "bench-store-sync"
CLI_CONTAINER = "bench-swift-cli"
HASH_ALGO = "sha512"
WARM_MIB = 16
LIMIT_MIB = 256
# Environment prefixes the swift CLI child must not inherit: its auth comes from -A/-U/-K only.
_CLI_DROPPED_ENV = ("ST_", "OS_")


# -- Swift ------------------------------------------------------------------------------------------


@dataclass
class Swift:
    """A running one-node Swift from ``start.sh``: its env file and the PIDs of its servers."""

    env: dict[str, str]
    run_dir: Path

    @property
    def auth(self) -> tuple[str, str, str]:
        """(auth URL, user, key) for tempauth (v1)."""
        return self.env["SWIFT_AUTH_URL"], self.env["SWIFT_USER"], self.env["SWIFT_KEY"]

    def pids(self) -> list[int]:
        """The server processes (proxy, object, container, account, memcached)."""
        return [int(p) for p in (self.run_dir / "pids").read_text().split()]

    def cpu_seconds(self) -> float:
        """CPU seconds all of its servers have used so far."""
        total = 0.0
        for pid in self.pids():
            try:
                total += proc_cpu_seconds(pid)
            except OSError:
                continue
        return total

    def connection(self) -> Any:
        """A swiftclient connection as the benchmark user."""
        from swiftclient.client import Connection

        url, user, key = self.auth
        return Connection(authurl=url, user=user, key=key, retries=0)

    def store_configs(self) -> dict[str, dict[str, Any]]:
        """``SGLANCE_STORES``: the default Swift store, and one writing SLOs of 200 MiB segments."""
        url, user, key = self.auth
        base = {"type": "swift", "auth_url": url, "auth_version": "1", "user": user, "key": key}
        return {
            STORE: {**base, "container": CONTAINER},
            SLO_STORE: {
                **base,
                "container": CONTAINER,
                "large_object_size": SEGMENT_MIB * MiB,
                "segment_size": SEGMENT_MIB * MiB,
            },
        }


def _script(name: str, *args: str) -> str:
    done = subprocess.run(
        ["bash", str(SWIFT_SCRIPTS / name), *args], capture_output=True, text=True, timeout=180, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    return done.stdout


@contextmanager
def swift_backend() -> Iterator[Swift]:
    """Swift started in a fresh directory, always stopped (and its data removed) at the end."""
    if shutil.which("swift-proxy-server") is None:
        raise RuntimeError(f"Swift is not installed; run {SWIFT_SCRIPTS / 'install.sh'}")
    run_dir = Path(tempfile.mkdtemp(prefix="bench-swift-"))
    try:
        _script("start.sh", str(run_dir))
        env = dict(line.split("=", 1) for line in (run_dir / "env").read_text().splitlines() if "=" in line)
        yield Swift(env, run_dir)
    finally:
        _script("stop.sh", str(run_dir))
        shutil.rmtree(run_dir, ignore_errors=True)


def delete_swift_object(connection: Any, container: str, name: str) -> None:
    """Delete an object, with its segments when it is a Static Large Object (the CLI's SLOs)."""
    from swiftclient.exceptions import ClientException

    try:
        headers = connection.head_object(container, name)
    except ClientException as exc:
        if exc.http_status == 404:
            return
        raise
    slo = headers.get("x-static-large-object", "").lower() == "true"
    connection.delete_object(container, name, query_string="multipart-manifest=delete" if slo else None)


# -- the stack ----------------------------------------------------------------------------------------


def provision(endpoint: str, stores: dict[str, dict[str, Any]]) -> Settings:
    """The resources on moto, and the settings of this process and of the children."""
    from devstack.provision import provision as provision_resources
    from shared.config import Settings
    from shared.resources import resources_for

    # The children never see the caller's SGLANCE_* (child_env); this process must build the same settings.
    for name in [k for k in os.environ if k.startswith("SGLANCE_")]:
        del os.environ[name]
    settings = Settings(aws_endpoint_url=endpoint, auth_mode="trusted-headers", stores=stores)
    provision_resources(resources_for(settings), endpoint, settings.aws_region)
    return settings


@dataclass(frozen=True)
class StoredImage:
    """An active image whose bytes are in the primary bucket."""

    image_id: str
    key: str
    size: int
    checksum: str
    os_hash_value: str


def store_image(container: Container, size: int, chunks: Iterable[bytes]) -> StoredImage:
    """Put ``chunks`` (``size`` bytes) in the primary bucket with a presigned PUT, hashing them on the way, and
    record the image active there, as the finaliser does."""
    import urllib3

    from shared.domain.image import ImageData
    from shared.domain.location import Location

    bucket = _image_bucket(container)
    image, session = uploading_image(container, size)
    md5, secure = hashlib.md5(usedforsecurity=False), hashlib.new(HASH_ALGO)

    def body() -> Iterator[bytes]:
        for chunk in chunks:
            md5.update(chunk)
            secure.update(chunk)
            yield chunk

    request = bucket.presign_put(session.key, size, 3600)
    response = urllib3.request(
        "PUT", request.url, body=body(), headers=dict(request.headers), retries=False, timeout=600
    )
    if response.status != 200:
        raise RuntimeError(f"PUT {session.key} to moto: {response.status} {response.data[:200]!r}")
    data = ImageData(size, md5.hexdigest(), HASH_ALGO, secure.hexdigest(), None)
    image = container.image_uow.get(image.id)
    image.activate(data, Location(container.settings.primary_store_id, bucket.location_url(session.key)))
    container.image_uow.commit(image)
    return StoredImage(image.id, session.key, size, data.checksum, data.os_hash_value)


def plan_copy(container: Container, image_id: str, store: str) -> CopyJob:
    """A pending copy of the image to ``store`` (as the copy-image API records it); returns its store_sync job."""
    from shared.jobs import CopyJob
    from shared.services.replication import new_batch

    image = container.image_uow.get(image_id)
    batch = new_batch()
    image.plan_copies([store], batch, must_succeed=True)
    container.image_uow.commit(image)
    return CopyJob(image_id, store, batch)


def remove_copy(container: Container, image_id: str, store: str) -> None:
    """Forget the image's copy in ``store`` and delete its bytes there (before the next copy, and at the end)."""
    image = container.image_uow.get(image_id)
    if image.location(store) is None:
        return
    location = image.remove_copy(store)
    container.image_uow.commit(image)
    container.stores.driver(store).delete(location.url)


def file_chunks(path: Path, chunk: int = SEND_CHUNK) -> Iterator[bytes]:
    """The file in ``chunk``-sized reads."""
    with path.open("rb") as f:
        while piece := f.read(chunk):
            yield piece


# -- 1: copy throughput ---------------------------------------------------------------------------------


@dataclass
class Sample:
    """One timed pass: wall seconds and the CPU seconds of the client and of each server meanwhile."""

    seconds: float
    client_cpu_s: float
    moto_cpu_s: float
    swift_cpu_s: float
    verified: bool
    detail: str = ""


@dataclass
class Throughput:
    """Measurements 1 and 2."""

    mib: int
    reps: int
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    limit_s: list[float] = field(default_factory=list)
    cli_fixed_s: float = 0.0
    write_s: float = 0.0
    put_s: float = 0.0

    def add(self, kind: str, sample: Sample) -> None:
        """Record a sample of ``kind``."""
        self.samples.setdefault(kind, []).append(sample)

    @property
    def limit_mib_s(self) -> float:
        """The hashing limit in MiB/s (median)."""
        seconds = median(self.limit_s)
        return LIMIT_MIB / seconds if seconds else 0.0

    def cpu_per_gib(self, kind: str) -> float:
        """CPU seconds per GiB of the median client + moto + Swift CPU of ``kind`` (0 when none)."""
        samples = self.samples.get(kind, [])
        total = median([s.client_cpu_s + s.moto_cpu_s + s.swift_cpu_s for s in samples])
        return total * 1024 / self.mib

    def mib_s(self, kind: str) -> float:
        """MiB/s of the median sample of ``kind`` (0 when none)."""
        seconds = median([s.seconds for s in self.samples.get(kind, [])])
        return self.mib / seconds if seconds else 0.0


class Meter:
    """Wall time and CPU of this process (every thread), of the child processes waited for, of moto, of Swift."""

    def __init__(self, moto: ServerProcess, swift: Swift) -> None:
        self._moto = moto
        self._swift = swift

    def measure(self, action: Callable[[], tuple[bool, str]], in_child: bool = False) -> Sample:
        """Run ``action`` (returning verified, detail) and measure it; ``in_child``: the client is a subprocess."""
        before = self._read()
        verified, detail = action()
        after = self._read()
        client = after[4] - before[4] if in_child else after[1] - before[1]
        return Sample(after[0] - before[0], client, after[2] - before[2], after[3] - before[3], verified, detail)

    def _read(self) -> tuple[float, float, float, float, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (
            time.perf_counter(),
            time.process_time(),
            self._moto.cpu_seconds(),
            self._swift.cpu_seconds(),
            children.ru_utime + children.ru_stime,
        )


def _swift_cli() -> str:
    beside = Path(sys.executable).parent / "swift"
    found = str(beside) if beside.exists() else shutil.which("swift")
    if found is None:
        raise RuntimeError("the python-swiftclient CLI (swift) is not installed")
    return found


def _cli_env() -> dict[str, str]:
    return {k: v for k, v in child_env().items() if not k.startswith(_CLI_DROPPED_ENV)}


def cli_upload(swift: Swift, path: Path, name: str, segment_mib: int | None) -> tuple[bool, str]:
    """``swift upload`` of the file as ``name``; verified = Swift's ETag or size matches."""
    url, user, key = swift.auth
    cmd = [_swift_cli(), "-A", url, "-U", user, "-K", key, "upload", CLI_CONTAINER, str(path), "--object-name", name]
    if segment_mib:
        cmd += ["-S", str(segment_mib * MiB)]
    done = subprocess.run(cmd, env=_cli_env(), capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        return False, f"swift upload failed ({done.returncode}): {done.stderr[-300:]}"
    return True, ""


def measure_throughput(swift: Swift, mib: int, reps: int, slo: bool) -> Throughput:
    """Ours and ``swift upload`` alternating ``reps`` times, the SLO pair once, then the single passes."""
    from shared.bootstrap import Container

    out = Throughput(mib, reps)
    size = mib * MiB
    BENCH_DIR.mkdir(exist_ok=True)
    path = BENCH_DIR / f"store-sync-{mib}MiB.bin"
    connection = swift.connection()
    try:
        started = time.perf_counter()
        with path.open("wb") as f:
            for block in blocks(size):
                f.write(block)
        out.write_s = time.perf_counter() - started
        with ServerProcess("moto", name="store-sync-moto") as moto:
            settings = provision(moto.url, swift.store_configs())
            container = Container(settings)
            sync = container.store_sync
            meter = Meter(moto, swift)
            started = time.perf_counter()
            image = store_image(container, size, file_chunks(path))
            out.put_s = time.perf_counter() - started
            # Warm-up: imports, the Swift and S3 connections, the containers; not timed.
            warm = store_image(container, WARM_MIB * MiB, blocks(WARM_MIB * MiB))
            for store in (STORE, SLO_STORE):
                sync.run(plan_copy(container, warm.image_id, store))
                remove_copy(container, warm.image_id, store)
            connection.put_container(CLI_CONTAINER)
            out.cli_fixed_s = _cli_fixed_cost(swift)

            def ours(store: str) -> Sample:
                job = plan_copy(container, image.image_id, store)

                def copy() -> tuple[bool, str]:
                    outcome = sync.run(job)
                    return outcome.value == "copied", outcome.value

                sample = meter.measure(copy)
                copied = container.image_repository.get(image.image_id)
                sample.verified = sample.verified and copied.location(store) is not None
                remove_copy(container, image.image_id, store)
                return sample

            def cli(segment_mib: int | None) -> Sample:
                name = f"cli-{uuid.uuid4().hex}"
                sample = meter.measure(lambda: cli_upload(swift, path, name, segment_mib), in_child=True)
                if sample.verified:
                    headers = connection.head_object(CLI_CONTAINER, name)
                    same_size = int(headers["content-length"]) == size
                    sample.verified = same_size and (segment_mib is not None or headers["etag"] == image.checksum)
                delete_swift_object(connection, CLI_CONTAINER, name)
                return sample

            for rep in range(reps):
                pair: list[tuple[str, Callable[[], Sample]]] = [
                    ("ours", lambda: ours(STORE)),
                    ("cli", lambda: cli(None)),
                ]
                for kind, run_one in pair if rep % 2 == 0 else reversed(pair):
                    out.add(kind, run_one())
            if slo:
                out.add("ours-slo", ours(SLO_STORE))
                out.add("cli-slo", cli(SEGMENT_MIB))
            _single_passes(out, container, connection, meter, image, path)
            container.image_bucket.delete(image.key)
            container.image_bucket.delete(warm.key)
            container.stores.close()
        chunks = list(blocks(LIMIT_MIB * MiB))
        out.limit_s = [hashing_limit(chunks) for _ in range(3)]
    finally:
        path.unlink(missing_ok=True)
        connection.close()
    return out


def _cli_fixed_cost(swift: Swift) -> float:
    """Seconds of ``swift stat <container>``: interpreter start, imports, auth and one request."""
    url, user, key = swift.auth
    started = time.perf_counter()
    subprocess.run(
        [_swift_cli(), "-A", url, "-U", user, "-K", key, "stat", CLI_CONTAINER],
        env=_cli_env(),
        capture_output=True,
        timeout=60,
        check=True,
    )
    return time.perf_counter() - started


def _single_passes(
    out: Throughput, container: Container, connection: Any, meter: Meter, image: StoredImage, path: Path
) -> None:
    """Measurement 2: the GET, the driver's add from the file, the PUT alone."""
    stores = container.stores
    primary = stores.driver(container.settings.primary_store_id)
    url = container.image_bucket.location_url(image.key)

    def get() -> tuple[bool, str]:
        read = primary.get(url)
        drained = sum(len(chunk) for chunk in read.chunks)
        return drained == image.size, f"{drained} bytes"

    out.add("get", meter.measure(get))
    driver = stores.driver(STORE)
    written: list[str] = []

    def add() -> tuple[bool, str]:
        result = driver.add(f"add-{uuid.uuid4().hex}", file_chunks(path), image.size, HASH_ALGO)
        written.append(result.url)
        return (result.checksum, result.multihash) == (image.checksum, image.os_hash_value), ""

    out.add("add", meter.measure(add))
    for url_written in written:
        driver.delete(url_written)
    name = f"put-{uuid.uuid4().hex}"

    def put() -> tuple[bool, str]:
        with path.open("rb") as f:
            etag = connection.put_object(CONTAINER, name, contents=f, content_length=image.size)
        return etag == image.checksum, ""

    out.add("put", meter.measure(put))
    delete_swift_object(connection, CONTAINER, name)


# -- 3: memory, in a child process ---------------------------------------------------------------------


@dataclass
class RssRun:
    """One store_sync child: its VmHWM before and after the copy."""

    mib: int
    seconds: float = 0.0
    outcome: str = ""
    hwm_before_kib: int = 0
    hwm_kib: int = 0
    rss_after_kib: int = 0
    verified: bool = False
    skipped: str = ""


def measure_rss(swift: Swift, sizes_mib: Sequence[int]) -> list[RssRun]:
    """Each size copied by a fresh child, from a fresh moto (moto holds objects in RAM)."""
    runs = [RssRun(mib) for mib in sizes_mib]
    needed = MOTO_SINGLE_PUT_FACTOR * max(sizes_mib) * MiB + MEMORY_MARGIN
    if mem_available() < needed:
        for run in runs:
            run.skipped = f"not enough memory for moto ({needed // MiB} MiB needed)"
        return runs
    for run in runs:
        _rss_one(swift, run)
    return runs


def _rss_one(swift: Swift, run: RssRun) -> None:
    from shared.bootstrap import Container

    stores = swift.store_configs()
    with ServerProcess("moto", name="store-sync-moto") as moto:
        container = Container(provision(moto.url, stores))
        warm = store_image(container, WARM_MIB * MiB, blocks(WARM_MIB * MiB))
        image = store_image(container, run.mib * MiB, blocks(run.mib * MiB))
        warm_job, job = plan_copy(container, warm.image_id, STORE), plan_copy(container, image.image_id, STORE)
        env = {"SGLANCE_AWS_ENDPOINT_URL": moto.url, "SGLANCE_STORES": json.dumps(stores)}
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            out = Path(tmp, "result.json")
            cmd = [sys.executable, "-m", "benchmarks.store_sync", "copy", "--out", str(out)]
            cmd += ["--warm-job", json.dumps(warm_job), "--job", json.dumps(job)]
            done = subprocess.run(cmd, cwd=REPO_ROOT, env=child_env(env), capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"store_sync child failed ({done.returncode}):\n{done.stderr[-3000:]}")
            result = json.loads(out.read_text())
        run.seconds = result["seconds"]
        run.outcome = result["outcome"]
        run.hwm_before_kib = result["hwm_before_kib"]
        run.hwm_kib = result["hwm_kib"]
        run.rss_after_kib = result["rss_after_kib"]
        copied = container.image_repository.get(image.image_id).location(STORE)
        run.verified = run.outcome == "copied" and copied is not None and bool(copied.url)
        for stored in (warm, image):
            remove_copy(container, stored.image_id, STORE)
            container.image_bucket.delete(stored.key)
        container.stores.close()


def copy_child(argv: Sequence[str]) -> None:
    """The child of measurement 3: a warm-up copy, then the measured one, then its VmHWM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_sync copy")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--warm-job", required=True, type=json.loads, help="a small copy job run first")
    parser.add_argument("--job", required=True, type=json.loads, help="the measured store_sync job")
    args = parser.parse_args(argv)

    from shared.bootstrap import Container
    from shared.config import get_settings

    sync = Container(get_settings()).store_sync
    # Warm-up, so that the baseline holds the clients, the connections and the digest threads.
    sync.run(args.warm_job)
    before = status_kib("self", "VmHWM")
    started = time.perf_counter()
    outcome = sync.run(args.job).value
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "outcome": outcome,
        "hwm_before_kib": before,
        "hwm_kib": status_kib("self", "VmHWM"),
        "rss_after_kib": status_kib("self", "VmRSS"),
    }
    args.out.write_text(json.dumps(result))


# -- the part -------------------------------------------------------------------------------------------


def run(
    size_mib: int = 1024,
    reps: int = 3,
    rss_sizes_mib: Sequence[int] = (256, 2048),
    slo: bool = True,
) -> PartResult:
    """Measurements 1, 2 and 3 against one Swift, then their tables and summary rows."""
    use_fake_aws_env()
    if shutil.which("swift-proxy-server") is None:
        note = f"Swift is not installed here: run {SWIFT_SCRIPTS / 'install.sh'} once, then run again."
        return PartResult("store_sync", [Table("store_sync: skipped", ["reason"], [[note]])])
    with swift_backend() as swift:
        throughput = measure_throughput(swift, size_mib, reps, slo)
        rss = measure_rss(swift, rss_sizes_mib)
    return _report(throughput, rss)


def _size(mib: int) -> str:
    return f"{mib // 1024}GiB" if mib % 1024 == 0 else f"{mib}MiB"


_LABELS = {
    "ours": "store_sync copy (StoreSync.run), single PUT",
    "cli": "swift upload <file> (python-swiftclient CLI)",
    "ours-slo": f"store_sync copy, SLO of {SEGMENT_MIB} MiB segments (1 upload thread)",
    "cli-slo": f"swift upload -S {SEGMENT_MIB} MiB (SLO, CLI's 10 segment threads)",
    "get": "moto GET drained (primary store driver, no hashing)",
    "add": "SwiftStore.add from the local file (hashing + PUT, no moto)",
    "put": "swiftclient put_object of the file (PUT alone, no hashing)",
}


def _report(t: Throughput, rss: list[RssRun]) -> PartResult:
    tables = [_throughput_table(t), _rss_table(rss)]
    ours, cli = t.mib_s("ours"), t.mib_s("cli")
    limit = t.limit_mib_s
    small, large = rss[0], rss[-1]
    summary = [
        SummaryRow(
            f"store_sync/swift upload {_size(t.mib)} to Swift",
            fmt_ratio(ratio(ours, cli)),
            ">= 0.80x",
            f"{ours:.0f} vs {cli:.0f} MiB/s, single PUT, median of {t.reps}; hashing limit {limit:.0f} MiB/s",
        ),
        SummaryRow(
            "store_sync/swift upload CPU-s per GiB",
            fmt_ratio(ratio(t.cpu_per_gib("ours"), t.cpu_per_gib("cli"))),
            "info",
            f"{t.cpu_per_gib('ours'):.1f} vs {t.cpu_per_gib('cli'):.1f}: client + moto + Swift servers, single PUT",
        ),
    ]
    if "ours-slo" in t.samples:
        slo, cli_slo = t.mib_s("ours-slo"), t.mib_s("cli-slo")
        summary.append(
            SummaryRow(
                f"store_sync/swift upload SLO {SEGMENT_MIB}MiB segments",
                fmt_ratio(ratio(slo, cli_slo)),
                "info",
                f"{slo:.0f} vs {cli_slo:.0f} MiB/s, 1 run each (CLI: 10 segment threads, ours: 1)",
            )
        )
    if not large.skipped:
        summary.append(
            SummaryRow(
                f"store_sync peak RSS {_size(large.mib)}/{_size(small.mib)}",
                fmt_ratio(ratio(large.hwm_kib, small.hwm_kib)),
                "<= 1.20x",
                f"VmHWM {large.hwm_kib / 1024:.0f} vs {small.hwm_kib / 1024:.0f} MiB, child process, single PUT",
            )
        )
    data = {
        "throughput": {**asdict(t), "mib_per_s": {kind: t.mib_s(kind) for kind in t.samples}},
        "rss": [asdict(r) for r in rss],
    }
    return PartResult("store_sync", tables, summary, data)


def _throughput_table(t: Throughput) -> Table:
    # The SLO rows compare with the CLI's SLO upload; the others with its single PUT.
    reference = {"ours-slo": "cli-slo", "cli-slo": "cli-slo"}
    table = Table(
        f"store_sync copy to Swift vs swift upload: {_size(t.mib)} (pair alternating, median of {t.reps})",
        [
            "path",
            "runs",
            "MiB/s",
            "s (min-max)",
            "/ swift upload (same layout)",
            "client CPU s",
            "moto CPU s",
            "Swift CPU s",
            "ok",
        ],
    )
    for kind, label in _LABELS.items():
        samples = t.samples.get(kind)
        if not samples:
            continue
        seconds = [s.seconds for s in samples]
        rate = t.mib_s(kind)
        table.rows.append(
            [
                label,
                str(len(samples)),
                f"{rate:.0f}",
                f"{median(seconds):.2f} ({min(seconds):.2f}-{max(seconds):.2f})",
                fmt_ratio(ratio(rate, t.mib_s(reference.get(kind, "cli")))),
                f"{median([s.client_cpu_s for s in samples]):.2f}",
                f"{median([s.moto_cpu_s for s in samples]):.2f}",
                f"{median([s.swift_cpu_s for s in samples]):.2f}",
                "yes" if all(s.verified for s in samples) else f"NO {samples[-1].detail[:60]}",
            ]
        )
    limit = t.limit_mib_s
    table.rows.append(
        [
            f"hashing limit: md5 || sha512, two threads, {LIMIT_MIB} MiB in memory",
            "3",
            f"{limit:.0f}",
            "",
            "",
            "",
            "",
            "",
            "",
        ]
    )
    table.notes += [
        "store_sync copy = StoreSync.run({'op': 'copy', ...}) on a warm instance (connections open, as in a warm "
        "Lambda): two record updates on moto's DynamoDB, GET from the primary bucket on moto, sha512 in the digest "
        "thread (the md5 is Swift's ETag of what it stored), one streaming PUT (default large_object_size 5 GiB), "
        "both checksums checked against the image.",
        "swift upload = a fresh CLI process per run, from a local file in the page cache: interpreter start, auth, "
        f"container PUT, HEAD, the PUT with md5 of the body. Its fixed cost (swift stat) was {t.cli_fixed_s:.2f} s.",
        "client CPU = this process (all threads) for ours, the CLI child for swift upload. Swift CPU = proxy, object, "
        f"container, account servers and memcached. Everything shares {os.cpu_count()} cores.",
        f"Setup (not timed): the file written in {t.write_s:.1f} s, put into moto in {t.put_s:.1f} s.",
    ]
    return table


def _rss_table(runs: list[RssRun]) -> Table:
    table = Table(
        "store_sync peak RSS: one child process per size (VmHWM from /proc/self/status)",
        ["image", "s", "MiB/s", "outcome", "VmHWM MiB", "before MiB", "growth MiB"],
    )
    for r in runs:
        if r.skipped:
            table.rows.append([_size(r.mib), "", "", f"skipped: {r.skipped}", "", "", ""])
            continue
        table.rows.append(
            [
                _size(r.mib),
                f"{r.seconds:.1f}",
                f"{r.mib / r.seconds:.0f}" if r.seconds else "",
                r.outcome if r.verified else f"{r.outcome} (NOT recorded)",
                f"{r.hwm_kib / 1024:.0f}",
                f"{r.hwm_before_kib / 1024:.0f}",
                f"{(r.hwm_kib - r.hwm_before_kib) / 1024:.0f}",
            ]
        )
    table.notes += [
        f"Each child runs StoreSync.run for a {WARM_MIB} MiB warm-up image, then for the measured one (default Swift "
        "store: a single streaming PUT), from a fresh moto. before = VmHWM after the warm-up copy; growth = what the "
        "measured copy added. Target: equal within 20 % across sizes (constant memory).",
    ]
    return table


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.store_sync copy ...``: the child of measurement 3."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "copy":
        raise SystemExit("usage: python -m benchmarks.store_sync copy --out FILE --warm-job JSON --job JSON")
    copy_child(args[1:])


if __name__ == "__main__":
    main()
