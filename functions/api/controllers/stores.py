"""Stores: discovery (``/v2/info/stores``), deleting one store's copy, and the service-only locations API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.api.controllers import visible_image
from shared.domain.errors import ConflictError, ForbiddenError, InvalidInputError
from shared.domain.status import ImageStatus
from shared.services.locations import Locations, read_validation_data

if TYPE_CHECKING:
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.policy import Policies
    from shared.services.images import ImageService


class StoresController:
    """Use cases of the store routes."""

    def __init__(self, images: ImageService, policies: Policies, locations: Locations) -> None:
        self.images = images
        self.policies = policies
        self.locations = locations

    def stores(self) -> list[dict[str, Any]]:
        """``GET /v2/info/stores``: every store, the default (primary) one marked."""
        return self.locations.stores()

    def stores_detail(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """``GET /v2/info/stores/detail``: adds type, weight and driver properties (``stores_info_detail``)."""
        self.policies.for_context(ctx).enforce("stores_info_detail")
        return self.locations.stores_detail()

    def delete_from_store(self, ctx: RequestContext, store_id: str, image_id: str) -> None:
        """``DELETE /v2/stores/{store_id}/{image_id}``: drop one copy (not the last one: 403)."""
        self.locations.check_store(store_id)
        policy = self.policies.for_context(ctx)
        image = visible_image(self.images, policy, image_id)
        policy.enforce_image("get_image_location", image)
        policy.enforce_image("delete_image_location", image)
        self.locations.remove_copy(image, store_id, ctx.request_id)

    def locations_of(self, ctx: RequestContext, image_id: str) -> list[dict[str, Any]]:
        """``GET /v2/images/{id}/locations``: the complete copies (service role only)."""
        policy = self.policies.for_context(ctx)
        image = visible_image(self.images, policy, image_id)
        policy.enforce_image("fetch_image_location", image)
        return self.locations.complete(image)

    def add_location(self, ctx: RequestContext, image_id: str, body: Any) -> Image:
        """``POST /v2/images/{id}/locations``: a service adds bytes already in one of our stores to a queued
        image; the import worker reads them, checks size, format and ``validation_data``, then activates it."""
        if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
            raise InvalidInputError("'url' is required.")
        validation = read_validation_data(body.get("validation_data"))
        policy = self.policies.for_context(ctx)
        image = visible_image(self.images, policy, image_id)
        if image.status is not ImageStatus.QUEUED:
            raise ConflictError(detail=f"It's not allowed to add locations if image status is {image.status.value}.")
        policy.enforce_image("add_image_location", image)
        if "service" not in ctx.roles | ctx.service_roles:
            # Glance lets other callers add only http-store URLs; this service has no http store.
            raise ForbiddenError(detail="Only the service role may add locations: this cloud has no http store.")
        return self.locations.add(image, body["url"], validation, ctx.request_id)
