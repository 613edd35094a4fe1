"""The Quota box: Glance's four unified limits, enforced as hard limits with counters in DynamoDB.

Per project, the images table holds ``QUOTA#<project>`` / ``USAGE`` (the counters: bytes and counts) and, when an
admin set any, ``QUOTA#<project>`` / ``LIMITS`` (per-project overrides of the ``SGLANCE_LIMIT_*`` defaults).

``QuotaLedger.operations`` turns usage changes into low-level ``Update`` items that the image repository adds to
the same ``TransactWriteItems`` as the image change they count: ``ADD`` the deltas, on the condition that every
increased counter stays within its limit. So a change and its accounting commit together or not at all, and 50
concurrent creates against a limit of 10 leave exactly 10 (docs/quotas.md). Other writers (store_sync, the
finaliser) go through the same repository, so they are counted the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.domain.errors import InvalidInputError, LimitExceededError
from shared.domain.image import Image, LocationStatus
from shared.domain.quota import LIMIT_NAMES, SIZE_LIMITS, UNLIMITED, MiB, QuotaExceededError, UsageChange, exceeded

USAGE_SK = "USAGE"
LIMITS_SK = "LIMITS"


def quota_pk(project: str) -> str:
    """Partition key of one project's quota items."""
    return f"QUOTA#{project}"


