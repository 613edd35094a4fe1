"""Quota counters and limits in the images table (docs/quotas.md).

Per project: ``QUOTA#<project>`` / ``USAGE`` holds the counters (bytes and counts), and, when an admin set any,
``QUOTA#<project>`` / ``LIMITS`` the per-project overrides of the ``SGLANCE_LIMIT_*`` defaults. The image repository
writes the counter updates in the image's transaction (``images.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.data.dynamodb.table import LIMITS_SK, USAGE_SK, TableModels, quota_pk
from shared.domain.quota import LIMIT_NAMES
from shared.quota.ledger import QuotaLedger


class DynamoQuotaLedger(QuotaLedger):
    """Limits and counters in the images table (the models of ``shared/data/dynamodb/table.py``)."""

    def __init__(self, models: TableModels, defaults: Mapping[str, int], max_locations: int = 10) -> None:
        super().__init__(defaults, max_locations)
        self.models = models

    def _overrides(self, project: str) -> dict[str, int]:
        item = self.models.read(self.models.limits, quota_pk(project), LIMITS_SK)
        values = {} if item is None else {n: getattr(item, n) for n in LIMIT_NAMES}
        return {name: int(value) for name, value in values.items() if value is not None}

    def _counters(self, project: str) -> dict[str, int]:
        item = self.models.read(self.models.usage, quota_pk(project), USAGE_SK)
        return {n: 0 if item is None or getattr(item, n) is None else int(getattr(item, n)) for n in LIMIT_NAMES}

    def _set_limits(self, project: str, sets: Mapping[str, int], removes: Sequence[str]) -> None:
        limits = self.models.limits
        actions = [getattr(limits, n).set(v) for n, v in sets.items()] + [getattr(limits, n).remove() for n in removes]
        limits(quota_pk(project), LIMITS_SK).update(actions=actions)
