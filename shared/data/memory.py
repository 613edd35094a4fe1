"""An in-memory image repository for fast unit tests (the DynamoDB one is tested against moto server)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Sequence

from shared.data.base import ImageRepository
from shared.domain.errors import ConcurrentUpdateError, DuplicateError, NotFoundError
from shared.domain.image import Image
from shared.domain.listing import partitions_of, sort_value


class MemoryImageRepository(ImageRepository):
    """Keeps images in a dict; same semantics as the DynamoDB repository, including versions and tombstones."""

    def __init__(self) -> None:
        self._images: dict[str, Image] = {}
        self._lock = threading.Lock()

    def _get(self, image_id: str) -> Image | None:
        with self._lock:
            image = self._images.get(image_id)
            return copy.deepcopy(image) if image else None

    def _add(self, image: Image) -> Image:
        with self._lock:
            if image.id in self._images:
                raise DuplicateError(id=image.id)
            stored = copy.deepcopy(image)
            stored.version = 1
            stored.removed_members = set()
            self._images[image.id] = stored
            return copy.deepcopy(stored)

    def _save(self, image: Image) -> Image:
        with self._lock:
            current = self._images.get(image.id)
            if current is None:
                raise NotFoundError(kind="image", id=image.id)
            if current.version != image.version:
                raise ConcurrentUpdateError(image_id=image.id)
            stored = copy.deepcopy(image)
            stored.version += 1
            stored.removed_members = set()
            self._images[image.id] = stored
            return copy.deepcopy(stored)

    def _scan(
        self, partition: str, sort_key: str, descending: bool, after: str | None, page_size: int
    ) -> Iterator[tuple[str, str]]:
        with self._lock:
            entries = sorted(
                (sort_value(img, sort_key), img.id)
                for img in self._images.values()
                if not img.is_deleted() and partition in partitions_of(img)
            )
        if descending:
            entries.reverse()
        for value, image_id in entries:
            if after is None or (value < after if descending else value > after):
                yield value, image_id

    def _get_many(self, image_ids: Sequence[str]) -> dict[str, Image]:
        with self._lock:
            return {i: copy.deepcopy(self._images[i]) for i in image_ids if i in self._images}
