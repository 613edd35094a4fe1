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
from typing import Any

from shared.domain.image import Image
from shared.domain.quota import LIMIT_NAMES, contribution
from shared.quota import USAGE_SK, QuotaLedger, quota_pk


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


def stored_counters(ledger: QuotaLedger) -> dict[str, dict[str, int]]:
    """Every project's counters (a Scan of the usage items)."""
    client = ledger._client()
    found: dict[str, dict[str, int]] = {}
    kwargs: dict[str, Any] = {
        "TableName": ledger.table_name,
        "FilterExpression": "sk = :sk AND begins_with(pk, :prefix)",
        "ExpressionAttributeValues": {":sk": {"S": USAGE_SK}, ":prefix": {"S": "QUOTA#"}},
    }
    while True:
        page = client.scan(**kwargs)
        for item in page.get("Items", []):
            project = item["pk"]["S"][len("QUOTA#") :]
            found[project] = {n: int(item[n]["N"]) if n in item else 0 for n in LIMIT_NAMES}
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def drifts(images: Iterable[Image], ledger: QuotaLedger) -> list[Drift]:
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


def repair(drift: Drift, ledger: QuotaLedger) -> bool:
    """Move the counters to the recount if they still hold what was read; False if they changed meanwhile."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    adds: list[str] = []
    conditions: list[str] = []
    for i, name in enumerate(LIMIT_NAMES):
        names[f"#c{i}"] = name
        read = drift.counters[name]
        values[f":r{i}"] = {"N": str(read)}
        conditions.append(f"(#c{i} = :r{i} OR (attribute_not_exists(#c{i}) AND :r{i} = :zero))")
        diff = drift.recounted[name] - read
        if diff:
            values[f":d{i}"] = {"N": str(diff)}
            adds.append(f"#c{i} :d{i}")
    if not adds:
        return True
    values[":zero"] = {"N": "0"}
    client = ledger._client()
    try:
        client.update_item(
            TableName=ledger.table_name,
            Key={"pk": {"S": quota_pk(drift.project)}, "sk": {"S": USAGE_SK}},
            UpdateExpression="ADD " + ", ".join(adds),
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Report (and with --repair, correct) counter drift; exit 1 while any drift remains."""
    parser = argparse.ArgumentParser(prog="python -m shared.quota.recount", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repair", action="store_true", help="correct the counters that differ")
    args = parser.parse_args(argv)
    from shared.bootstrap import Container
    from shared.config import get_settings
    from shared.data.dynamodb import DynamoImageRepository

    container = Container(get_settings())
    repo = container.image_repository
    assert isinstance(repo, DynamoImageRepository)
    remaining = 0
    for drift in drifts(repo.scan_images(), container.quota):
        fixed = repair(drift, container.quota) if args.repair else False
        remaining += 0 if fixed else 1
        report = {"project": drift.project, "counters": drift.counters, "recounted": drift.recounted}
        print(json.dumps({**report, "repaired": fixed}))
    return 1 if remaining else 0


if __name__ == "__main__":
    sys.exit(main())
