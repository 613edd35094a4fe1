"""HTTP routes of /v2/images/{id}/members (Glance's glance/api/v2/image_members.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from functions.api.deps import ContextDep, ImageIdDep, JsonBody, MemberIdDep, MembersDep
from functions.api.wire import member_view

router = APIRouter(prefix="/v2/images/{image_id}/members")


@router.post("", response_model=None)
def add_member(image_id: ImageIdDep, ctx: ContextDep, members: MembersDep, body: JsonBody) -> dict[str, Any]:
    """Share the image with a project (200, as Glance)."""
    return member_view(members.create(ctx, image_id, body))


@router.get("", response_model=None)
def list_members(image_id: ImageIdDep, ctx: ContextDep, members: MembersDep) -> dict[str, Any]:
    """The image's members (the caller's own membership only, for a member)."""
    return {"members": [member_view(m) for m in members.index(ctx, image_id)], "schema": "/v2/schemas/members"}


@router.get("/{member_id}", response_model=None)
def show_member(image_id: ImageIdDep, member_id: MemberIdDep, ctx: ContextDep, members: MembersDep) -> dict[str, Any]:
    """One membership."""
    return member_view(members.show(ctx, image_id, member_id))


@router.put("/{member_id}", response_model=None)
def update_member(
    image_id: ImageIdDep, member_id: MemberIdDep, ctx: ContextDep, members: MembersDep, body: JsonBody
) -> dict[str, Any]:
    """Accept, reject or reset a membership (the member project, or an admin)."""
    return member_view(members.update(ctx, image_id, member_id, body))


@router.delete("/{member_id}", status_code=204, response_model=None)
def delete_member(image_id: ImageIdDep, member_id: MemberIdDep, ctx: ContextDep, members: MembersDep) -> Response:
    """Stop sharing with a project."""
    members.delete(ctx, image_id, member_id)
    return Response(status_code=204)