def _key(project: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": quota_pk(project)}, "sk": {"S": sk}}


@dataclass(frozen=True)
class ProjectUsage:
    """One project's limits and usage, in the units of the limits (MiB for sizes)."""

    limits: dict[str, int]
    usage: dict[str, int]

    def body(self) -> dict[str, dict[str, int]]:
        """Glance's ``GET /v2/info/usage`` object: ``{name: {"limit", "usage"}}``."""
        return {name: {"limit": self.limits[name], "usage": self.usage[name]} for name in LIMIT_NAMES}


@dataclass
class QuotaLedger:
    """Reads limits and usage, and builds the counter updates of a transaction (client made on first use)."""

    table_name: str
    defaults: Mapping[str, int]
    region: str = "us-east-1"
    endpoint_url: str | None = None
    client: Any = None
    # Glance's image_location_quota: most locations one image may have.
    max_locations: int = 10
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _client(self) -> Any:
        with self._lock:
            if self.client is None:
                import boto3

                self.client = boto3.client("dynamodb", region_name=self.region, endpoint_url=self.endpoint_url)
            return self.client

    # -- reads --------------------------------------------------------------------------------------

    def overrides(self, project: str) -> dict[str, int]:
        """The limits an admin set for ``project`` (only those set)."""
        item = self._client().get_item(TableName=self.table_name, Key=_key(project, LIMITS_SK), ConsistentRead=True)
        raw = item.get("Item", {})
        return {name: int(raw[name]["N"]) for name in LIMIT_NAMES if name in raw}

    def limits(self, project: str) -> dict[str, int]:
        """The project's limits: overrides, else the defaults (-1: unlimited)."""
        return {**{n: int(self.defaults.get(n, UNLIMITED)) for n in LIMIT_NAMES}, **self.overrides(project)}

    def counters(self, project: str) -> dict[str, int]:
        """The raw counters (bytes and counts)."""
        item = self._client().get_item(TableName=self.table_name, Key=_key(project, USAGE_SK), ConsistentRead=True)
        raw = item.get("Item", {})
        return {name: int(raw[name]["N"]) if name in raw else 0 for name in LIMIT_NAMES}

    def project_usage(self, project: str) -> ProjectUsage:
        """Limits and usage as ``GET /v2/info/usage`` shows them (sizes in MiB, rounded down as Glance)."""
        counters = self.counters(project)
        usage = {n: counters[n] // MiB if n in SIZE_LIMITS else counters[n] for n in LIMIT_NAMES}
        return ProjectUsage(self.limits(project), usage)

    # -- writes -------------------------------------------------------------------------------------

    def check_image(self, image: Image) -> None:
        """Per-image limits every writer must respect (store copies and service-added locations).

        Raises:
            LimitExceededError: more locations than ``max_locations`` (413).
        """
        if image.is_deleted():
            return
        held = [loc for loc in image.locations if loc.status not in (LocationStatus.FAILED, LocationStatus.DELETED)]
        if len(held) > self.max_locations:
            raise LimitExceededError(what="image locations", limit=self.max_locations)

    def set_limits(self, project: str, values: Mapping[str, object]) -> dict[str, int]:
        """Set (an integer, -1 = unlimited) or clear (None) per-project limits; returns the overrides now set.

        Raises:
            InvalidInputError: an unknown name or a value that is not an integer >= -1.
        """
        sets: dict[str, int] = {}
        removes: list[str] = []
        for name, value in values.items():
            if name not in LIMIT_NAMES:
                raise InvalidInputError(f"Unknown limit {name!r}; the limits are {', '.join(LIMIT_NAMES)}.")
            if value is None:
                removes.append(name)
            elif isinstance(value, bool) or not isinstance(value, int) or value < UNLIMITED:
                raise InvalidInputError(f"Limit {name} must be an integer >= -1 (-1: unlimited).")
            else:
                sets[name] = value
        if sets or removes:
            names = {f"#{i}": n for i, n in enumerate([*sets, *removes])}
            by_name = {n: k for k, n in names.items()}
            expression = []
            if sets:
                expression.append("SET " + ", ".join(f"{by_name[n]} = :{by_name[n][1:]}" for n in sets))
            if removes:
                expression.append("REMOVE " + ", ".join(by_name[n] for n in removes))
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "Key": _key(project, LIMITS_SK),
                "UpdateExpression": " ".join(expression),
                "ExpressionAttributeNames": names,
            }
            if sets:
                kwargs["ExpressionAttributeValues"] = {f":{by_name[n][1:]}": {"N": str(v)} for n, v in sets.items()}
            self._client().update_item(**kwargs)
        return self.overrides(project)

    def operations(self, changes: Sequence[UsageChange]) -> list[dict[str, Any]]:
        """Low-level transaction ``Update`` items applying ``changes``, each conditional on its limits.

        Raises:
            QuotaExceededError: a delta alone exceeds its limit (nothing needs to be written to know).
        """
        ops = []
        for change in changes:
            limits = self.limits(change.project) if any(d > 0 for d in change.deltas.values()) else {}
            names: dict[str, str] = {}
            values: dict[str, Any] = {}
            adds: list[str] = []
            conditions: list[str] = []
            for i, (name, delta) in enumerate(sorted(change.deltas.items())):
                names[f"#c{i}"] = name
                values[f":d{i}"] = {"N": str(delta)}
                adds.append(f"#c{i} :d{i}")
                limit = limits.get(name, UNLIMITED)
                if delta > 0 and limit != UNLIMITED:
                    ceiling = limit * MiB if name in SIZE_LIMITS else limit
                    if delta > ceiling:
                        raise exceeded(name, limit, 0, delta)
                    values[f":m{i}"] = {"N": str(ceiling - delta)}
                    conditions.append(f"(attribute_not_exists(#c{i}) OR #c{i} <= :m{i})")
            op: dict[str, Any] = {
                "TableName": self.table_name,
                "Key": _key(change.project, USAGE_SK),
                "UpdateExpression": "ADD " + ", ".join(adds),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
            if conditions:
                op["ConditionExpression"] = " AND ".join(conditions)
            ops.append(op)
        return ops

    def precheck(self, project: str | None, name: str, delta: int) -> None:
        """An early, advisory refusal: ``delta`` more of ``name`` would pass the limit now (the hard check is the
        transaction that records the change; this only spares transferring bytes that would be refused).

        Raises:
            QuotaExceededError: usage + ``delta`` is over the limit.
        """
        if project is None or delta <= 0:
            return
        limit = self.limits(project)[name]
        if limit == UNLIMITED:
            return
        usage = self.counters(project)[name]
        if usage + delta > (limit * MiB if name in SIZE_LIMITS else limit):
            raise exceeded(name, limit, usage, delta)

    def explain(self, changes: Sequence[UsageChange]) -> QuotaExceededError:
        """After a transaction whose counter condition failed: the error naming the limit that was hit."""
        for change in changes:
            limits = self.limits(change.project)
            counters = self.counters(change.project)
            for name, delta in sorted(change.deltas.items()):
                limit = limits[name]
                if delta <= 0 or limit == UNLIMITED:
                    continue
                ceiling = limit * MiB if name in SIZE_LIMITS else limit
                if counters[name] + delta > ceiling:
                    return exceeded(name, limit, counters[name], delta)
        # The counters moved again since the transaction failed; name every limit the change pushed on.
        pushed = sorted({n for c in changes for n, d in c.deltas.items() if d > 0})
        return QuotaExceededError(f"Quota exceeded: {', '.join(pushed)} would pass the project's limit.")
