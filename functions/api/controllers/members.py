"""Image sharing: /v2/images/{id}/members (Glance's image_members.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.api.controllers import visible_image
from shared.domain.errors import InvalidInputError, NotFoundError
from shared.domain.listing import membership_of

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.domain.member import Member
    from shared.policy import ImagePolicy, Policies
    from shared.services.images import ImageService


class MembersController:
    """Use cases of the members API; every change is one conditional write of the image."""

    def __init__(self, images: ImageService, policies: Policies, settings: Settings) -> None:
        self.images = images
        self.policies = policies
        self.settings = settings

    def _image(self, ctx: RequestContext, image_id: str) -> tuple[Image, ImagePolicy]:
        policy = self.policies.for_context(ctx)
        return visible_image(self.images, policy, image_id), policy

    def create(self, ctx: RequestContext, image_id: str, body: Any) -> Member:
        """``POST /v2/images/{id}/members``: share with a project (owner only; shared images only)."""
        member_id = body.get("member") if isinstance(body, dict) else None
        if not isinstance(member_id, str) or not member_id.strip() or len(member_id) > 255:
            raise InvalidInputError("Request body must be a JSON object with a 'member' project id.")
        image, policy = self._image(ctx, image_id)
        policy.add_member(image)
        member = image.add_member(member_id.strip(), self.settings.image_member_quota)
        self.images.commit(image, ctx.request_id)
        return member

    def index(self, ctx: RequestContext, image_id: str) -> list[Member]:
        """``GET /v2/images/{id}/members``: the owner sees every member, a member sees itself."""
        image, policy = self._image(ctx, image_id)
        policy.get_members(image, membership_of(ctx, image))
        ordered = sorted(image.members.values(), key=lambda m: m.created_at)
        return [m for m in ordered if policy.can_see_member(image, m.member_id)]

    def show(self, ctx: RequestContext, image_id: str, member_id: str) -> Member:
        """``GET /v2/images/{id}/members/{member_id}``."""
        image, policy = self._image(ctx, image_id)
        member = image.members.get(member_id)
        if member is None:
            raise NotFoundError(kind="member", id=member_id)
        policy.get_member(image, membership_of(ctx, image), member_id=member_id)
        return member

    def update(self, ctx: RequestContext, image_id: str, member_id: str, body: Any) -> Member:
        """``PUT /v2/images/{id}/members/{member_id}``: only the member (or an admin) sets its status."""
        status = body.get("status") if isinstance(body, dict) else None
        image, policy = self._image(ctx, image_id)
        if member_id not in image.members:
            raise NotFoundError(kind="member", id=member_id)
        policy.modify_member(image, member_id)
        member = image.set_member_status(member_id, status)
        self.images.commit(image, ctx.request_id)
        return member

    def delete(self, ctx: RequestContext, image_id: str, member_id: str) -> None:
        """``DELETE /v2/images/{id}/members/{member_id}``: owner only."""
        image, policy = self._image(ctx, image_id)
        if member_id not in image.members:
            raise NotFoundError(kind="member", id=member_id)
        policy.delete_member(image, member_id)
        image.remove_member(member_id)
        self.images.commit(image, ctx.request_id)
