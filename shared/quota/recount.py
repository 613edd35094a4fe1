"""Recount quota usage from the images themselves, and optionally repair the counters.

    python -m shared.quota.recount            # report projects whose counters differ from a recount
    python -m shared.quota.recount --repair   # and correct them

Reads the whole table (one Scan): an operator tool, never used by requests. A repair adds each counter's
difference on the condition that the counter still holds the value read, so a change that lands meanwhile is
never lost; such a project is reported as changed and is left for the next run. Images written with
``import_images`` (seeding, migrations) are not counted until a repair.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pynamodb.exceptions import UpdateError

from shared.data.dynamodb.quota import DynamoQuotaLedger
from shared.data.dynamodb.table import QUOTA_PREFIX, USAGE_SK, quota_pk
from shared.domain.image import Image
from shared.domain.quota import LIMIT_NAMES, contribution


@dataclass(frozen=True)
class Drift:
    """One project's counters and what the images add up to."""

    project: str
    counters: dict[str, int]
    recounted: dict[str, int]


def recount(images: Iterable[Image]) -> dict[str, dict[str, int]]:
    """Usage per owner, summed over ``images``."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(LIMIT_NAMES, 0))
    for image in images:
        if image.owner is None:
            continue
        for name, value in contribution(image).items():
            totals[image.owner][name] += value
    return dict(totals)


def stored_counters(ledger: DynamoQuotaLedger) -> dict[str, dict[str, int]]:
    """Every project's counters (a Scan of the usage items)."""
    usage = ledger.models.usage
    found: dict[str, dict[str, int]] = {}
    for item in usage.scan((usage.sk == USAGE_SK) & usage.pk.startswith(QUOTA_PREFIX)):
        found[item.pk[len(QUOTA_PREFIX) :]] = {n: int(getattr(item, n) or 0) for n in LIMIT_NAMES}
    return found


def drifts(images: Iterable[Image], ledger: DynamoQuotaLedger) -> list[Drift]:
    """Projects whose counters differ from the recount."""
    counted = recount(images)
    stored = stored_counters(ledger)
    zero = dict.fromkeys(LIMIT_NAMES, 0)
    out = []
    for project in sorted(set(counted) | set(stored)):
        have, want = stored.get(project, zero), counted.get(project, zero)
        if have != want:
            out.append(Drift(project, have, want))
    return out


def repair(drift: Drift, ledger: DynamoQuotaLedger) -> bool:
    """Move the counters to the recount if they still hold what was read; False if they changed meanwhile."""
    usage = ledger.models.usage
    actions = []
    condition = None
    for name in LIMIT_NAMES:
        attr = getattr(usage, name)
        read = drift.counters[name]
        held = (attr == read) | attr.does_not_exist() if read == 0 else attr == read
        condition = held if condition is None else condition & held
        diff = drift.recounted[name] - read
        if diff:
            actions.append(attr.add(diff))
    if not actions:
        return True
    try:
        usage(quota_pk(drift.project), USAGE_SK).update(actions=actions, condition=condition)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def main(argv: list[str] | None = None) -> int:
    """Report (and with --repair, correct) counter drift; exit 1 while any drift remains."""
    parser = argparse.ArgumentParser(prog="python -m shared.quota.recount", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repair", action="store_true", help="correct the counters that differ")
    args = parser.parse_args(argv)
    from shared.bootstrap import Container
    from shared.config import get_settings
    from shared.data.dynamodb.images import DynamoImageRepository

    container = Container(get_settings())
    repo, ledger = container.image_repository, container.quota
    assert isinstance(repo, DynamoImageRepository) and isinstance(ledger, DynamoQuotaLedger)
    remaining = 0
    for drift in drifts(repo.scan_images(), ledger):
        fixed = repair(drift, ledger) if args.repair else False
        remaining += 0 if fixed else 1
        report = {"project": drift.project, "counters": drift.counters, "recounted": drift.recounted}
        print(json.dumps({**report, "repaired": fixed}))
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main())
