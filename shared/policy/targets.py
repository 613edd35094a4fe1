"""What a policy check sees: the caller's credentials and the image as a flat target, as Glance builds them."""

from __future__ import annotations

from typing import Any

from shared.domain.context import RequestContext
from shared.domain.image import Image, Visibility
from shared.domain.member import Member

# Keystone's default implied roles: admin implies member, member implies reader. Keystone already expands them
# in tokens; expanding again keeps a dev identity that names only "admin" or "member" working the same way.
_IMPLIED = {"admin": ("member", "reader"), "member": ("reader",)}


def effective_roles(ctx: RequestContext) -> frozenset[str]:
    """The caller's roles plus the ones they imply."""
    roles = set(ctx.roles)
    for role in ctx.roles:
        roles.update(_IMPLIED.get(role, ()))
    return frozenset(roles)


def credentials(ctx: RequestContext) -> dict[str, Any]:
    """The caller as oslo.context's ``to_policy_values()`` would describe them.

    ``system_scope`` or ``domain_id`` make the token system- or domain-scoped, which every image rule refuses.
    ``service_roles`` are the roles of a service token (keystonemiddleware's ``X-Service-Roles``); a policy file can
    test them with ``service_roles:<role>``.
    """
    return {
        "user_id": ctx.user_id,
        "user_domain_id": ctx.user_domain_id,
        "project_id": ctx.project_id,
        "project_domain_id": ctx.project_domain_id,
        "domain_id": ctx.domain_id,
        "system_scope": ctx.system_scope,
        "roles": sorted(effective_roles(ctx)),
        "service_roles": sorted(ctx.service_roles),
        "is_admin_project": True,
    }


def own_membership(ctx: RequestContext, image: Image, membership: Member | None = None) -> Member | None:
    """The caller's project's membership of ``image`` when it grants access: shared images only, as in Glance."""
    if ctx.owner is None or image.visibility is not Visibility.SHARED or image.owner == ctx.owner:
        return None
    if membership is not None and membership.member_id == ctx.owner:
        return membership
    return image.members.get(ctx.owner)


def image_target(ctx: RequestContext, image: Image, membership: Member | None = None) -> dict[str, Any]:
    """Glance's ImageTarget for an existing image.

    ``project_id`` and ``owner`` are the image's owner; ``member_id`` is the caller's project when it reached the
    image as a member (Glance sets it for every non-owner of a shared image found through its membership) and
    ``member_status`` that membership's status. Extra properties are keys too; base attributes always win.
    Absent values are left out, so a check that needs them fails instead of matching the text "None".
    """
    member = own_membership(ctx, image, membership)
    base: dict[str, Any] = {
        "id": image.id,
        "image_id": image.id,
        "name": image.name,
        "status": image.status.value,
        "visibility": image.visibility.value,
        "owner": image.owner,
        "project_id": image.owner,
        "protected": image.protected,
        "os_hidden": image.os_hidden,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "min_ram": image.min_ram,
        "min_disk": image.min_disk,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "member_id": member.member_id if member else None,
        "member_status": member.status.value if member else None,
    }
    # An extra property never stands in for a base key, even an absent one: "member_id" set by an owner must not
    # make another project a member in the eyes of a rule.
    target: dict[str, Any] = {key: value for key, value in image.extra_properties.items() if key not in base}
    target.update((key, value) for key, value in base.items() if value is not None)
    return target


def proposed_target(ctx: RequestContext, owner: str | None = None, visibility: str | None = None) -> dict[str, Any]:
    """The target of a check on an image not created yet (create, list): Glance's dict of proposed properties."""
    project = owner if owner is not None else ctx.project_id
    target: dict[str, Any] = {"visibility": visibility or Visibility.PRIVATE.value}
    if project is not None:
        target.update(project_id=project, owner=project)
    return target
