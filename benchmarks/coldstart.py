"""Cold start: import of the Lambda handler module plus its first request, in fresh interpreters.

Each run is a new ``python -c`` process that imports only ``time`` and ``sys`` before starting the clock, then
imports the handler module and sends it one API Gateway HTTP API (payload 2.0) event, as the Lambda runtime
does on a cold start. Variants:

- ``ours /versions``: ``functions.api.handler.handler`` with ``GET /versions`` (touches no AWS service);
- ``ours /v2/images/{id}``: the same handler with ``GET /v2/images/<uuid>`` against a moto server holding that
  image (so the first request also builds the DynamoDB client and makes one GetItem);
- ``bare /versions``: ``Mangum(FastAPI())`` with one route, same event.

Runs of the variants are interleaved, so a burst of load on the machine hits all of them alike.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks._common import (
    REPO_ROOT,
    PartResult,
    ServerProcess,
    SummaryRow,
    Table,
    child_env,
    create_images_table,
    fmt_ratio,
    median,
    ratio,
    use_fake_aws_env,
)

TABLE_NAME = "bench-coldstart"
RESULT_PREFIX = "BENCH-RESULT "
TARGET_RATIO = 1.5
SNAPSTART_LABEL = "ours GET /v2/images/{id}, SnapStart init"

# Runs in the child. Only time and sys are imported before the clock starts; the event and the context are
# built after the import is timed and before the request is, so neither timer includes them.
_CHILD = r"""
import time, sys
t0 = time.perf_counter()
IMPORT
t_init = time.perf_counter()
INIT
t1 = time.perf_counter()
import json
from types import SimpleNamespace
path = sys.argv[1]
event = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": path,
    "rawQueryString": "",
    "headers": {
        "accept": "application/json",
        "accept-encoding": "gzip, deflate",
        "content-length": "0",
        "host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "user-agent": "openstacksdk/4.22.0 keystoneauth1/5.18.1 python-requests/2.34.2 CPython/3.11.7",
        "x-amzn-trace-id": "Root=1-674990f0-0123456789abcdef01234567",
        "x-forwarded-for": "192.0.2.10",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        "x-openstack-request-id": "req-6c1d1a52-8b3e-4c1e-9a57-0f3c7d9e2b11",
    },
    "requestContext": {
        "accountId": "123456789012",
        "apiId": "abcdef1234",
        "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "domainPrefix": "abcdef1234",
        "http": {
            "method": "GET",
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "192.0.2.10",
            "userAgent": "openstacksdk/4.22.0 keystoneauth1/5.18.1 python-requests/2.34.2 CPython/3.11.7",
        },
        "requestId": "CZtF3jL2IAMEbXw=",
        "routeKey": "$default",
        "stage": "$default",
        "time": "29/Nov/2026:08:00:00 +0000",
        "timeEpoch": 1795852800000,
    },
    "isBase64Encoded": False,
}
context = SimpleNamespace(
    function_name="sglance-api",
    function_version="$LATEST",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:sglance-api",
    memory_limit_in_mb=1024,
    aws_request_id="5f1a2b3c-4d5e-6f70-8192-a3b4c5d6e7f8",
    log_group_name="/aws/lambda/sglance-api",
    log_stream_name="2026/11/29/[$LATEST]0123456789abcdef",
    get_remaining_time_in_millis=lambda: 29000,
)
t2 = time.perf_counter()
response = HANDLER(event, context)
t3 = time.perf_counter()
print("RESULT_PREFIX" + json.dumps({
    "import_s": t1 - t0, "modules_s": t_init - t0, "init_s": t1 - t_init,
    "first_request_s": t3 - t2, "status": response["statusCode"],
    "body_bytes": len(response.get("body") or ""),
}), flush=True)
"""

# Import = the modules handler.py imports; init = handler.py's own body (the app built, its warm-up).
_OURS_IMPORT = """import asyncio, gc, warnings
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
import functions.api.app, shared.snapstart, shared.observability"""
_OURS_INIT = "import functions.api.handler as _h"
_OURS_HANDLER = "_h.handler"
_BARE_IMPORT = """from fastapi import FastAPI
from mangum import Mangum"""
_BARE_INIT = """_app = FastAPI()
@_app.get("/versions")
def _versions():
    return {"versions": [{"id": "v2.5", "status": "CURRENT", "links": [{"rel": "self", "href": "https://x/v2/"}]}]}
