"""The image catalogue: reading, listing, creating, writing and deleting images (the rest of ``/v2/images``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.errors import InvalidMarkerError, NotFoundError
from shared.domain.listing import ImageQuery, Page, can_see

if TYPE_CHECKING:
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.services.replication import Replicator
    from shared.services.unit_of_work import ImageUnitOfWork


@dataclass
class ImageService:
    """Images as the API sees them; every write goes through the unit of work (and publishes its events)."""

    uow: ImageUnitOfWork
    replicator: Replicator

    def get(self, image_id: str) -> Image:
        """The image, loaded for a change (NotFoundError when no image ever had this id)."""
        return self.uow.get(image_id)

    def list(self, query: ImageQuery) -> Page[Image]:
        """One page of images."""
        return self.uow.repo.list(query)

    def marker(self, ctx: RequestContext, admin: bool, marker: str) -> Image:
        """The image a page starts after (400 when the caller cannot see it)."""
        try:
            image = self.uow.repo.get(marker)
        except NotFoundError:
            image = None
        if image is None or not can_see(ctx, image, admin):
            raise InvalidMarkerError(marker=marker)
        return image

    def add(self, image: Image, request_id: str | None = None) -> Image:
        """Store a new image (image.create)."""
        return self.uow.add(image, request_id)

    def commit(self, image: Image, request_id: str | None = None) -> Image:
        """Write the changes made to a loaded image (409 if it changed meanwhile) and publish their events."""
        return self.uow.commit(image, request_id)

    def delete(self, image: Image, request_id: str | None = None) -> None:
        """Leave a tombstone (protected images are 403) and queue the deletion of the bytes in every store; the
        tombstone lists each copy until its bytes are gone."""
        image.delete()
        self.uow.commit(image, request_id)
        self.replicator.purge(image.id, image.locations)
