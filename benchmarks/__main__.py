"""``python -m benchmarks`` (``make bench``): every part in one run, one table per part, then a summary of ratios.

Measurement only: nothing here asserts on a time. Results also go to ``.bench/results-<UTC timestamp>.json``.
See benchmarks/README.md for what each part measures and how to read it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks._common import BENCH_DIR, REPO_ROOT, PartResult, SummaryRow, Table, loadavg

PARTS = ("coldstart", "rps", "hashing", "listcost", "uploads", "store_sync", "data_plane")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run (~1 min): fewer runs, smaller sizes")
    parser.add_argument("--only", help=f"comma-separated parts to run, from: {','.join(PARTS)} (default: all)")
    parser.add_argument("--sizes", help="listcost: image counts, comma-separated (default 1000,20000; quick 1000,5000)")
    parser.add_argument("--runs", type=int, help="coldstart: fresh processes per variant (default 10; quick 3)")
    parser.add_argument("--requests", type=int, help="rps: timed requests per kind (default 200; quick 50)")
    parser.add_argument("--list-reps", type=int, help="listcost: runs per request at the smallest size (default 3)")
    parser.add_argument("--size-mib", type=int, help="uploads: upload size in MiB (default 1024; quick 256)")
    parser.add_argument(
        "--copy-mib", type=int, help="store_sync: image size copied to Swift in MiB (default 1024; quick 256)"
    )
    parser.add_argument("--copy-reps", type=int, help="store_sync: runs of each of the copy pair (default 3; quick 1)")
    parser.add_argument("--json", type=Path, help="results file (default .bench/results-<UTC timestamp>.json)")
    return parser


def _parts(args: argparse.Namespace) -> list[str]:
    if not args.only:
        return list(PARTS)
    wanted = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(wanted) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part(s): {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    return [p for p in PARTS if p in wanted]


def _runners(args: argparse.Namespace) -> dict[str, Callable[[], PartResult]]:
    quick = args.quick
    sizes = [int(s) for s in (args.sizes or ("1000,5000" if quick else "1000,20000")).split(",") if s.strip()]
    runs = args.runs or (3 if quick else 10)
    requests = args.requests or (50 if quick else 200)
    list_reps = args.list_reps or (1 if quick else 3)
    size_mib = args.size_mib or (256 if quick else 1024)
    copy_mib = args.copy_mib or (256 if quick else 1024)
    copy_reps = args.copy_reps or (1 if quick else 3)

    def coldstart() -> PartResult:
        from benchmarks import coldstart as part

        return part.run(runs=runs)

    def rps() -> PartResult:
        from benchmarks import rps as part

        return part.run(n=requests, with_hashing=False)

    def hashing() -> PartResult:
        from benchmarks import rps as part

        return part.hashing_part()

    def listcost() -> PartResult:
        from benchmarks import listcost as part

        return part.run(sizes=sizes, reps=list_reps)

    def uploads() -> PartResult:
        from benchmarks import uploads as part

        return part.run(size_mib=size_mib, quick=quick)

    def data_plane() -> PartResult:
        from benchmarks import data_plane as part

        return part.run((256,) if quick else part.SIZES_MIB)

    def store_sync() -> PartResult:
        from benchmarks import store_sync as part

        rss_sizes = (64, 512) if quick else (256, 2048)
        return part.run(size_mib=copy_mib, reps=copy_reps, rss_sizes_mib=rss_sizes)

    return {
        "coldstart": coldstart,
        "rps": rps,
        "hashing": hashing,
        "listcost": listcost,
        "uploads": uploads,
        "store_sync": store_sync,
        "data_plane": data_plane,
    }


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
    except OSError:
        return "unknown"
    return rev.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")


def _summary_table(rows: list[SummaryRow]) -> Table:
    return Table(
        "Summary",
        ["ratio", "value", "target", "detail"],
        [[r.name, r.value, r.target, r.detail] for r in rows],
        ["Measurement only: targets are for reading, nothing fails. Details per part above; raw data in the JSON."],
        left=frozenset({0, 3}),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the selected parts and print their tables and the summary."""
    args = _parser().parse_args(argv)
    parts = _parts(args)
    runners = _runners(args)
    started = datetime.now(UTC)
    meta: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "quick": args.quick,
        "parts": parts,
        "git": _git_revision(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
    }
    print(
        f"benchmarks: {', '.join(parts)}{' (quick)' if args.quick else ''}; git {meta['git']}; Python "
        f"{meta['python']}; {meta['cpus']} CPUs; load average {loadavg():.2f}",
        flush=True,
    )
    results: dict[str, Any] = {}
    summary: list[SummaryRow] = []
    for name in parts:
        print(f"\n== {name} ...", flush=True)
        t0 = time.perf_counter()
        result = runners[name]()
        elapsed = time.perf_counter() - t0
        for table in result.tables:
            print(f"\n{table.render()}", flush=True)
        print(f"({name}: {elapsed:.0f} s, load average now {loadavg():.2f})", flush=True)
        summary += result.summary
        results[name] = {"elapsed_s": elapsed, "data": result.data, "summary": [vars(r) for r in result.summary]}
    meta["loadavg_end"] = os.getloadavg()
    meta["elapsed_s"] = (datetime.now(UTC) - started).total_seconds()
    print(f"\n{_summary_table(summary).render()}")
    print(
        f"load average {meta['loadavg_start'][0]:.2f} at start (other work; above ~1 on {meta['cpus']} CPUs makes "
        f"wall-clock figures noisy), {meta['loadavg_end'][0]:.2f} at end (includes this run's own client + moto); "
        f"total {meta['elapsed_s']:.0f} s"
    )
    out = args.json or BENCH_DIR / f"results-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
