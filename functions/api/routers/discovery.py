"""Discovery: GET /v2/info/import, /v2/info/stores and /v2/info/stores/detail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from functions.api.deps import ContainerDep, ContextDep, StoresDep

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


@router.get("/stores", response_model=None)
def stores_info(ctx: ContextDep, stores: StoresDep) -> dict[str, Any]:
    """The stores images can be in; the primary (where uploads land) is the default."""
    return {"stores": stores.stores()}


@router.get("/stores/detail", response_model=None)
def stores_detail(ctx: ContextDep, stores: StoresDep) -> dict[str, Any]:
    """Stores with type, weight and driver properties (admin or service: ``stores_info_detail``)."""
    return {"stores": stores.stores_detail(ctx)}
