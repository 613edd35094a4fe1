"""Stores: discovery (``/v2/info/stores``), deleting one store's copy, and the service-only locations API."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from functions.api.controllers import visible_image
from shared.config import Settings
from shared.data.base import ImageRepository
from shared.domain.context import RequestContext
from shared.domain.errors import ConflictError, ForbiddenError, InvalidInputError
from shared.domain.image import Image, ImageStatus, utcnow
from shared.domain.upload import UploadMethod, UploadPlan, UploadSession
from shared.policy import ImagePolicy
from shared.queues import WorkQueue

if TYPE_CHECKING:
    from shared.services.replication import Replicator

# validation_data of POST /locations: algorithm -> hex digest length (Glance accepts these four).
_HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


class StoresController:
    """Use cases of the store routes."""

    def __init__(
        self, repo: ImageRepository, settings: Settings, replicator: Replicator, import_queue: WorkQueue
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.replicator = replicator
        self.import_queue = import_queue

    def stores(self) -> list[dict[str, Any]]:
        """``GET /v2/info/stores``: every store, the default (primary) one marked."""
        listed = []
        for store_id, config in self.replicator.stores.configs.items():
            entry: dict[str, Any] = {"id": store_id}
            if config.description:
                entry["description"] = config.description
            if store_id == self.replicator.stores.primary_id:
                entry["default"] = "true"
            listed.append(entry)
        return listed

    def stores_detail(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """``GET /v2/info/stores/detail``: adds type, weight and driver properties (``stores_info_detail``)."""
        ImagePolicy.for_settings(ctx, self.settings).enforce("stores_info_detail")
        detailed = []
        for entry in self.stores():
            config = self.replicator.stores.config(entry["id"])
            driver = self.replicator.stores.driver(entry["id"])
            detailed.append({**entry, "type": config.type, "weight": config.weight, "properties": driver.properties()})
        return detailed

    def delete_from_store(self, ctx: RequestContext, store_id: str, image_id: str) -> None:
        """``DELETE /v2/stores/{store_id}/{image_id}``: drop one copy (not the last one: 403)."""
        if store_id not in self.replicator.stores:
            raise ConflictError(detail=f"The selected store {store_id} is not available on this node.")
        image, policy = visible_image(self.repo, self.settings, ctx, image_id)
        policy.enforce_image("get_image_location", image)
        policy.enforce_image("delete_image_location", image)
        location = image.remove_copy(store_id)
        image.touch()
        self.repo.save(image)
        self.replicator.purge(image.id, [location])

    def locations(self, ctx: RequestContext, image_id: str) -> list[dict[str, Any]]:
        """``GET /v2/images/{id}/locations``: the complete copies (service role only)."""
        image, policy = visible_image(self.repo, self.settings, ctx, image_id)
        policy.enforce_image("fetch_image_location", image)
        return [
            {"url": loc.url, "metadata": {"store": loc.store}}
            for loc in image.locations
            if loc.url and loc.status.value == "active"
        ]

    def add_location(self, ctx: RequestContext, image_id: str, body: Any, request_id: str) -> Image:
        """``POST /v2/images/{id}/locations``: a service adds bytes already in one of our stores to a queued
        image; the import worker reads them, checks size, format and ``validation_data``, then activates it."""
        if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
            raise InvalidInputError("'url' is required.")
        url: str = body["url"]
        validation = _validation_data(body.get("validation_data"))
        image, policy = visible_image(self.repo, self.settings, ctx, image_id)
        if image.status is not ImageStatus.QUEUED:
            raise ConflictError(detail=f"It's not allowed to add locations if image status is {image.status.value}.")
        policy.enforce_image("add_image_location", image)
        if "service" not in ctx.roles | ctx.service_roles:
            # Glance lets other callers add only http-store URLs; this service has no http store.
            raise ForbiddenError(detail="Only the service role may add locations: this cloud has no http store.")
        store = next((s for s in self.replicator.stores.ids if self.replicator.stores.driver(s).owns(url)), None)
        if store is None:
            raise InvalidInputError("The URL is not in any store of this service.")
        plan = UploadPlan(UploadMethod.LOCATION, self.settings.multipart_part_size, 1)
        session = UploadSession.new(
            image.id, plan, size=None, now=utcnow(), ttl=timedelta(seconds=self.settings.upload_session_ttl_seconds)
        )
        image.start_import("location", session)
        image.touch()
        self.repo.save(image)
        job: dict[str, Any] = {
            "method": "location",
            "image_id": image.id,
            "session_id": session.id,
            "store": store,
            "url": url,
            "request_id": request_id,
        }
        if validation is not None:
            job["validation_data"] = validation
        self.import_queue.send(job)
        return image


def _validation_data(raw: Any) -> dict[str, str] | None:
    """Glance's checks of ``validation_data`` (400 for an unknown algorithm or a malformed digest)."""
    if raw is None or raw == {}:
        return None
    if not isinstance(raw, dict):
        raise InvalidInputError("'validation_data' must be an object.")
    algo, value = raw.get("os_hash_algo"), raw.get("os_hash_value")
    if not isinstance(algo, str) or algo not in _HASH_LENGTHS:
        raise InvalidInputError(f"os_hash_algo must be one of: {', '.join(_HASH_LENGTHS)}")
    if not isinstance(value, str) or len(value) != _HASH_LENGTHS[algo] or not _HEX.match(value):
        raise InvalidInputError(f"os_hash_value: not a valid {algo} digest")
    return {"os_hash_algo": algo, "os_hash_value": value.lower()}
