"""HTTP routes of /v2/images (Glance's glance/api/v2/images.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from functions.api.controllers.images import ImagesController
from functions.api.deps import ContextDep, ImageIdDep, ImagesDep, JsonBody, PatchBody, TagDep
from functions.api.patch import parse_changes
from functions.api.wire import image_view, page_view
from shared.domain.context import RequestContext
from shared.domain.image import Image

router = APIRouter(prefix="/v2/images")


def _view(images: ImagesController, ctx: RequestContext, image: Image) -> dict[str, Any]:
    return image_view(
        image,
        images.visible_properties(ctx, image),
        images.settings.store_weights,
        show_locations=images.shows_locations(ctx, image),
    )


@router.post("", status_code=201, response_model=None)
def create_image(ctx: ContextDep, images: ImagesDep, body: JsonBody) -> JSONResponse:
    """Register a new image in status ``queued``."""
    image = images.create(ctx, body)
    headers = {"Location": f"/v2/images/{image.id}"}
    methods = images.settings.enabled_import_methods
    if methods:
        headers["OpenStack-image-import-methods"] = ",".join(methods)
    settings = images.settings
    headers["OpenStack-image-store-ids"] = ",".join([settings.primary_store_id, *settings.store_configs])
    return JSONResponse(_view(images, ctx, image), status_code=201, headers=headers)


@router.get("", response_model=None)
def list_images(request: Request, ctx: ContextDep, images: ImagesDep) -> JSONResponse:
    """List images with Glance's filters, sorting and marker/limit paging."""
    params = list(request.query_params.multi_items())
    page = images.index(ctx, params)
    items = [_view(images, ctx, i) for i in page.items]
    # A response, not the dict: FastAPI would first walk the body (plain JSON types already) with
    # jsonable_encoder, a sixth of a 20-image list's server CPU.
    return JSONResponse(page_view("images", items, "/v2/images", "/v2/schemas/images", params, page.next_marker))


@router.get("/{image_id}", response_model=None)
def show_image(image_id: ImageIdDep, ctx: ContextDep, images: ImagesDep) -> JSONResponse:
    """Show one image."""
    return JSONResponse(_view(images, ctx, images.show(ctx, image_id)))


@router.patch("/{image_id}", response_model=None)
def update_image(
    request: Request, image_id: ImageIdDep, ctx: ContextDep, images: ImagesDep, body: PatchBody
) -> JSONResponse:
    """Apply a JSON patch in either of Glance's patch media types."""
    changes = parse_changes(request.headers.get("content-type"), body, images.settings)
    return JSONResponse(_view(images, ctx, images.update(ctx, image_id, changes)))


@router.delete("/{image_id}", status_code=204, response_model=None)
def delete_image(image_id: ImageIdDep, ctx: ContextDep, images: ImagesDep) -> Response:
    """Delete an image (its id stays reserved)."""
    images.delete(ctx, image_id)
    return Response(status_code=204)


@router.put("/{image_id}/tags/{tag}", status_code=204, response_model=None)
def add_tag(image_id: ImageIdDep, tag: TagDep, ctx: ContextDep, images: ImagesDep) -> Response:
    """Add a tag (idempotent)."""
    images.add_tag(ctx, image_id, tag)
    return Response(status_code=204)


@router.delete("/{image_id}/tags/{tag}", status_code=204, response_model=None)
def delete_tag(image_id: ImageIdDep, tag: TagDep, ctx: ContextDep, images: ImagesDep) -> Response:
    """Remove a tag."""
    images.delete_tag(ctx, image_id, tag)
    return Response(status_code=204)


@router.post("/{image_id}/actions/deactivate", status_code=204, response_model=None)
def deactivate(image_id: ImageIdDep, ctx: ContextDep, images: ImagesDep) -> Response:
    """Deactivate an active image."""
    images.deactivate(ctx, image_id)
    return Response(status_code=204)


@router.post("/{image_id}/actions/reactivate", status_code=204, response_model=None)
def reactivate(image_id: ImageIdDep, ctx: ContextDep, images: ImagesDep) -> Response:
    """Reactivate a deactivated image."""
    images.reactivate(ctx, image_id)
    return Response(status_code=204)
