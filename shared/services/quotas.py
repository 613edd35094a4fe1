"""Quota usage and per-project limits as the API shows them (``/v2/info/usage``, ``/v2/quotas/{project}``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.quota.ledger import ProjectUsage, QuotaLedger


@dataclass
class Quotas:
    """Reads usage and limits, and sets a project's overrides."""

    ledger: QuotaLedger

    def usage(self, project_id: str) -> ProjectUsage:
        """Each limit of the project and its usage (sizes in MiB)."""
        return self.ledger.project_usage(project_id)

    def limits(self, project_id: str) -> dict[str, Any]:
        """The project's effective limits, the overrides set, and usage."""
        current = self.ledger.project_usage(project_id)
        return {
            "project_id": project_id,
            "limits": current.limits,
            "overrides": self.ledger.overrides(project_id),
            "usage": current.body(),
        }

    def set_limits(self, project_id: str, limits: dict[str, object]) -> dict[str, Any]:
        """Set (an integer, -1 = unlimited) or clear (None) overrides; returns the project's limits then.

        Raises:
            InvalidInputError: an unknown name or a value that is not an integer >= -1.
        """
        self.ledger.set_limits(project_id, limits)
        return self.limits(project_id)
