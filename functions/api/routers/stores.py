"""Multi-store routes: deleting one store's copy (2.10) and the service-only locations API (2.17)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from functions.api.deps import ContextDep, ImageIdDep, JsonBody, StoreIdDep, StoresDep

router = APIRouter()


@router.delete("/v2/stores/{store_id}/{image_id}", status_code=204, response_model=None)
def delete_from_store(store_id: StoreIdDep, image_id: ImageIdDep, ctx: ContextDep, stores: StoresDep) -> Response:
    """Remove the image's copy in one store; its bytes are deleted by store_sync."""
    stores.delete_from_store(ctx, store_id, image_id)
    return Response(status_code=204)


@router.get("/v2/images/{image_id}/locations", response_model=None)
def get_locations(image_id: ImageIdDep, ctx: ContextDep, stores: StoresDep) -> list[dict[str, Any]]:
    """The image's complete copies, with their URLs (``fetch_image_location``: the service role)."""
    return stores.locations_of(ctx, image_id)


@router.post("/v2/images/{image_id}/locations", status_code=202, response_model=None)
def add_location(image_id: ImageIdDep, ctx: ContextDep, stores: StoresDep, body: JsonBody) -> Response:
    """Add bytes a service stored in one of our stores to a queued image; verified, then active."""
    stores.add_location(ctx, image_id, body)
    return Response(status_code=202)
