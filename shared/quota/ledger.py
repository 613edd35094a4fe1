"""Quota limits and usage counters, and the counter updates that count one change.

A ledger reads a project's limits (its overrides, else the ``SGLANCE_LIMIT_*`` defaults) and its usage counters
(bytes and counts); the DynamoDB one is ``shared/data/dynamodb/quota.py``. ``counter_updates`` turns a change's
usage deltas into ``CounterUpdate`` items: add the deltas, on the condition that every increased counter stays
within its limit. The unit of work writes them in the same transaction as the image change they count, so 50
concurrent creates against a limit of 10 leave exactly 10 (docs/quotas.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.data.base import CounterUpdate
from shared.domain.errors import InvalidInputError, LimitExceededError
from shared.domain.location import LocationStatus
from shared.domain.quota import (
    LIMIT_NAMES,
    SIZE_LIMITS,
    UNLIMITED,
    MiB,
    QuotaExceededError,
    UsageChange,
    changes,
    contribution,
    exceeded,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from shared.domain.image import Image


@dataclass(frozen=True)
class ProjectUsage:
    """One project's limits and usage, in the units of the limits (MiB for sizes)."""

    limits: dict[str, int]
    usage: dict[str, int]

    def body(self) -> dict[str, dict[str, int]]:
        """Glance's ``GET /v2/info/usage`` object: ``{name: {"limit", "usage"}}``."""
        return {name: {"limit": self.limits[name], "usage": self.usage[name]} for name in LIMIT_NAMES}


def _ceiling(name: str, limit: int) -> int:
    return limit * MiB if name in SIZE_LIMITS else limit


class QuotaLedger(ABC):
    """Reads limits and usage, and builds the counter updates of a change.

    Args:
        defaults: every project's limits without overrides (-1: unlimited).
        max_locations: Glance's image_location_quota, the most locations one image may have.
    """

    def __init__(self, defaults: Mapping[str, int], max_locations: int = 10) -> None:
        self.defaults = dict(defaults)
        self.max_locations = max_locations

    # -- reads --------------------------------------------------------------------------------------

    def overrides(self, project: str) -> dict[str, int]:
        """The limits an admin set for ``project`` (only those set)."""
        return self._overrides(project)

    def limits(self, project: str) -> dict[str, int]:
        """The project's limits: overrides, else the defaults (-1: unlimited)."""
        return {**{n: int(self.defaults.get(n, UNLIMITED)) for n in LIMIT_NAMES}, **self.overrides(project)}

    def counters(self, project: str) -> dict[str, int]:
        """The raw counters (bytes and counts)."""
        return self._counters(project)

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

    def usage_changes(self, image: Image) -> list[UsageChange]:
        """What writing ``image`` changes in its owners' usage (from what it counted when it was read)."""
        return changes(image.counted, image.owner, contribution(image))

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
            self._set_limits(project, sets, removes)
        return self.overrides(project)

    def counter_updates(self, usage: Sequence[UsageChange]) -> list[CounterUpdate]:
        """The counter updates applying ``usage``, each conditional on the limits its increases push on.

        Raises:
            QuotaExceededError: a delta alone exceeds its limit (nothing needs to be written to know).
        """
        updates = []
        for change in usage:
            limits = self.limits(change.project) if any(d > 0 for d in change.deltas.values()) else {}
            ceilings: dict[str, int] = {}
            for name, delta in sorted(change.deltas.items()):
                limit = limits.get(name, UNLIMITED)
                if delta > 0 and limit != UNLIMITED:
                    if delta > _ceiling(name, limit):
                        raise exceeded(name, limit, 0, delta)
                    ceilings[name] = _ceiling(name, limit) - delta
            updates.append(CounterUpdate(change.project, dict(change.deltas), ceilings))
        return updates

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
        if usage + delta > _ceiling(name, limit):
            raise exceeded(name, limit, usage, delta)

    def explain(self, usage: Sequence[UsageChange]) -> QuotaExceededError:
        """After a write whose counter condition failed: the error naming the limit that was hit."""
        for change in usage:
            limits = self.limits(change.project)
            counters = self.counters(change.project)
            for name, delta in sorted(change.deltas.items()):
                limit = limits[name]
                if delta <= 0 or limit == UNLIMITED:
                    continue
                if counters[name] + delta > _ceiling(name, limit):
                    return exceeded(name, limit, counters[name], delta)
        # The counters moved again since the write failed; name every limit the change pushed on.
        pushed = sorted({n for c in usage for n, d in c.deltas.items() if d > 0})
        return QuotaExceededError(f"Quota exceeded: {', '.join(pushed)} would pass the project's limit.")

    # -- backend hooks ------------------------------------------------------------------------------

    @abstractmethod
    def _overrides(self, project: str) -> dict[str, int]:
        """Read the overrides set for ``project``."""

    @abstractmethod
    def _counters(self, project: str) -> dict[str, int]:
        """Read ``project``'s counters (0 for those never written)."""

    @abstractmethod
    def _set_limits(self, project: str, sets: Mapping[str, int], removes: Sequence[str]) -> None:
        """Set and clear overrides of ``project``."""


class NullQuotaLedger(QuotaLedger):
    """No counters: every limit is the default and nothing is counted (repositories that keep no counters, such
    as the in-memory one of the unit tests)."""

    def counter_updates(self, usage: Sequence[UsageChange]) -> list[CounterUpdate]:
        """Nothing to write."""
        return []

    def _overrides(self, project: str) -> dict[str, int]:
        return {}

    def _counters(self, project: str) -> dict[str, int]:
        return dict.fromkeys(LIMIT_NAMES, 0)

    def _set_limits(self, project: str, sets: Mapping[str, int], removes: Sequence[str]) -> None:
        raise InvalidInputError("This service keeps no quota counters; limits cannot be set.")
