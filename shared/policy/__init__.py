"""Authorisation of image operations: Glance's named rules, decided by oslo.policy, asked by the controllers.

This is the policy box of the domain controller. ``ImagePolicy`` holds one caller's credentials and answers
the controller's questions in Glance's terms (``get_image``, ``modify_image``, ``add_member`` ...); ``Policies``
makes one per request over the process's enforcer. Rules and their secure-RBAC defaults live in ``rules.py``; the
operator's policy file overrides them (``enforcer.py``). "Admin" means one thing everywhere, listing included:
the policy's ``context_is_admin`` (``ImagePolicy.is_admin``).

Two layers, as in Glance: first the data layer's visibility (``can_see``; a member project sees a shared
image whatever its membership status), then the rule. A refused rule on an image the caller cannot ``get_image``
is a ``NotFoundError``, so the image's existence does not leak; on an image it can see, a ``ForbiddenError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.domain.context import RequestContext
from shared.domain.errors import ForbiddenError, NotFoundError
from shared.domain.image import Image
from shared.domain.listing import can_see
from shared.domain.member import Member
from shared.domain.status import ImageStatus
from shared.policy.enforcer import PolicyEnforcer, PolicyFileError, UnknownRuleError, enforcer_for, get_enforcer
from shared.policy.targets import credentials, effective_roles, image_target, own_membership, proposed_target

if TYPE_CHECKING:
    from shared.policy.metadefs import MetadefPolicy

__all__ = [
    "ImagePolicy",
    "Policies",
    "PolicyEnforcer",
    "PolicyFileError",
    "UnknownRuleError",
    "effective_roles",
    "enforcer_for",
    "get_enforcer",
]

# The phrases controllers pass to modify_image(image, action), and the rule each one names.
_ACTION_RULES = {
    "modify the image": "modify_image",
    "delete the image": "delete_image",
    "upload image data": "upload_image",
    "deactivate the image": "deactivate",
    "reactivate the image": "reactivate",
}
_RULE_ACTIONS = {rule: action for action, rule in _ACTION_RULES.items()}


class ImagePolicy:
    """Checks one caller's rights; a failed check on an image they cannot see is a 404, as in Glance."""

    def __init__(self, ctx: RequestContext, enforcer: PolicyEnforcer | None = None) -> None:
        self.ctx = ctx
        self.roles = effective_roles(ctx)
        self.enforcer = enforcer if enforcer is not None else get_enforcer()
        self._creds = credentials(ctx)
        self._is_admin: bool | None = None

    # -- primitives -------------------------------------------------------------------------------

    def allows(self, rule: str, target: dict[str, Any] | None = None) -> bool:
        """Whether ``rule`` allows this caller on ``target`` (default: the caller's own project)."""
        return self.enforcer.allowed(rule, target if target is not None else proposed_target(self.ctx), self._creds)

    @property
    def is_admin(self) -> bool:
        """``context_is_admin``, as the policy (file) defines it; what Glance means by ``context.is_admin``."""
        if self._is_admin is None:
            self._is_admin = self.allows("context_is_admin")
        return self._is_admin

    def visible(self, image: Image, membership: Member | None = None) -> bool:
        """The data layer's visibility: ``can_see``, or a membership of a shared image (any status)."""
        if can_see(self.ctx, image, self.is_admin):
            return True
        return not image.is_deleted() and own_membership(self.ctx, image, membership) is not None

    def can_see_member(self, image: Image, member_id: str) -> bool:
        """Whether the caller may see ``member_id``'s membership: admins and the owner see all, a member itself."""
        own_image = image.owner is not None and image.owner == self.ctx.owner
        return self.is_admin or own_image or member_id == self.ctx.owner

    def check(self, rule: str, image: Image | None = None, membership: Member | None = None) -> bool:
        """A soft check: would ``rule`` pass (a hidden image fails every rule)?"""
        if image is None:
            return self.allows(rule)
        return self.visible(image, membership) and self.allows(rule, image_target(self.ctx, image, membership))

    def enforce(self, rule: str, detail: str | None = None) -> None:
        """Enforce a rule that concerns no image (``tasks_api_access``, ``stores_info_detail``, ``cache_*``)."""
        if not self.allows(rule):
            raise ForbiddenError(detail=detail or f"You are not authorized to complete {rule} action.")

    def enforce_image(
        self, rule: str, image: Image, membership: Member | None = None, detail: str | None = None
    ) -> dict[str, Any]:
        """Enforce ``rule`` on ``image`` with Glance's masking; returns the target that passed.

        Raises:
            NotFoundError: the image is hidden from the caller, or ``rule`` fails and so does ``get_image``.
            ForbiddenError: ``rule`` fails on an image the caller may see.
        """
        if not self.visible(image, membership):
            raise NotFoundError(kind="image", id=image.id)
        target = image_target(self.ctx, image, membership)
        if self.allows(rule, target):
            return target
        if rule == "get_image" or not self.allows("get_image", target):
            raise NotFoundError(kind="image", id=image.id)
        raise ForbiddenError(detail=detail or f"You are not authorized to complete {rule} action.")

    # -- images -----------------------------------------------------------------------------------

    def get_images(self) -> None:
        """``get_images``: admin or project reader."""
        self.enforce("get_images", "You are not authorized to list images.")

    def get_image(self, image: Image, membership: Member | None = None) -> None:
        """``get_image``: admin, or a reader who can see the image; otherwise the image does not exist."""
        self.enforce_image("get_image", image, membership)

    def modify_image(self, image: Image, action: str = "modify the image", membership: Member | None = None) -> None:
        """``modify_image`` / ``delete_image`` / ``upload_image`` / ``deactivate`` / ``reactivate``.

        ``action`` is a rule name or the phrase for one ("delete the image", "upload image data", ...); any
        other phrase means ``modify_image`` and is only used in the 403 message.
        """
        rule = action if action in _RULE_ACTIONS else _ACTION_RULES.get(action, "modify_image")
        phrase = _RULE_ACTIONS.get(action, action)
        self.enforce_image(rule, image, membership, f"You are not authorized to {phrase}.")

    def download_image(self, image: Image, membership: Member | None = None) -> None:
        """``download_image``: as ``get_image`` but with the member role; deactivated data is admin-only."""
        self.enforce_image("download_image", image, membership, "You are not authorized to download image data.")
        if image.status is ImageStatus.DEACTIVATED and not self.is_admin:
            raise ForbiddenError(detail="The requested image has been deactivated. Image data download is forbidden.")

    def copy_image(self, image: Image, membership: Member | None = None) -> None:
        """``copy_image``: admin only."""
        self.enforce_image("copy_image", image, membership, "You are not authorized to copy the image.")

    def add_image(self, owner: str | None, visibility: str | None = None) -> None:
        """``add_image``: admin, or a member creating in their own project; then the visibility rule, if given."""
        target = proposed_target(self.ctx, owner, visibility)
        if not self.allows("add_image", target):
            if owner is not None and owner != self.ctx.project_id:
                raise ForbiddenError(detail=f"You are not permitted to create images owned by '{owner}'.")
            raise ForbiddenError(detail="You are not authorized to create images.")
        if visibility is not None:
            self.set_visibility(visibility, owner=owner)

    def set_visibility(self, visibility: str, image: Image | None = None, owner: str | None = None) -> None:
        """``publicize_image`` (admin) and ``communitize_image`` (admin or member); other values need no rule.

        The target is ``image`` when it exists (PATCH), else the proposed one (create, owned by ``owner``).
        """
        rule = {"public": "publicize_image", "community": "communitize_image"}.get(visibility)
        if rule is None:
            return
        target = image_target(self.ctx, image) if image is not None else proposed_target(self.ctx, owner, visibility)
        if not self.allows(rule, target):
            raise ForbiddenError(detail=f"You are not authorized to set image visibility to {visibility}.")

    def set_owner(self) -> None:
        """Only admins change an image's owner (Glance checks ``context.is_admin``, not a named rule)."""
        if not self.is_admin:
            raise ForbiddenError(detail="Owner can't be updated by non admin.")

    # -- members ----------------------------------------------------------------------------------

    def _member_rule(self, rule: str, image: Image, membership: Member | None, detail: str) -> None:
        # Glance's MemberAPIPolicy: get_image first (404 for a hidden image), then the member rule (403).
        target = self.enforce_image("get_image", image, membership)
        if not self.allows(rule, target):
            raise ForbiddenError(detail=detail)

    def _lookup_member(self, image: Image, member_id: str | None, membership: Member | None) -> None:
        # Glance's _lookup_member: the get_member rule (403), then the membership must be one the caller sees (404).
        self._member_rule(
            "get_member", image, membership, f"You are not authorized to lookup the members of the image {image.id}."
        )
        if member_id is not None and not self.can_see_member(image, member_id):
            raise NotFoundError(kind="member", id=member_id)

    def add_member(self, image: Image, membership: Member | None = None) -> None:
        """``add_member``: admin or a member of the owning project."""
        self._member_rule("add_member", image, membership, f"Not allowed to create members for image {image.id}.")

    def get_members(self, image: Image, membership: Member | None = None) -> None:
        """``get_members``: admin, a reader of the owning project, or a reader of a member project."""
        self._member_rule("get_members", image, membership, f"Not allowed to list members for image {image.id}.")

    def get_member(self, image: Image, membership: Member | None = None, member_id: str | None = None) -> None:
        """``get_member`` for ``GET .../members/{member_id}``: every refusal is a 404, as Glance's show does.

        With ``member_id``, a membership the caller may not see (another member's) is a 404 too.
        """
        try:
            self._lookup_member(image, member_id, membership)
        except ForbiddenError as exc:
            raise NotFoundError(exc.message, kind="member", id=member_id or image.id) from None

    def modify_member(self, image: Image, member_id: str, membership: Member | None = None) -> None:
        """``modify_member``: admin, or the member project itself (role member); the owner may not.

        ``member_id`` is the membership being changed; another member's is a 404.
        """
        self._lookup_member(image, member_id, membership)
        self._member_rule("modify_member", image, membership, f"Not allowed to update members for image {image.id}.")

    def delete_member(self, image: Image, member_id: str | None = None, membership: Member | None = None) -> None:
        """``delete_member``: admin or a member of the owning project; ``member_id`` as in ``modify_member``."""
        self._lookup_member(image, member_id, membership)
        self._member_rule("delete_member", image, membership, f"Not allowed to delete members for image {image.id}.")


class Policies:
    """Makes each caller's ``ImagePolicy`` over one enforcer (the composition root builds one per process)."""

    def __init__(self, enforcer: PolicyEnforcer) -> None:
        self.enforcer = enforcer

    @classmethod
    def for_settings(cls, settings: Settings) -> Policies:
        """The policies of ``settings``' policy file (one enforcer per file and process)."""
        return cls(enforcer_for(settings.policy_file))

    def for_context(self, ctx: RequestContext) -> ImagePolicy:
        """The policy of one caller."""
        return ImagePolicy(ctx, self.enforcer)

    def metadefs(self, ctx: RequestContext) -> MetadefPolicy:
        """The metadata definitions catalog's policy of one caller."""
        from shared.policy.metadefs import MetadefPolicy

        return MetadefPolicy(ctx, self.enforcer)
