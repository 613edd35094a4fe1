"""Images: ``/v2/images`` and its tags and actions (Glance's images.py, image_tags.py, image_actions.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.api.controllers import page_limit, visible_image
from functions.api.wire import is_uuid
from shared.domain.errors import (
    ForbiddenError,
    InvalidInputError,
    InvalidMarkerError,
    PropertyConflictError,
    ReservedPropertyError,
)
from shared.domain.listing import ImageQuery, Page, parse_filters, parse_sort
from shared.domain.properties import WRITABLE_BASE_PROPERTIES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from functions.api.controllers.image_factory import ImageFactory
    from functions.api.patch import Change
    from shared.config import Settings
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.policy import ImagePolicy, Policies
    from shared.policy.property_protections import PropertyProtections
    from shared.services.images import ImageService


class ImagesController:
    """Use cases of /v2/images; each method takes the caller's context first."""

    def __init__(
        self,
        images: ImageService,
        factory: ImageFactory,
        policies: Policies,
        protections: PropertyProtections,
        settings: Settings,
    ) -> None:
        self.images = images
        self.factory = factory
        self.policies = policies
        self.protections = protections
        self.settings = settings

    def visible_properties(self, ctx: RequestContext, image: Image) -> dict[str, str]:
        """The extra properties ``ctx`` may read (property protections); never written back to the image."""
        return self.protections.readable(ctx, image.extra_properties)

    def shows_locations(self, ctx: RequestContext, image: Image) -> bool | None:
        """Whether ``image``'s body lists its locations for ``ctx``: None when show_multiple_locations is off (no
        ``locations`` at all), else whether ``get_image_location`` passes (Glance shows an empty list if not)."""
        if not self.settings.show_multiple_locations:
            return None
        return self.policies.for_context(ctx).check("get_image_location", image)

    def _visible(self, ctx: RequestContext, image_id: str) -> tuple[Image, ImagePolicy]:
        policy = self.policies.for_context(ctx)
        return visible_image(self.images, policy, image_id), policy

    # -- reads ----------------------------------------------------------------------------------

    def show(self, ctx: RequestContext, image_id: str) -> Image:
        """``GET /v2/images/{id}``."""
        return self._visible(ctx, image_id)[0]

    def index(self, ctx: RequestContext, params: Sequence[tuple[str, str]]) -> Page[Image]:
        """``GET /v2/images``: filters, sort and marker/limit paging."""
        policy = self.policies.for_context(ctx)
        policy.get_images()
        values = dict(params)
        limit = page_limit(values.get("limit"), self.settings)
        filters = parse_filters(params)
        sort = parse_sort(params)
        marker = None
        if "marker" in values:
            if not is_uuid(values["marker"]):
                raise InvalidMarkerError(marker=values["marker"])
            marker = self.images.marker(ctx, policy.is_admin, values["marker"])
        query = ImageQuery(ctx, policy.is_admin, filters, sort, limit, self.settings.list_scan_budget, marker)
        return self.images.list(query)

    # -- writes ---------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, body: Any) -> Image:
        """``POST /v2/images``."""
        image = self.factory.new(self.policies.for_context(ctx), body)
        return self.images.add(image, ctx.request_id)

    def update(self, ctx: RequestContext, image_id: str, changes: Sequence[Change]) -> Image:
        """``PATCH /v2/images/{id}``: apply every change, then one conditional write (409 if raced)."""
        image, policy = self._visible(ctx, image_id)
        policy.modify_image(image)
        for change in changes:
            self._apply(image, policy, change)
        if not changes:
            return image
        image.record_edit(self.factory.limits)
        return self.images.commit(image, ctx.request_id)

    def _apply(self, image: Image, policy: ImagePolicy, change: Change) -> None:
        root = change.root
        if root == "locations":
            raise ForbiddenError(detail="Image locations cannot be read or changed through this API.")
        base = root in WRITABLE_BASE_PROPERTIES or root == "tags"
        # A property the caller may not read is, to them, absent (Glance's property protections).
        visible = root in image.extra_properties and self.protections.check(policy.ctx, "read", root)
        if change.op == "remove":
            self._remove(image, policy, root, base=base, visible=visible)
        else:
            self._set(image, policy, change, base=base, visible=visible)

    def _remove(self, image: Image, policy: ImagePolicy, root: str, *, base: bool, visible: bool) -> None:
        if base:
            raise ForbiddenError(detail=f"Property {root} may not be removed.")
        if not visible:
            raise PropertyConflictError(name=root, detail="does not exist")
        if not self.protections.check(policy.ctx, "delete", root):
            raise ReservedPropertyError(name=root)
        del image.extra_properties[root]

    def _set(self, image: Image, policy: ImagePolicy, change: Change, *, base: bool, visible: bool) -> None:
        root = change.root
        exists = base or visible
        if change.op == "replace" and not exists:
            raise PropertyConflictError(name=root, detail="does not exist")
        if change.op == "add" and change.strict_add and exists:
            raise PropertyConflictError(name=root, detail="already present")
        if not base and not self.protections.check(policy.ctx, "update" if visible else "create", root):
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
        """``DELETE /v2/images/{id}``: a tombstone; the bytes go from every store (store_sync)."""
        image, policy = self._visible(ctx, image_id)
        policy.modify_image(image, "delete the image")
        self.images.delete(image, ctx.request_id)

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
            self.images.commit(image, ctx.request_id)

    def add_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        """``PUT /v2/images/{id}/tags/{tag}``: idempotent; 413 past the tag limit."""
        if len(tag) > 255:
            raise InvalidInputError("Tag is longer than 255 characters.")
        image, policy = self._visible(ctx, image_id)
        policy.modify_image(image)
        if tag not in image.tags:
            image.add_tag(tag, self.factory.limits)
            self.images.commit(image, ctx.request_id)

    def delete_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        """``DELETE /v2/images/{id}/tags/{tag}``: 404 for a tag the image does not have."""
        image, policy = self._visible(ctx, image_id)
        policy.modify_image(image)
        image.remove_tag(tag)
        self.images.commit(image, ctx.request_id)
