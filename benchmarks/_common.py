"""Helpers every benchmark part shares: result tables, child-process servers, CPU accounting, the images table.

Standard library only at import time, so a part can be imported without paying for boto3 or FastAPI.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / ".bench"
HOST = "127.0.0.1"
REGION = "us-east-1"
FAKE_CREDENTIALS = "testing"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Environment variables that must never leak into a benchmark child: real credentials, a Lambda marker (settings
# refuse trusted-headers when AWS_LAMBDA_FUNCTION_NAME is set), or the caller's own SGLANCE_* configuration.
_DROPPED_ENV_PREFIXES = ("SGLANCE_", "AWS_")


# -- result tables --------------------------------------------------------------------------------


@dataclass
class Table:
    """One printed table: a title, column headers, rows of already formatted cells, and notes below it."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Columns aligned left (text); the others are numbers, aligned right.
    left: frozenset[int] = frozenset({0})

    def render(self) -> str:
        """The table as aligned plain text."""
        cells = [self.headers, *self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.headers))]

        def line(row: Sequence[str]) -> str:
            parts = [
                c.ljust(w) if i in self.left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ]
            return "  ".join(parts).rstrip()

        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        out = [self.title, rule, line(self.headers), rule, *(line(r) for r in self.rows), rule]
        out.extend(f"  {note}" for note in self.notes)
        return "\n".join(out)


@dataclass
class SummaryRow:
    """One line of the final summary: a ratio (or a figure) with its target and where it comes from."""

    name: str
    value: str
    target: str
    detail: str


@dataclass
class PartResult:
    """What one part hands back: printed tables, summary lines, and raw data for the JSON file."""

    name: str
    tables: list[Table] = field(default_factory=list)
    summary: list[SummaryRow] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


# -- numbers --------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    """The median (0.0 for no values)."""
    return statistics.median(values) if values else 0.0


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile, the way the Glance baseline script computes p95."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[int(fraction * (len(ordered) - 1))]


def ms(seconds: float) -> str:
    """Seconds as a millisecond cell."""
    return f"{seconds * 1000:.1f}"


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is zero."""
    return numerator / denominator if denominator else None


def fmt_ratio(value: float | None) -> str:
    """A ratio cell such as ``1.42x`` (``n/a`` when unknown)."""
    return "n/a" if value is None else f"{value:.2f}x"


# -- processes ------------------------------------------------------------------------------------


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a benchmark child: fake AWS credentials, no Lambda marker, no SGLANCE_* leaks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV_PREFIXES)}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS,
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            "SGLANCE_AWS_REGION": REGION,
            "SGLANCE_AUTH_MODE": "trusted-headers",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    env.update(extra or {})
    return env


def use_fake_aws_env() -> None:
    """Make this process's own boto3/pynamodb clients use fake credentials (nothing can reach a real account)."""
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[name]
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS, "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": REGION}
    )


def proc_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds a live process has used so far (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_of_processes(cmdline_prefixes: Sequence[str]) -> float:
    """CPU seconds used so far by every live process whose command line starts with one of the prefixes."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            if any(cmd.startswith(p) for p in cmdline_prefixes):
                total += proc_cpu_seconds(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return total


class ServerProcess:
    """A server from ``benchmarks.servers`` in its own process, so its CPU time can be read on its own.

    Use as a context manager; ``url`` is known once it is entered. Output goes to ``.bench/<name>.log``.
    """

    def __init__(self, kind: str, *args: str, env: Mapping[str, str] | None = None, name: str | None = None) -> None:
        self.kind = kind
        self.name = name or kind
        self._args = args
        self._env = child_env(env)
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-")
        self.url = ""

    @property
    def pid(self) -> int:
        """Process id of the server."""
        assert self._proc is not None, "server not started"
        return self._proc.pid

    def cpu_seconds(self) -> float:
        """CPU seconds the server has used so far."""
        return proc_cpu_seconds(self.pid)

    def start(self, timeout_s: float = 30.0) -> ServerProcess:
        """Start the process and wait until it has written the port it listens on."""
        BENCH_DIR.mkdir(exist_ok=True)
        port_file = Path(self._tmp.name) / "port"
        log = (BENCH_DIR / f"{self.name}.log").open("wb")
        cmd = [sys.executable, "-m", "benchmarks.servers", self.kind, "--port-file", str(port_file), *self._args]
        self._proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout_s
        while not port_file.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} server did not start; see {BENCH_DIR / (self.name + '.log')}")
            time.sleep(0.02)
        self.url = f"http://{HOST}:{int(port_file.read_text())}"
        return self

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._tmp.cleanup()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def http_json(url: str, method: str = "GET", body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
    """One JSON request with the standard library (for setup calls, not for timed loops)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


# -- the images table -----------------------------------------------------------------------------


def create_images_table(endpoint: str, table_name: str) -> None:
    """Create the images table on the emulator from ``shared.resources.IMAGES_TABLE`` (keys-only string GSIs)."""
    import boto3

    from shared.resources import IMAGES_TABLE

    table = IMAGES_TABLE
    key_attrs = {table.partition_attr, table.sort_attr}
    for index in table.indexes:
        key_attrs.update((index.partition_attr, index.sort_attr))
    client = boto3.session.Session().client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    try:
        client.create_table(
            TableName=table_name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in sorted(key_attrs)],
            KeySchema=[
                {"AttributeName": table.partition_attr, "KeyType": "HASH"},
                {"AttributeName": table.sort_attr, "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_attr, "KeyType": "HASH"},
                        {"AttributeName": index.sort_attr, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
                for index in table.indexes
            ],
        )
        client.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    finally:
        client.close()


def loadavg() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]
