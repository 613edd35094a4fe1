"""HTTP routes of image data: Glance's PUT/GET /file and PUT /stage (``data_router``: what the data plane serves,
with the API function's body limit lifted), the import call and our presigned upload sessions (``router``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from functions.api.deps import ContextDep, ImageDataDep, ImageIdDep, ImportsDep, JsonBody, UploadsDep
from functions.api.streaming import ChunkPipe
from functions.api.wire import opened_upload_view, part_urls_view, upload_status_view
from shared.domain.errors import InvalidInputError, StoreUnavailableError

router = APIRouter(prefix="/v2/images")
# The routes whose bodies are image data: the front door sends their paths to the data plane (shared/data_routes.py).
data_router = APIRouter(prefix="/v2/images")


@data_router.put("/{image_id}/file", status_code=204, response_model=None)
async def upload_file(request: Request, image_id: ImageIdDep, ctx: ContextDep, data: ImageDataDep) -> Response:
    """Glance's upload: bytes through the API, verified and recorded before the response."""
    data.check_body(request.headers.get("content-type"), _int_header(request, "content-length"))
    declared = _int_header(request, "x-openstack-image-size")
    store = request.headers.get("x-image-meta-store")
    image, session = await run_in_threadpool(data.start_upload, ctx, image_id, declared, store)
    await _pipe_body(request, lambda chunks: data.finish_upload(image, session, chunks, ctx.request_id))
    return Response(status_code=204)


@data_router.put("/{image_id}/stage", status_code=204, response_model=None)
async def stage_file(request: Request, image_id: ImageIdDep, ctx: ContextDep, data: ImageDataDep) -> Response:
    """Glance's staging for glance-direct import: the image shows ``uploading`` until the import call."""
    data.check_body(request.headers.get("content-type"), _int_header(request, "content-length"))
    image, session = await run_in_threadpool(data.start_stage, ctx, image_id)
    await _pipe_body(request, lambda chunks: data.finish_stage(image, session, chunks))
    return Response(status_code=204)


@router.post("/{image_id}/import", status_code=202, response_model=None)
def import_image(
    request: Request, image_id: ImageIdDep, ctx: ContextDep, imports: ImportsDep, body: JsonBody
) -> Response:
    """Interoperable image import (glance-direct, web-download, copy-image): 202, the workers finish it."""
    imports.start(ctx, image_id, body, request.headers.get("x-image-meta-store"))
    return Response(status_code=202)


async def _pipe_body(request: Request, consume: Callable[[ChunkPipe], object]) -> None:
    """Feed the request body to ``consume`` running in a worker thread, with bounded memory."""
    pipe = ChunkPipe()

    def run() -> None:
        try:
            consume(pipe)
        finally:
            pipe.consumer_done.set()

    worker = asyncio.get_running_loop().run_in_executor(None, run)
    try:
        async for chunk in request.stream():
            if chunk and not await pipe.put(chunk):
                break
        await pipe.close()
    except ClientDisconnect:
        await pipe.close(StoreUnavailableError(detail="the client disconnected"))
    await worker


def _int_header(request: Request, name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInputError(f"Header {name} must be an integer.") from None
    if value < 0:
        raise InvalidInputError(f"Header {name} must not be negative.")
    return value


@data_router.get("/{image_id}/file", response_model=None)
def download_file(request: Request, image_id: ImageIdDep, ctx: ContextDep, data: ImageDataDep) -> Response:
    """Image bytes: 204 without data, a presigned redirect, or a (ranged) stream."""
    download = data.download(
        ctx,
        image_id,
        request.headers.get("range"),
        request.headers.get("content-range"),
        request.query_params.get("prefer"),
    )
    if download.redirect is not None:
        return RedirectResponse(download.redirect, status_code=302)
    if download.chunks is None:
        return Response(status_code=204)
    headers = {"Content-Length": str(download.length), "Content-Type": "application/octet-stream"}
    if download.content_range is not None:
        headers["Content-Range"] = download.content_range
        return StreamingResponse(download.chunks, status_code=206, headers=headers)
    if download.image.checksum:
        # Glance sends the hex MD5 here, not base64 as the HTTP header's RFC says; clients compare it so.
        headers["Content-MD5"] = download.image.checksum
    return StreamingResponse(download.chunks, status_code=200, headers=headers)


@router.post("/{image_id}/upload", status_code=201, response_model=None)
def open_upload(
    request: Request, image_id: ImageIdDep, ctx: ContextDep, uploads: UploadsDep, body: JsonBody
) -> JSONResponse:
    """Open a presigned direct upload (single PUT or multipart) for a queued image."""
    opened = uploads.open(ctx, image_id, body, request.headers.get("x-image-meta-store"))
    return JSONResponse(opened_upload_view(opened), status_code=201)


@router.get("/{image_id}/upload", response_model=None)
def upload_status(image_id: ImageIdDep, ctx: ContextDep, uploads: UploadsDep) -> dict[str, Any]:
    """The open upload and the parts already received (to resume)."""
    return upload_status_view(uploads.status(ctx, image_id))


@router.post("/{image_id}/upload/parts", response_model=None)
def part_urls(image_id: ImageIdDep, ctx: ContextDep, uploads: UploadsDep, body: JsonBody) -> dict[str, Any]:
    """Fresh presigned URLs for some parts."""
    return part_urls_view(uploads.part_urls(ctx, image_id, body))


@router.post("/{image_id}/upload/complete", status_code=202, response_model=None)
def complete_upload(image_id: ImageIdDep, ctx: ContextDep, uploads: UploadsDep) -> JSONResponse:
    """Assemble a multipart upload; the image turns active (or queued, with a reason) once verified."""
    image = uploads.complete(ctx, image_id)
    return JSONResponse({"image_id": image.id, "status": "verifying"}, status_code=202)


@router.delete("/{image_id}/upload", status_code=204, response_model=None)
def abort_upload(image_id: ImageIdDep, ctx: ContextDep, uploads: UploadsDep) -> Response:
    """Cancel the open upload; its bytes are deleted and the image is queued again."""
    uploads.abort(ctx, image_id)
    return Response(status_code=204)
