"""Quota usage (``GET /v2/info/usage``, Glance) and per-project limits (``/v2/quotas/{project}``, ours, admin only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.domain.errors import ForbiddenError, InvalidInputError

if TYPE_CHECKING:
    from shared.domain.context import RequestContext
    from shared.policy import Policies
    from shared.services.quotas import Quotas


class QuotasController:
    """Reads usage; an admin reads and sets a project's limits."""

    def __init__(self, quotas: Quotas, policies: Policies) -> None:
        self.quotas = quotas
        self.policies = policies

    def usage(self, ctx: RequestContext) -> dict[str, Any]:
        """The caller's project: each limit and its usage (sizes in MiB), in Glance's shape."""
        if not ctx.project_id:
            raise ForbiddenError(detail="Quota usage is per project; this token has no project scope.")
        return self.quotas.usage(ctx.project_id).body()

    def _admin(self, ctx: RequestContext) -> None:
        if not self.policies.for_context(ctx).is_admin:
            raise ForbiddenError(detail="Only admins read or set project limits.")

    def show(self, ctx: RequestContext, project_id: str) -> dict[str, Any]:
        """``GET /v2/quotas/{project}``: effective limits, the overrides set, and usage."""
        self._admin(ctx)
        return self.quotas.limits(project_id)

    def update(self, ctx: RequestContext, project_id: str, body: Any) -> dict[str, Any]:
        """``PUT /v2/quotas/{project}`` with ``{"limits": {name: int | null}}`` (null: back to the default)."""
        self._admin(ctx)
        limits = body.get("limits") if isinstance(body, dict) else None
        if not isinstance(limits, dict) or not limits:
            raise InvalidInputError('Body must be {"limits": {"<limit name>": <integer, -1 for unlimited, or null>}}.')
        return self.quotas.set_limits(project_id, limits)
