"""The image repository interface, and the list algorithm every backend shares.

A backend implements four hooks: ``_get``, ``_add``, ``_save`` and, for listing, ``_scan`` (walk one
partition's index in order) and ``_get_many`` (fetch a batch of images by id). ``list`` merges the
partitions of a ``ListPlan``, deduplicates, fetches candidates in batches and applies the plan's filters
within a fixed budget, so its cost depends on the page size and the budget, never on the table size.
"""

from __future__ import annotations

import heapq
import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shared.domain.errors import NotFoundError
from shared.domain.image import Image
from shared.domain.listing import ListPlan

# Largest batch a backend is asked for at once (DynamoDB BatchGetItem takes 100 keys).
MAX_BATCH = 100
# Largest index page asked for in one Query.
MAX_QUERY_PAGE = 1000


@dataclass(frozen=True)
class ListPage:
    """One page of a listing."""

    images: list[Image]
    # Id to pass as ``marker`` for the next page; None when nothing follows.
    next_marker: str | None


class ImageRepository(ABC):
    """Stores images; every write is conditional on the version the caller read."""

    def get(self, image_id: str) -> Image:
        """Return the image, tombstones included.

        Raises:
            NotFoundError: no image was ever stored with this id.
        """
        image = self._get(image_id)
        if image is None:
            raise NotFoundError(kind="image", id=image_id)
        return image

    def add(self, image: Image) -> Image:
        """Store a new image.

        Raises:
            DuplicateError: an image with this id exists or existed (ids are never reused).
        """
        return self._add(image)

    def save(self, image: Image) -> Image:
        """Store changes to an image read from this repository; returns it with its new version.

        Raises:
            ConcurrentUpdateError: the stored version is no longer the one ``image`` was read at.
            NotFoundError: the image is gone.
        """
        return self._save(image)

    def list(self, plan: ListPlan) -> ListPage:
        """The page of images ``plan`` asks for, in its order."""
        if plan.limit <= 0:
            # Glance answers limit=0 with an empty page and no next link.
            return ListPage([], None)
        # One index page per partition usually fills a page: ask for limit + 1 entries to learn if more follow.
        page_size = min(plan.limit + 1, MAX_QUERY_PAGE)
        streams = [self._scan(p, plan.sort.key, plan.sort.descending, plan.after, page_size) for p in plan.partitions]
        merged = heapq.merge(*streams, reverse=plan.sort.descending)
        candidates = _unique_ids(merged)
        kept: list[Image] = []
        scanned = 0
        budget = max(plan.budget, plan.limit)
        # The first batch is exactly what a page needs when nothing is filtered out; once a filter has
        # discarded candidates, later batches are full-size, so a sparse filter costs few round trips.
        want = plan.limit
        unread_in_batch = False
        last_scanned: str | None = None
        while len(kept) < plan.limit and scanned < budget:
            batch = list(itertools.islice(candidates, min(want, MAX_BATCH, budget - scanned)))
            if not batch:
                return ListPage(kept, None)
            found = self._get_many(batch)
            scanned += len(batch)
            for position, image_id in enumerate(batch):
                last_scanned = image_id
                image = found.get(image_id)
                if image is not None and plan.keeps(image):
                    kept.append(image)
                    if len(kept) == plan.limit:
                        # Candidates after this one in the batch are read again by the next page.
                        unread_in_batch = position < len(batch) - 1
                        break
            want = MAX_BATCH
        more = unread_in_batch or next(candidates, None) is not None
        return ListPage(kept, last_scanned if more else None)

    # -- backend hooks ----------------------------------------------------------------------------

    @abstractmethod
    def _get(self, image_id: str) -> Image | None:
        """Read one image or None."""

    @abstractmethod
    def _add(self, image: Image) -> Image:
        """Insert unless the id was ever used."""

    @abstractmethod
    def _save(self, image: Image) -> Image:
        """Conditional update on ``image.version``."""

    @abstractmethod
    def _scan(
        self, partition: str, sort_key: str, descending: bool, after: str | None, page_size: int
    ) -> Iterator[tuple[str, str]]:
        """Yield ``(sort value, image id)`` of one partition in order, strictly after ``after``, reading
        ``page_size`` entries per backend call."""

    @abstractmethod
    def _get_many(self, image_ids: Sequence[str]) -> dict[str, Image]:
        """Read up to ``MAX_BATCH`` images; absent ids are left out."""


def _unique_ids(merged: Iterator[tuple[str, str]]) -> Iterator[str]:
    """Drop repeats: an image in two partitions has the same sort value in both, so repeats are adjacent."""
    previous: str | None = None
    for _, image_id in merged:
        if image_id != previous:
            yield image_id
        previous = image_id
