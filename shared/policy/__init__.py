"""Authorisation of image operations, with Glance's secure-RBAC defaults (admin, project member, reader).

This is the policy box of the domain controller. A later issue puts oslo.policy and operator policy files
behind the same methods; controllers only ever call these methods.
"""

from __future__ import annotations

from shared.domain.context import RequestContext
from shared.domain.errors import ForbiddenError, NotFoundError
from shared.domain.image import Image, ImageStatus
from shared.domain.listing import can_see

# Keystone's default implied roles: admin implies member, member implies reader.
_IMPLIED = {"admin": ("member", "reader"), "member": ("reader",)}


def effective_roles(ctx: RequestContext) -> frozenset[str]:
    """The caller's roles plus the ones they imply."""
    roles = set(ctx.roles)
    for role in ctx.roles:
        roles.update(_IMPLIED.get(role, ()))
    return frozenset(roles)


class ImagePolicy:
    """Checks one caller's rights; a failed check on an image they cannot see is a 404, as in Glance."""

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx
        self.roles = effective_roles(ctx)

    def _deny(self, detail: str) -> ForbiddenError:
        return ForbiddenError(detail=detail)

    def get_images(self) -> None:
        """``get_images``: admin or project reader."""
        if not self.ctx.is_admin and "reader" not in self.roles:
            raise self._deny("You are not authorized to list images.")

    def get_image(self, image: Image) -> None:
        """``get_image``: admin, or a reader who can see the image; otherwise the image does not exist."""
        if not can_see(self.ctx, image) or not (self.ctx.is_admin or "reader" in self.roles):
            raise NotFoundError(kind="image", id=image.id)

    def _owner_member(self, image: Image) -> bool:
        return self.ctx.is_admin or ("member" in self.roles and image.owner == self.ctx.owner)

    def modify_image(self, image: Image, action: str = "modify the image") -> None:
        """``modify_image`` / ``delete_image`` / ``deactivate`` / ``reactivate``: admin or owning project member."""
        self.get_image(image)
        if not self._owner_member(image):
            raise self._deny(f"You are not authorized to {action}.")

    def download_image(self, image: Image) -> None:
        """``download_image``: as ``get_image``, but readers cannot download; deactivated data is admin-only."""
        self.get_image(image)
        if not (self.ctx.is_admin or "member" in self.roles):
            raise self._deny("You are not authorized to download image data.")
        if image.status is ImageStatus.DEACTIVATED and not self.ctx.is_admin:
            raise self._deny("The requested image has been deactivated. Image data download is forbidden.")

    def add_image(self, owner: str | None) -> None:
        """``add_image``: admin, or a member creating in their own project."""
        if self.ctx.is_admin:
            return
        if "member" not in self.roles:
            raise self._deny("You are not authorized to create images.")
        if owner != self.ctx.owner:
            raise self._deny("You are not permitted to create images owned by another project.")

    def set_visibility(self, visibility: str) -> None:
        """``publicize_image`` (admin) and ``communitize_image`` (admin or member)."""
        if visibility == "public" and not self.ctx.is_admin:
            raise self._deny("You are not authorized to set image visibility to public.")
        if visibility == "community" and not (self.ctx.is_admin or "member" in self.roles):
            raise self._deny("You are not authorized to set image visibility to community.")

    def set_owner(self) -> None:
        """Only admins change an image's owner."""
        if not self.ctx.is_admin:
            raise self._deny("Owner can't be updated by non admin.")
