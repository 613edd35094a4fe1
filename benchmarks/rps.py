"""Request rates: image-show and image-list, ours vs a bare FastAPI app vs the real Glance, by BASELINE.md's method.

Method (as ``/work/shared/reference/glance-reference/tools/baseline.py``): 20 images created through the API,
10 warm-up requests of each kind, then N sequential ``requests.get`` calls per kind from one Python process, a new
connection per request (no ``Session``). Every server runs in its own process, so its CPU time (user + system from
``/proc/<pid>/stat``) is measured on its own: client and servers share the machine's cores, so server CPU per
request is the figure that compares implementations; req/s and latencies depend on the load of the box.

Also measured here: md5 + sha512 hashing throughput of this machine (the ceiling of a hashing upload path).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks._common import (
    PartResult,
    ServerProcess,
    SummaryRow,
    Table,
    cpu_of_processes,
    create_images_table,
    fmt_ratio,
    http_json,
    percentile,
    ratio,
    use_fake_aws_env,
)

TABLE_NAME = "bench-rps"
LIST_IMAGES = 20
WARMUP = 10
MiB = 1024 * 1024

GLANCE_URL = os.environ.get("BENCH_GLANCE_URL", "http://127.0.0.1:9392")
KEYSTONE_URL = os.environ.get("BENCH_KEYSTONE_URL", "http://127.0.0.1:5500/v3")
GLANCE_PROCNAME = "ref-glance-uWSGI"
# BASELINE.md (2026-11-29, real Glance 33 under uWSGI, 2 workers): median (min-max) of 3 runs.
GLANCE_BASELINE: dict[str, dict[str, float]] = {
    "show": {"req_per_s": 118, "p50_ms": 8.4, "p95_ms": 10.0, "max_ms": 13.1, "server_cpu_ms_per_req": 6.9},
    "list": {"req_per_s": 71, "p50_ms": 14.0, "p95_ms": 15.6, "max_ms": 18.8, "server_cpu_ms_per_req": 12.5},
}


@dataclass
class Rate:
    """One timed loop against one server."""

    requests: int
    req_per_s: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    server_cpu_ms_per_req: float | None
    emulator_cpu_ms_per_req: float | None = None
    response_bytes: int = 0
    images_per_response: int | None = None


def timed_loop(
    get: Callable[[], Any], n: int, server_cpu: Callable[[], float] | None, emulator_cpu: Callable[[], float] | None
) -> Rate:
    """``n`` sequential calls of ``get`` (each returns a ``requests.Response``), with server CPU before/after."""
    latencies: list[float] = []
    c0 = server_cpu() if server_cpu else 0.0
    e0 = emulator_cpu() if emulator_cpu else 0.0
    size = 0
    t_start = time.perf_counter()
    for _ in range(n):
        t = time.perf_counter()
        response = get()
        response.raise_for_status()
        latencies.append((time.perf_counter() - t) * 1000)
        size = len(response.content)
    wall = time.perf_counter() - t_start
    cpu = (server_cpu() - c0) * 1000 / n if server_cpu else None
    emu = (emulator_cpu() - e0) * 1000 / n if emulator_cpu else None
    return Rate(n, n / wall, statistics.median(latencies), percentile(latencies, 0.95), max(latencies), cpu, emu, size)


def measure_target(
    base: str,
    show_id: str,
    n: int,
    headers: Mapping[str, str],
    server_cpu: Callable[[], float] | None,
    emulator_cpu: Callable[[], float] | None = None,
) -> dict[str, Rate]:
    """Warm up, then time image-show and image-list against one endpoint."""
    import requests

    hdr = dict(headers)

    def show() -> Any:
        return requests.get(f"{base}/v2/images/{show_id}", headers=hdr, timeout=30)

    def index() -> Any:
        return requests.get(f"{base}/v2/images", headers=hdr, timeout=30)

    for _ in range(WARMUP):
        show()
        index()
    listed = len(index().json()["images"])
    rates = {
        "show": timed_loop(show, n, server_cpu, emulator_cpu),
        "list": timed_loop(index, n, server_cpu, emulator_cpu),
    }
    rates["list"].images_per_response = listed
    return rates


def create_images(base: str, headers: Mapping[str, str], prefix: str) -> list[str]:
    """Create ``LIST_IMAGES`` queued images (as baseline.py does) and return their ids."""
    ids = []
    for i in range(LIST_IMAGES):
        body = {"name": f"{prefix}-{i:02d}", "disk_format": "raw", "container_format": "bare"}
        ids.append(http_json(f"{base}/v2/images", "POST", body, headers)["id"])
    return ids


# -- hashing ceiling ------------------------------------------------------------------------------


def hashing(total_mib: int = 256, chunk_mib: int = 4) -> dict[str, float]:
    """MiB/s of md5 alone, sha512 alone, and md5 + sha512 over the same bytes (what an upload computes)."""
    chunk = os.urandom(chunk_mib * MiB)
    rounds = total_mib // chunk_mib

    def rate(algos: tuple[str, ...]) -> float:
        hashers = [hashlib.new(a) for a in algos]
        t = time.perf_counter()
        for _ in range(rounds):
            for h in hashers:
                h.update(chunk)
        for h in hashers:
            h.hexdigest()
        return total_mib / (time.perf_counter() - t)

    return {"mib": total_mib, "md5": rate(("md5",)), "sha512": rate(("sha512",)), "md5+sha512": rate(("md5", "sha512"))}


def hashing_part() -> PartResult:
    """The hashing ceiling as a part of its own (``--only hashing``)."""
    h = hashing()
    table = Table(
        "Hashing limit (hashlib, one core, in this run)",
        ["", "MiB/s"],
        [[f"md5 + sha512 over {h['mib']} MiB", f"{h['md5+sha512']:.0f}"], ["md5 alone", f"{h['md5']:.0f}"]]
        + [["sha512 alone", f"{h['sha512']:.0f}"]],
        [
            "The ceiling for an upload path that computes Glance's checksum (md5) and os_hash_value (sha512) "
            "in one process; Glance's own 256 MiB upload ran at 185 MiB/s (BASELINE.md)."
        ],  # fmt: skip
    )
    summary = [SummaryRow("hashing limit md5+sha512", f"{h['md5+sha512']:.0f} MiB/s", "info", "one core, 256 MiB")]
    return PartResult("hashing", [table], summary, h)


# -- the real Glance, if it runs ------------------------------------------------------------------


def glance_token() -> str | None:
    """A Keystone token for the reference stack's admin, or None when Keystone or Glance do not answer."""
    import requests

    try:
        requests.get(GLANCE_URL, timeout=2)
        body: dict[str, Any] = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"id": "default"},
                            "password": os.environ.get("BENCH_GLANCE_ADMIN_PASSWORD", "secretadmin"),
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }
        response = requests.post(f"{KEYSTONE_URL}/auth/tokens", json=body, timeout=10)
        response.raise_for_status()
    except requests.RequestException:
        return None
    token: str | None = response.headers.get("X-Subject-Token")
    return token