_h = Mangum(_app, lifespan="off")"""
_BARE_HANDLER = "_h"


def child_code(import_block: str, init_block: str, handler: str) -> str:
    """The child program for one variant."""
    code = _CHILD.replace("IMPORT", import_block).replace("INIT", init_block).replace("HANDLER", handler)
    return code.replace("RESULT_PREFIX", RESULT_PREFIX)


@dataclass
class Variant:
    """One kind of cold start."""

    label: str
    code: str
    path: str
    env: dict[str, str]


@dataclass
class Run:
    """One cold start, seen from inside the child (import, first request) and outside (process wall time)."""

    import_s: float
    first_request_s: float
    process_s: float
    status: int
    modules_s: float = 0.0
    init_s: float = 0.0

    @property
    def total_s(self) -> float:
        """Import plus first request."""
        return self.import_s + self.first_request_s


def run_child(variant: Variant) -> Run:
    """One fresh interpreter."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", variant.code, variant.path],
        cwd=REPO_ROOT,
        env=child_env(variant.env),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    process_s = time.perf_counter() - began
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"cold start child '{variant.label}' failed:\n{done.stdout}\n{done.stderr}")
    result = json.loads(lines[-1][len(RESULT_PREFIX) :])
    return Run(
        result["import_s"],
        result["first_request_s"],
        process_s,
        result["status"],
        result["modules_s"],
        result["init_s"],
    )


