"""Discovery: GET /v2/info/import."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from functions.api.deps import ContainerDep, ContextDep

router = APIRouter(prefix="/v2/info")


@router.get("/import", response_model=None)
def import_info(ctx: ContextDep, container: ContainerDep) -> dict[str, Any]:
    """The enabled import methods, in Glance's shape."""
    return {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": list(container.settings.enabled_import_methods),
        }
    }