def measure_glance(n: int) -> dict[str, Rate] | None:
    """Run the same loops against the reference Glance; None when it is not running."""
    import requests

    token = glance_token()
    if token is None:
        return None
    headers = {"X-Auth-Token": token}
    ids = create_images(GLANCE_URL, headers, "bench-rps")
    try:
        return measure_target(GLANCE_URL, ids[0], n, headers, lambda: cpu_of_processes([GLANCE_PROCNAME]))
    finally:
        for image_id in ids:
            requests.delete(f"{GLANCE_URL}/v2/images/{image_id}", headers=headers, timeout=30)


# -- the part -------------------------------------------------------------------------------------


def run(n: int = 200, with_hashing: bool = True) -> PartResult:
    """Ours (API + moto, separate processes), bare FastAPI, and Glance (live or BASELINE.md)."""
    use_fake_aws_env()
    env = {"SGLANCE_TABLE_NAME": TABLE_NAME}
    rates: dict[str, dict[str, Rate]] = {}
    with ServerProcess("moto", name="rps-moto") as moto:
        create_images_table(moto.url, TABLE_NAME)
        with ServerProcess("api", env={**env, "SGLANCE_AWS_ENDPOINT_URL": moto.url}, name="rps-api") as api:
            ids = create_images(api.url, {}, "bench-list")
            rates["ours"] = measure_target(api.url, ids[0], n, {}, api.cpu_seconds, moto.cpu_seconds)
            show_body = http_json(f"{api.url}/v2/images/{ids[0]}")
            list_body = http_json(f"{api.url}/v2/images")
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        show_file, list_file = Path(tmp, "show.json"), Path(tmp, "list.json")
        show_file.write_text(json.dumps(show_body))
        list_file.write_text(json.dumps(list_body))
        args = ("--show-body", str(show_file), "--list-body", str(list_file))
        with ServerProcess("bare", *args, name="rps-bare") as bare:
            rates["bare"] = measure_target(bare.url, ids[0], n, {}, bare.cpu_seconds)
    glance = measure_glance(n)
    if glance is not None:
        rates["glance"] = glance
    result = _report(rates, n, live_glance=glance is not None)
    if with_hashing:
        h = hashing_part()
        result.tables += h.tables
        result.summary += h.summary
        result.data["hashing"] = h.data
    return result


