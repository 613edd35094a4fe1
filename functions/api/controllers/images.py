"""The image domain controller: policy, then repository, then domain method, then save, in plain order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from functions.api.controllers import visible_image
from functions.api.patch import Change
from functions.api.wire import is_uuid, validate_image_fields
from shared.config import Settings
from shared.data.base import ImageRepository, ListPage
from shared.domain.context import RequestContext
from shared.domain.errors import (
    ForbiddenError,
    InvalidInputError,
    InvalidMarkerError,
    LimitExceededError,
    NotFoundError,
    PropertyConflictError,
    ReservedPropertyError,
)
from shared.domain.image import WRITABLE_BASE_PROPERTIES, Image, ImageLimits, check_extra_property_name
from shared.domain.listing import ListPlan, can_see, parse_filters, parse_sort, plan_partitions, sort_value
from shared.policy import ImagePolicy
from shared.policy.property_protections import Operation, protections_for

if TYPE_CHECKING:
    from shared.services.replication import Replicator

# Create-body keys that are accepted by the schema but never writable (Glance's _disallowed_properties).
_DISALLOWED_ON_CREATE = ("direct_url", "self", "file", "schema", "stores")


class ImagesController:
    """Use cases of /v2/images; each method takes the caller's context first."""

    def __init__(self, repo: ImageRepository, settings: Settings, replicator: Replicator | None = None) -> None:
        self.repo = repo
        self.settings = settings
        # Deletes the bytes of deleted images in every store (through store_sync); None: bytes are kept.
        self.replicator = replicator
        self.limits = ImageLimits(settings.image_property_quota, settings.image_tag_quota)
        self.protections = protections_for(
            settings.property_protection_file, settings.property_protection_rule_format, settings.policy_file
        )

    def _allowed(self, ctx: RequestContext, operation: Operation, key: str) -> bool:
        return self.protections is None or self.protections.check(ctx, operation, key)

    def visible_properties(self, ctx: RequestContext, image: Image) -> dict[str, str]:
        """The extra properties ``ctx`` may read (property protections); never written back to the image."""
        if self.protections is None:
            return dict(image.extra_properties)
        return self.protections.readable(ctx, image.extra_properties)

    # -- reads ----------------------------------------------------------------------------------

    def _visible(self, ctx: RequestContext, image_id: str) -> tuple[Image, ImagePolicy]:
        return visible_image(self.repo, self.settings, ctx, image_id)

    def show(self, ctx: RequestContext, image_id: str) -> Image:
        """``GET /v2/images/{id}``."""
        return self._visible(ctx, image_id)[0]

    def index(self, ctx: RequestContext, params: Sequence[tuple[str, str]]) -> ListPage:
        """``GET /v2/images``: filters, sort and marker/limit paging."""
        ImagePolicy.for_settings(ctx, self.settings).get_images()
        values = dict(params)
        limit = self._limit(values.get("limit"))
        filters = parse_filters(params)
        sort = parse_sort(params)
        after = None
        if "marker" in values:
            after = sort_value(self._marker(ctx, values["marker"]), sort.key)
        plan = ListPlan(
            ctx=ctx,
            filters=filters,
            sort=sort,
            partitions=plan_partitions(ctx, filters),
            limit=limit,
            budget=self.settings.list_scan_budget,
            after=after,
        )
        return self.repo.list(plan)

    def _limit(self, raw: str | None) -> int:
        if raw is None:
            return self.settings.limit_param_default
        try:
            limit = int(raw)
        except ValueError:
            raise InvalidInputError("limit param must be an integer") from None
        if limit < 0:
            raise InvalidInputError("limit param must be positive")
        return min(limit, self.settings.api_limit_max)

    def _marker(self, ctx: RequestContext, marker: str) -> Image:
        try:
            image = self.repo.get(marker) if is_uuid(marker) else None
        except NotFoundError:
            image = None
        if image is None or not can_see(ctx, image):
            raise InvalidMarkerError(marker=marker)
        return image

    # -- writes ---------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, body: Any) -> Image:
        """``POST /v2/images``."""
        if not isinstance(body, dict):
            raise InvalidInputError("Request body must be a JSON object.")
        for key in _DISALLOWED_ON_CREATE:
            if key in body:
                raise ForbiddenError(detail=f"Attribute '{key}' is read-only.")
        validate_image_fields(body, self.settings)
        fields = dict(body)
        image_id = fields.pop("id", None)
        tags = fields.pop("tags", [])
        base = {k: fields.pop(k) for k in list(fields) if k in WRITABLE_BASE_PROPERTIES}
        for key in fields:
            check_extra_property_name(key)
            if key == "locations":
                raise ReservedPropertyError(name=key)
        owner = base.pop("owner", None) or ctx.owner
        policy = ImagePolicy.for_settings(ctx, self.settings)
        policy.add_image(owner, base.get("visibility"))
        for key in fields:
            if not self._allowed(ctx, "create", key):
                raise ReservedPropertyError(name=key)
        image = Image.new(
            owner=owner, image_id=image_id, tags=tags, extra_properties=fields, limits=self.limits, **base
        )
        return self.repo.add(image)

    def update(self, ctx: RequestContext, image_id: str, changes: Sequence[Change]) -> Image:
        """``PATCH /v2/images/{id}``: apply every change, then one conditional save (409 if raced)."""
        image, policy = self._visible(ctx, image_id)
        policy.modify_image(image)
        for change in changes:
            self._apply(image, policy, change)
        if not changes:
            return image
        image.check_limits(self.limits)
        image.touch()
        return self.repo.save(image)

    def _apply(self, image: Image, policy: ImagePolicy, change: Change) -> None:
        root = change.root
        if root == "locations":
            raise ForbiddenError(detail="Image locations cannot be read or changed through this API.")
        base = root in WRITABLE_BASE_PROPERTIES or root == "tags"
        # A property the caller may not read is, to them, absent (Glance's property protections).
        visible = root in image.extra_properties and self._allowed(policy.ctx, "read", root)
        if change.op == "remove":
            if base:
                raise ForbiddenError(detail=f"Property {root} may not be removed.")
            if not visible:
                raise PropertyConflictError(name=root, detail="does not exist")
            if not self._allowed(policy.ctx, "delete", root):
                raise ReservedPropertyError(name=root)
            del image.extra_properties[root]
            return
        exists = base or visible
        if change.op == "replace" and not exists:
            raise PropertyConflictError(name=root, detail="does not exist")
        if change.op == "add" and change.strict_add and exists:
            raise PropertyConflictError(name=root, detail="already present")
        if not base and not self._allowed(policy.ctx, "update" if visible else "create", root):
            raise ReservedPropertyError(name=root)
        if root == "owner":
            policy.set_owner()
        if root == "visibility":
            policy.set_visibility(change.value, image=image)
        if root == "tags":
            image.tags = set(change.value)
        elif root in WRITABLE_BASE_PROPERTIES:
            image.set_attribute(root, change.value)
        else:
            image.extra_properties[root] = change.value

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        """``DELETE /v2/images/{id}``: leaves a tombstone (protected images are 403) and queues the deletion of
        the bytes in every store; the tombstone lists each copy until its bytes are gone."""
        image, policy = self._visible(ctx, image_id)
        policy.modify_image(image, "delete the image")
        image.delete()
        image.touch()
        self.repo.save(image)
        if self.replicator is not None:
            self.replicator.purge(image.id, image.locations)

    def deactivate(self, ctx: RequestContext, image_id: str) -> None:
        """``POST /v2/images/{id}/actions/deactivate``."""
        self._status_action(ctx, image_id, "deactivate")

    def reactivate(self, ctx: RequestContext, image_id: str) -> None:
        """``POST /v2/images/{id}/actions/reactivate``."""
        self._status_action(ctx, image_id, "reactivate")

    def _status_action(self, ctx: RequestContext, image_id: str, action: str) -> None:
        image, policy = self._visible(ctx, image_id)
        policy.modify_image(image, f"{action} the image")
        before = image.status
        getattr(image, action)()
        if image.status is not before:
            image.touch()
            self.repo.save(image)

    def add_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        """``PUT /v2/images/{id}/tags/{tag}``: idempotent; 413 past the tag limit."""
        if len(tag) > 255:
            raise InvalidInputError("Tag is longer than 255 characters.")
        image, policy = self._visible(ctx, image_id)
        policy.modify_image(image)
        if tag in image.tags:
            return
        image.tags.add(tag)
        if len(image.tags) > self.limits.max_tags:
            raise LimitExceededError(what="image tags", limit=self.limits.max_tags)
        image.touch()
        self.repo.save(image)

    def delete_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        """``DELETE /v2/images/{id}/tags/{tag}``: 404 for a tag the image does not have."""
        image, policy = self._visible(ctx, image_id)
        policy.modify_image(image)
        if tag not in image.tags:
            raise NotFoundError(kind="tag", id=tag)
        image.tags.discard(tag)
        image.touch()
        self.repo.save(image)