def _importtime(code: str) -> list[tuple[int, int, str]]:
    """``(self µs, cumulative µs, module)`` of every module ``python -X importtime -c code`` imports."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=REPO_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    rows: list[tuple[int, int, str]] = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((int(match[1]), int(match[2]), match[4]))
    return rows


def _by_package(rows: list[tuple[int, int, str]], top: int) -> list[dict[str, Any]]:
    totals: dict[str, int] = defaultdict(int)
    for self_us, _, name in rows:
        totals[name.split(".")[0]] += self_us
    return [{"package": p, "self_ms": us / 1000} for p, us in sorted(totals.items(), key=lambda kv: -kv[1])[:top]]


def import_profile(top: int = 10) -> dict[str, Any]:
    """Import profile of ``functions.api.handler``: top modules by cumulative time, self time by top-level package,
    and the modules the bare handler does not import (what makes ours slower)."""
    ours = _importtime("import functions.api.handler")
    bare_names = {name for _, _, name in _importtime("import fastapi, mangum")}
    extra = [row for row in ours if row[2] not in bare_names]
    cumulative = sorted(ours, key=lambda r: r[1], reverse=True)[:top]
    return {
        "top_cumulative": [{"module": n, "cumulative_ms": c / 1000, "self_ms": s / 1000} for s, c, n in cumulative],
        "self_by_package": _by_package(ours, top),
        "total_ms": sum(s for s, _, _ in ours) / 1000,
        "not_in_bare": {"modules": len(extra), "self_ms": sum(s for s, _, _ in extra) / 1000},
        "not_in_bare_by_package": _by_package(extra, top),
    }


def _show_variant(moto_url: str) -> tuple[Variant, str]:
    """Provision the table and one image on moto; the variant that shows it."""
    from shared.data.dynamodb.images import DynamoImageRepository
    from shared.data.dynamodb.table import table_models
    from shared.domain.image import Image
    from shared.resources import IMAGES_TABLE

    create_images_table(moto_url, TABLE_NAME)
    repo = DynamoImageRepository(table_models(IMAGES_TABLE, TABLE_NAME, moto_url, "us-east-1"))
    image = repo.add(Image.new(owner="0f1c1a1d3b7e4c51a0e1b3b0c0ffee01", name="cold", disk_format="raw"))
    env = {"SGLANCE_AWS_ENDPOINT_URL": moto_url, "SGLANCE_TABLE_NAME": TABLE_NAME}
    code = child_code(_OURS_IMPORT, _OURS_INIT, _OURS_HANDLER)
    variant = Variant("ours GET /v2/images/{id}", code, f"/v2/images/{image.id}", env)
    return variant, image.id


def _snapstart_variant(show: Variant) -> Variant:
    """The show variant with the init Lambda runs for a SnapStart snapshot (``Container.warm()``)."""
    env = {**show.env, "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
    return Variant(SNAPSTART_LABEL, show.code, show.path, env)


def run(runs: int = 10, with_show: bool = True) -> PartResult:
    """``runs`` cold starts of each variant, interleaved, then the import profile."""
    use_fake_aws_env()
    variants = [
        Variant("ours GET /versions", child_code(_OURS_IMPORT, _OURS_INIT, _OURS_HANDLER), "/versions", {}),
        Variant("bare GET /versions", child_code(_BARE_IMPORT, _BARE_INIT, _BARE_HANDLER), "/versions", {}),
    ]
    results: dict[str, list[Run]] = defaultdict(list)
    moto = ServerProcess("moto", name="coldstart-moto") if with_show else None
    try:
        if moto is not None:
            moto.start()
            show = _show_variant(moto.url)[0]
            variants += [show, _snapstart_variant(show)]
        for variant in variants:  # one unrecorded run each: fills the page cache and checks the variant works
            run_child(variant)
        for _ in range(runs):
            for variant in variants:
                results[variant.label].append(run_child(variant))
    finally:
        if moto is not None:
            moto.stop()
    profile = import_profile()
    return _report(variants, results, profile, runs)


def _stats(values: list[float]) -> str:
    return f"{median(values) * 1000:.0f} ({min(values) * 1000:.0f}-{max(values) * 1000:.0f})"


def _report(variants: list[Variant], results: dict[str, list[Run]], profile: dict[str, Any], runs: int) -> PartResult:
    table = Table(
        f"Cold start: fresh interpreter, import + first request through the Lambda handler; median (min-max) of {runs}",
        [
            "variant",
            "modules ms",
            "init ms",
            "import+init ms",
            "1st request ms",
            "total ms",
            "process wall ms",
            "status",
            "ratio to bare",
        ],
    )
    bare_total = median([r.total_s for r in results["bare GET /versions"]])
    ratios: dict[str, float | None] = {}
    for variant in variants:
        rs = results[variant.label]
        total = median([r.total_s for r in rs])
        ratios[variant.label] = ratio(total, bare_total)
        table.rows.append(
            [
                variant.label,
                _stats([r.modules_s for r in rs]),
                _stats([r.init_s for r in rs]),
                _stats([r.import_s for r in rs]),
                _stats([r.first_request_s for r in rs]),
                _stats([r.total_s for r in rs]),
                _stats([r.process_s for r in rs]),
                ",".join(sorted({str(r.status) for r in rs})),
                fmt_ratio(ratios[variant.label]),
            ]
        )
    table.notes += [
        f"target: ours/bare total <= {TARGET_RATIO:.1f}x for GET /versions. bare = Mangum(FastAPI()) with one route.",
        "process wall adds interpreter start-up and exit (~same for all variants). Bytecode caches (.pyc) are warm; "
        "a Lambda package shipped without .pyc compiles every module on each cold start.",
        "the /v2/images/{id} first request includes building the botocore DynamoDB client and one GetItem on moto.",
    ]
    imports = Table(
        "Where the import time of functions.api.handler goes (python -X importtime, one run)",
        ["module (top 10 by cumulative)", "cumulative ms", "self ms"],
        [[m["module"], f"{m['cumulative_ms']:.1f}", f"{m['self_ms']:.1f}"] for m in profile["top_cumulative"]],
    )
    imports.notes.append(
        "self time by top-level package: "
        + ", ".join(f"{p['package']} {p['self_ms']:.0f} ms" for p in profile["self_by_package"])
        + f" (sum of all modules {profile['total_ms']:.0f} ms; -X importtime inflates times somewhat)."
    )
    extra = profile["not_in_bare"]
    imports.notes.append(
        f"imported by ours but not by `import fastapi, mangum`: {extra['modules']} modules, {extra['self_ms']:.0f} ms "
        "self time; by package: "
        + ", ".join(f"{p['package']} {p['self_ms']:.0f} ms" for p in profile["not_in_bare_by_package"])
        + "."
    )
    summary = [
        SummaryRow(
            "cold start ours/bare (GET /versions)",
            fmt_ratio(ratios["ours GET /versions"]),
            f"<= {TARGET_RATIO:.1f}x",
            f"import + 1st request, median of {runs}",
        )
    ]
    show_label = "ours GET /v2/images/{id}"
    if show_label in ratios:
        summary.append(
            SummaryRow(
                "cold start ours/bare (GET /v2/images/{id})",
                fmt_ratio(ratios[show_label]),
                "info",
                "incl. DynamoDB client creation + 1 GetItem on moto",
            )  # fmt: skip
        )
    if SNAPSTART_LABEL in ratios:
        first = median([r.first_request_s for r in results[SNAPSTART_LABEL]])
        bare_first = median([r.first_request_s for r in results["bare GET /versions"]])
        summary.append(
            SummaryRow(
                "1st request after SnapStart init ours/bare (GET /v2/images/{id})",
                fmt_ratio(ratio(first, bare_first)),
                "info",
                f"{first * 1000:.0f} vs {bare_first * 1000:.0f} ms: what SnapStart leaves (init is in the snapshot)",
            )
        )
    data = {
        "runs": runs,
        "variants": {label: [asdict(r) | {"total_s": r.total_s} for r in rs] for label, rs in results.items()},
        "import_profile": profile,
    }
    return PartResult("coldstart", [table, imports], summary, data)