def _report(rates: dict[str, dict[str, Rate]], n: int, live_glance: bool) -> PartResult:
    glance_label = "Glance (this run)" if live_glance else "Glance (from BASELINE.md, not this run)"
    table = Table(
        f"Request rates: {n} sequential requests per kind, new connection per request, {WARMUP} warm-up",
        ["target / request", "req/s", "p50 ms", "p95 ms", "max ms", "server CPU ms/req", "moto CPU ms/req", "bytes"],
    )
    for kind in ("show", "list"):
        for who, label in (("ours", "ours (API + moto)"), ("bare", "bare FastAPI")):
            r = rates[who][kind]
            table.rows.append(
                [
                    f"{label}: image-{kind}",
                    f"{r.req_per_s:.0f}",
                    f"{r.p50_ms:.1f}",
                    f"{r.p95_ms:.1f}",
                    f"{r.max_ms:.1f}",
                    _cell(r.server_cpu_ms_per_req),
                    _cell(r.emulator_cpu_ms_per_req),
                    str(r.response_bytes),
                ]
            )
        g = rates["glance"][kind] if live_glance else None
        base = GLANCE_BASELINE[kind]
        table.rows.append(
            [
                f"{glance_label}: image-{kind}",
                f"{g.req_per_s if g else base['req_per_s']:.0f}",
                f"{g.p50_ms if g else base['p50_ms']:.1f}",
                f"{g.p95_ms if g else base['p95_ms']:.1f}",
                f"{g.max_ms if g else base['max_ms']:.1f}",
                _cell(g.server_cpu_ms_per_req if g else base["server_cpu_ms_per_req"]),
                "",
                str(g.response_bytes) if g else "",
            ]
        )
    listed = rates["ours"]["list"].images_per_response
    table.notes += [
        f"image-list returns {listed} images (ours, bare); Glance's baseline listed 20. Ours runs as admin in "
        "trusted-headers mode (like the baseline's ref-admin), so a list reads 4 list partitions + 1 BatchGetItem.",
        "server CPU = user+sys of the server process(es) during the loop / requests: the comparable number. Ours "
        "excludes moto (its CPU is the next column); Glance's includes its SQLite work and excludes Keystone.",
        "ours-vs-Glance wall-clock figures include emulator cost: each moto DynamoDB call adds ~4 ms "
        "(emulators.md §1); show = 1 GetItem, list = 4 Query + 1 BatchGetItem.",
        "bare = FastAPI with two routes returning the same JSON bodies as ours, same uvicorn settings.",
    ]
    if not live_glance:
        table.notes.append(
            f"no reference Glance answered at {GLANCE_URL} (+ Keystone {KEYSTONE_URL}); its rows are BASELINE.md's "
            "medians (2 uWSGI workers, Connection: close), measured on this machine kind on 2026-11-29."
        )
    ours, bare = rates["ours"], rates["bare"]
    glance_cpu = {
        k: (rates["glance"][k].server_cpu_ms_per_req if live_glance else GLANCE_BASELINE[k]["server_cpu_ms_per_req"])
        for k in ("show", "list")
    }
    source = "this run" if live_glance else "BASELINE.md"
    summary = []
    for kind in ("show", "list"):
        cpu = ours[kind].server_cpu_ms_per_req or 0.0
        summary.append(
            SummaryRow(
                f"image-{kind} server CPU ours/Glance",
                fmt_ratio(ratio(cpu, glance_cpu[kind] or 0.0)),
                "<= 1.00x",
                f"{cpu:.1f} vs {glance_cpu[kind]:.1f} ms/req (Glance: {source}); moto excluded",
            )
        )
    for kind in ("show", "list"):
        summary.append(
            SummaryRow(
                f"image-{kind} req/s ours/bare",
                fmt_ratio(ratio(ours[kind].req_per_s, bare[kind].req_per_s)),
                "info",
                f"{ours[kind].req_per_s:.0f} vs {bare[kind].req_per_s:.0f} req/s (ours waits for moto); server CPU "
                f"{_cell(ours[kind].server_cpu_ms_per_req)} vs {_cell(bare[kind].server_cpu_ms_per_req)} ms/req",
            )
        )
    data = {
        "requests": n,
        "glance_source": source,
        "rates": {who: {k: asdict(r) for k, r in by_kind.items()} for who, by_kind in rates.items()},
        "glance_baseline": GLANCE_BASELINE,
    }
    return PartResult("rps", [table], summary, data)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"
