"""HTTP routes of quotas: Glance's ``GET /v2/info/usage`` and our admin ``/v2/quotas/{project_id}``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from functions.api.deps import ContextDep, JsonBody, ProjectIdDep, QuotasDep

router = APIRouter()


@router.get("/v2/info/usage", response_model=None)
def usage(ctx: ContextDep, quotas: QuotasDep) -> dict[str, Any]:
    """The caller's project limits and usage, in Glance's shape."""
    return {"usage": quotas.usage(ctx)}


@router.get("/v2/quotas/{project_id}", response_model=None)
def show_limits(project_id: ProjectIdDep, ctx: ContextDep, quotas: QuotasDep) -> dict[str, Any]:
    """A project's limits (effective and overridden) and usage; admin only."""
    return quotas.show(ctx, project_id)


@router.put("/v2/quotas/{project_id}", response_model=None)
def set_limits(project_id: ProjectIdDep, ctx: ContextDep, quotas: QuotasDep, body: JsonBody) -> dict[str, Any]:
    """Set or clear a project's limits; admin only."""
    return quotas.update(ctx, project_id, body)
