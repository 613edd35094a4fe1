"""Stores and locations: the store list (``/v2/info/stores``), one store's copy of an image removed
(``DELETE /v2/stores/{store}/{image}``), and the service-only locations API (``/v2/images/{id}/locations``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.domain.errors import ConflictError, InvalidInputError
from shared.domain.upload import UploadMethod, UploadPlan
from shared.jobs import ImportJob

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.domain.image import Image
    from shared.queues import WorkQueue
    from shared.services.replication import Replicator
    from shared.services.unit_of_work import ImageUnitOfWork
    from shared.services.upload_sessions import UploadSessions

# validation_data of POST /locations: algorithm -> hex digest length (Glance accepts these four).
_HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def read_validation_data(raw: Any) -> dict[str, str] | None:
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


@dataclass
class Locations:
    """Stores and image locations; every image passed in was loaded for a change and authorised."""

    uow: ImageUnitOfWork
    sessions: UploadSessions
    replicator: Replicator
    queue: WorkQueue
    settings: Settings

    def stores(self) -> list[dict[str, Any]]:
        """Every store, the default (primary) one marked."""
        stores = self.replicator.stores
        listed = []
        for store_id, config in stores.configs.items():
            entry: dict[str, Any] = {"id": store_id}
            if config.description:
                entry["description"] = config.description
            if store_id == stores.primary_id:
                entry["default"] = "true"
            listed.append(entry)
        return listed

    def stores_detail(self) -> list[dict[str, Any]]:
        """Every store with its type, weight and driver properties."""
        stores = self.replicator.stores
        detailed = []
        for entry in self.stores():
            config = stores.config(entry["id"])
            driver = stores.driver(entry["id"])
            detailed.append({**entry, "type": config.type, "weight": config.weight, "properties": driver.properties()})
        return detailed

    def check_store(self, store_id: str) -> None:
        """409 for a store this service does not have."""
        if store_id not in self.replicator.stores:
            raise ConflictError(detail=f"The selected store {store_id} is not available on this node.")

    def remove_copy(self, image: Image, store_id: str, request_id: str | None = None) -> None:
        """Drop one store's copy (not the last one: 403); store_sync deletes its bytes."""
        location = image.remove_copy(store_id)
        self.uow.commit(image, request_id)
        self.replicator.purge(image.id, [location])

    def complete(self, image: Image) -> list[dict[str, Any]]:
        """The image's complete copies, with their URLs."""
        return [
            {"url": loc.url, "metadata": {"store": loc.store}}
            for loc in image.locations
            if loc.url and loc.status.value == "active"
        ]

    def owner_of(self, url: str) -> str:
        """The store holding ``url`` (400 when it is in none of ours)."""
        stores = self.replicator.stores
        store = next((s for s in stores.ids if stores.driver(s).owns(url)), None)
        if store is None:
            raise InvalidInputError("The URL is not in any store of this service.")
        return store

    def add(self, image: Image, url: str, validation: dict[str, str] | None, request_id: str | None = None) -> Image:
        """A service's bytes already in one of our stores become the data of a queued image: the import worker
        reads them, checks size, format and ``validation_data``, then activates it."""
        store = self.owner_of(url)
        plan = UploadPlan(UploadMethod.LOCATION, self.settings.multipart_part_size, 1)
        session = self.sessions.new(image.id, plan, None)
        image.start_import("location", session)
        saved = self.uow.commit(image, request_id)
        job = ImportJob("location", image.id, session.id, request_id, store=store, url=url, validation_data=validation)
        self.queue.send(job)
        return saved
