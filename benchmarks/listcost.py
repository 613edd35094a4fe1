"""List cost: DynamoDB calls and items read per ``GET /v2/images``, at 1 000 and at 20 000 images.

The repository promises that a list request costs the same whatever the table size (``shared/data/base.py``):
it walks only the partitions the caller may see, one index page at a time, within a fixed budget. This part
loads a moto server with a mixed population, runs the list requests the API runs, and counts every DynamoDB
call and every item read with a botocore ``after-call`` hook on the repository's own clients.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from benchmarks._common import (
    PartResult,
    ServerProcess,
    SummaryRow,
    Table,
    create_images_table,
    fmt_ratio,
    median,
    ratio,
    use_fake_aws_env,
)

if TYPE_CHECKING:
    from shared.data.dynamodb.images import DynamoImageRepository
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.domain.listing import Page

TABLE_NAME = "bench-listcost"
PROJECTS = tuple(f"{n:02d}{'0' * 30}" for n in range(10))
ADMIN_PROJECT = "ad" + "0" * 30
DISK_FORMATS = ("qcow2", "raw", "vmdk", "iso")
DISTROS = ("ubuntu", "debian", "fedora", "centos", "cirros")
# Images written through repo.add() (one TransactWriteItems each); the rest use batch writes of the same items.
REAL_ADDS = 50
LOAD_THREADS = 4
LOAD_CHUNK = 500
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


# -- the population -------------------------------------------------------------------------------


def make_image(i: int) -> Image:
    """Image number ``i`` of the benchmark population.

    Every attribute repeats with a period dividing 1 000, so the newest images of a 20 000-image table look like
    the newest of a 1 000-image one and default-order pages are comparable: 10 projects, 5 % public, 5 %
    community, 5 % shared (each spread over the projects), 2 % hidden, a quarter qcow2, a tenth still queued.
    Names are hashes, so name order is unrelated to creation order.
    """
    from shared.domain.image import Image, Visibility
    from shared.domain.status import ImageStatus

    visibility = {0: Visibility.PUBLIC, 1: Visibility.COMMUNITY, 2: Visibility.SHARED}.get(i % 20, Visibility.PRIVATE)
    image = Image.new(
        # Shifted every 20 images so that public, community and shared images are spread over all projects.
        owner=PROJECTS[(i + i // 20) % len(PROJECTS)],
        image_id=_uuid(i),
        extra_properties={"os_distro": DISTROS[i % len(DISTROS)], "hw_disk_bus": "virtio"},
        name=f"image-{hashlib.sha1(str(i).encode()).hexdigest()[:12]}",
        visibility=visibility,
        os_hidden=i % 50 == 7,
        disk_format=DISK_FORMATS[(i % 25) % len(DISK_FORMATS)],
        container_format="bare",
        min_disk=i % 3,
    )
    if i % 10 != 9:
        image.status = ImageStatus.ACTIVE
        image.size = image.virtual_size = 1024 * 1024 * (1 + i % 700)
        image.checksum = hashlib.md5(str(i).encode()).hexdigest()
        image.os_hash_algo = "sha512"
        image.os_hash_value = hashlib.sha512(str(i).encode()).hexdigest()
    image.created_at = image.updated_at = EPOCH + timedelta(seconds=i)
    return image


def _uuid(i: int) -> str:
    h = hashlib.md5(f"bench-image-{i}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def load(repo: DynamoImageRepository, start: int, stop: int) -> float:
    """Store images ``start`` .. ``stop - 1``; returns seconds taken.

    The first ``REAL_ADDS`` go through ``repo.add`` (a transaction per image). The rest are the same items written
    by ``repo.import_images`` (batched writes) from a few threads, which is ~20x faster on moto.
    """
    began = time.perf_counter()
    real = range(start, min(stop, REAL_ADDS))
    for i in real:
        repo.add(make_image(i))
    first = max(start, REAL_ADDS)
    chunks = [range(lo, min(lo + LOAD_CHUNK, stop)) for lo in range(first, stop, LOAD_CHUNK)]

    def write(chunk: range) -> None:
        repo.import_images(make_image(i) for i in chunk)

    with ThreadPoolExecutor(LOAD_THREADS) as pool:
        list(pool.map(write, chunks))
    return time.perf_counter() - began


def check_load(repo: DynamoImageRepository, n: int) -> None:
    """A batch-loaded image reads back equal to the domain object it came from (the fast path is faithful)."""
    for i in (REAL_ADDS, n - 1):
        if i >= n:
            continue
        expected = replace(make_image(i), version=1)
        got = repo.get(expected.id)
        if got != expected:
            raise AssertionError(f"image {i} read back differently:\n{got}\n!=\n{expected}")


# -- counting -------------------------------------------------------------------------------------


@dataclass
class CallCounter:
    """A botocore ``after-call.dynamodb`` handler: operations, items read, consumed capacity."""

    calls: Counter[str] = field(default_factory=Counter)
    items: int = 0
    capacity: float = 0.0
    capacity_reported: bool = False

    def __call__(self, http_response: Any = None, parsed: Any = None, model: Any = None, **_: Any) -> None:
        op = model.name if model is not None else "?"
        parsed = parsed or {}
        self.calls[op] += 1
        if op in ("Query", "Scan"):
            self.items += int(parsed.get("ScannedCount", parsed.get("Count", 0)))
        elif op == "BatchGetItem":
            self.items += sum(len(v) for v in parsed.get("Responses", {}).values())
        elif op == "GetItem":
            self.items += 1 if "Item" in parsed else 0
        consumed = parsed.get("ConsumedCapacity")
        if consumed:
            self.capacity_reported = True
            for entry in consumed if isinstance(consumed, list) else [consumed]:
                self.capacity += float(entry.get("CapacityUnits", 0.0))

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.calls.clear()
        self.items = 0
        self.capacity = 0.0
        self.capacity_reported = False

    @property
    def total_calls(self) -> int:
        """Number of DynamoDB calls."""
        return sum(self.calls.values())

    def ops(self) -> str:
        """``Query×2 BatchGetItem×1`` style breakdown."""
        return " ".join(f"{op}x{n}" for op, n in sorted(self.calls.items()))


def hook(repo: DynamoImageRepository) -> CallCounter:
    """Register one counter on every distinct botocore client the repository uses."""
    counter = CallCounter()
    seen: set[int] = set()
    for client in repo.botocore_clients():
        if id(client) not in seen:
            seen.add(id(client))
            client.meta.events.register("after-call.dynamodb", counter)
    return counter


# -- the list requests ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ListRequest:
    """One ``GET /v2/images`` as the API would run it."""

    label: str
    ctx: RequestContext
    params: Sequence[tuple[str, str]]
    # Run the request before this one first and pass its next marker.
    second_page: bool = False


def _contexts() -> tuple[RequestContext, RequestContext]:
    from shared.domain.context import RequestContext

    member = RequestContext("bench", PROJECTS[0], "user0", frozenset({"member", "reader"}))
    admin = RequestContext("bench", ADMIN_PROJECT, "admin", frozenset({"admin", "member", "reader"}))
    return member, admin


def list_requests() -> list[ListRequest]:
    """Default list (member, admin), a filtered list, sort by name, and the second page via marker."""
    member, admin = _contexts()
    return [
        ListRequest("default, member", member, []),
        ListRequest("default, admin", admin, []),
        ListRequest("disk_format=qcow2, member", member, [("disk_format", "qcow2")]),
        ListRequest("disk_format=qcow2, admin", admin, [("disk_format", "qcow2")]),
        ListRequest("sort=name:asc, member", member, [("sort", "name:asc")]),
        ListRequest("2nd page (marker), member", member, [], second_page=True),
    ]


def run_list(repo: DynamoImageRepository, request: ListRequest, marker: str | None) -> Page[Image]:
    """What ``ImagesController.index`` does: parse, ask the policy whether the caller is an admin, read the marker
    image, list."""
    from shared.config import Settings
    from shared.domain.listing import ImageQuery, parse_filters, parse_sort
    from shared.policy import Policies

    settings = Settings()
    params = list(request.params)
    admin = Policies.for_settings(settings).for_context(request.ctx).is_admin
    query = ImageQuery(
        ctx=request.ctx,
        admin=admin,
        filters=parse_filters(params),
        sort=parse_sort(params),
        limit=settings.limit_param_default,
        budget=settings.list_scan_budget,
        marker=repo.get(marker) if marker is not None else None,
    )
    return repo.list(query)


@dataclass
class Measured:
    """Counts (from the first repetition) and latencies (all repetitions) of one request at one size."""

    calls: int
    items: int
    ops: str
    returned: int
    capacity: float | None
    latencies_s: list[float]
    moto_cpu_s: list[float]
    counts_stable: bool


def measure(
    repo: DynamoImageRepository, counter: CallCounter, request: ListRequest, reps: int, moto_cpu: Callable[[], float]
) -> Measured:
    """Run ``request`` ``reps`` times; count calls and items of each run."""
    marker = None
    if request.second_page:
        marker = run_list(repo, replace(request, second_page=False), None).next_marker
    seen: list[tuple[int, int]] = []
    latencies: list[float] = []
    cpu: list[float] = []
    first: tuple[int, int, str, int, float | None] | None = None
    for _ in range(reps):
        counter.reset()
        c0 = moto_cpu()
        t0 = time.perf_counter()
        page = run_list(repo, request, marker)
        latencies.append(time.perf_counter() - t0)
        cpu.append(moto_cpu() - c0)
        seen.append((counter.total_calls, counter.items))
        if first is None:
            capacity = counter.capacity if counter.capacity_reported else None
            first = (counter.total_calls, counter.items, counter.ops(), len(page.items), capacity)
    assert first is not None
    return Measured(first[0], first[1], first[2], first[3], first[4], latencies, cpu, len(set(seen)) == 1)


# -- the part -------------------------------------------------------------------------------------


def run(sizes: Sequence[int] = (1000, 20000), reps: int = 3, large_reps: int = 1) -> PartResult:
    """Load each size in turn (incrementally) and measure every list request at it: ``reps`` times at the smallest
    size, ``large_reps`` times at the others (counts do not vary between runs; moto's latency grows with size)."""
    from shared.data.dynamodb.images import DynamoImageRepository
    from shared.data.dynamodb.table import table_models
    from shared.resources import IMAGES_TABLE

    use_fake_aws_env()
    sizes = sorted(sizes)
    requests = list_requests()
    results: dict[int, dict[str, Measured]] = {}
    loads: dict[int, float] = {}
    with ServerProcess("moto", name="listcost-moto") as moto:
        create_images_table(moto.url, TABLE_NAME)
        repo = DynamoImageRepository(table_models(IMAGES_TABLE, TABLE_NAME, moto.url, "us-east-1"))
        counter = hook(repo)
        loaded = 0
        for size in sizes:
            print(f"  listcost: loading images {loaded}..{size - 1} ...", flush=True)
            loads[size] = load(repo, loaded, size)
            check_load(repo, size)
            loaded = size
            n = reps if size == sizes[0] else large_reps
            results[size] = {r.label: measure(repo, counter, r, n, moto.cpu_seconds) for r in requests}
    return _report(sizes, requests, results, loads, (reps, large_reps))


def _report(
    sizes: Sequence[int],
    requests: Sequence[ListRequest],
    results: dict[int, dict[str, Measured]],
    loads: dict[int, float],
    reps: tuple[int, int],
) -> PartResult:
    small, big = sizes[0], sizes[-1]
    s_lbl, b_lbl = _k(small), _k(big)
    table = Table(
        f"List cost per GET /v2/images (limit 25) at {s_lbl} vs {b_lbl} images: DynamoDB calls and items read",
        [
            "request",
            f"calls {s_lbl}",
            f"calls {b_lbl}",
            "ratio",
            f"items {s_lbl}",
            f"items {b_lbl}",
            "ratio",
            f"calls at {b_lbl}",
            "imgs",
            f"ms {s_lbl}",
            f"ms {b_lbl}",
            f"moto CPU ms {b_lbl}",
        ],
        left=frozenset({0, 7}),
    )
    worst_calls = worst_items = 0.0
    data: dict[str, Any] = {"sizes": list(sizes), "reps": list(reps), "load_s": loads, "requests": {}}
    capacity_seen = False
    for request in requests:
        a, b = results[small][request.label], results[big][request.label]
        rc, ri = ratio(b.calls, a.calls), ratio(b.items, a.items)
        worst_calls = max(worst_calls, rc or 0.0)
        worst_items = max(worst_items, ri or 0.0)
        capacity_seen = capacity_seen or a.capacity is not None
        table.rows.append(
            [
                request.label,
                str(a.calls),
                str(b.calls),
                fmt_ratio(rc),
                str(a.items),
                str(b.items),
                fmt_ratio(ri),
                b.ops,
                str(b.returned),
                f"{median(a.latencies_s) * 1000:.0f}",
                f"{median(b.latencies_s) * 1000:.0f}",
                f"{median(b.moto_cpu_s) * 1000:.0f}",
            ]
        )
        data["requests"][request.label] = {
            str(size): {
                "calls": m.calls,
                "items_read": m.items,
                "ops": m.ops,
                "images_returned": m.returned,
                "consumed_capacity": m.capacity,
                "latency_ms": [round(x * 1000, 2) for x in m.latencies_s],
                "moto_cpu_ms": [round(x * 1000, 2) for x in m.moto_cpu_s],
                "counts_stable_across_reps": m.counts_stable,
            }
            for size in sizes
            for m in (results[size][request.label],)
        }
        if not (a.counts_stable and b.counts_stable):
            table.notes.append(f"'{request.label}': call/item counts varied between repetitions (first run shown)")
    load_rates = ", ".join(f"{_k(s)}: {t:.1f} s" for s, t in loads.items())
    table.notes += [
        "calls = DynamoDB API calls (counted by a botocore after-call hook on the repository's clients); items = "
        "Query ScannedCount + BatchGetItem items returned + GetItem hits. Target: ratio 1.00x (cost independent "
        "of table size).",
        f"ms = median wall time of {reps[0]} run(s) at {s_lbl}, {reps[1]} at {b_lbl}; for information only: moto's "
        "Query scans the whole table "
        "(O(table size), emulators.md §1), so moto latency and moto CPU grow with the table; DynamoDB's do not.",
        "ConsumedCapacity: " + ("reported by moto (in the JSON)." if capacity_seen else "not returned by moto."),
        f"load time (incremental; {REAL_ADDS} via repo.add, the rest batch-written): {load_rates}.",
    ]
    summary = [
        SummaryRow(
            f"list cost calls {b_lbl}/{s_lbl}",
            fmt_ratio(worst_calls),
            "1.00x",
            "worst request kind (calls per list request)",
        ),
        SummaryRow(
            f"list cost items {b_lbl}/{s_lbl}",
            fmt_ratio(worst_items),
            "1.00x",
            "worst request kind (items read per list request)",
        ),
    ]
    return PartResult("listcost", [table], summary, data)


def _k(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)
