"""The image repository interface: reads, conditional writes, and the list algorithm every backend shares.

A backend implements the hooks ``_get``, ``_add``, ``_save``, and, for listing, ``_scan`` (walk one list
partition in order) and ``_get_many`` (fetch a batch of images by id). ``list`` reads the partitions of the
caller's query and pages them with ``shared/data/paging.py``, so its cost depends on the page size and the
budget, never on the table size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.data.list_index import deadline_value, image_partitions, sort_value
from shared.data.paging import MAX_QUERY_PAGE, collect_page, merged_ids
from shared.domain.errors import NotFoundError
from shared.domain.image import Image
from shared.domain.listing import ImageQuery, Page


@dataclass(frozen=True)
class CounterUpdate:
    """Deltas to one project's usage counters, written in the same transaction as an image: each increased counter
    must hold at most its ``ceilings`` value before the delta is added, else nothing of the write is stored."""

    project: str
    deltas: dict[str, int]
    ceilings: dict[str, int]


class CounterLimitError(Exception):
    """A counter update's condition failed (a limit would be passed); nothing of the write was stored."""


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

    def add(self, image: Image, counters: Sequence[CounterUpdate] = ()) -> Image:
        """Store a new image, with the counter updates that count it.

        Raises:
            DuplicateError: an image with this id exists or existed (ids are never reused).
            CounterLimitError: a counter update's condition failed.
        """
        return self._add(image, counters)

    def save(self, image: Image, counters: Sequence[CounterUpdate] = ()) -> Image:
        """Store changes to an image read from this repository, with their counter updates; returns it with its
        new version.

        Raises:
            ConcurrentUpdateError: the stored version is no longer the one ``image`` was read at.
            NotFoundError: the image is gone.
            CounterLimitError: a counter update's condition failed.
        """
        return self._save(image, counters)

    def list(self, query: ImageQuery) -> Page[Image]:
        """The page of images ``query`` asks for, in its order."""
        # One index page per partition usually fills a page: ask for limit + 1 entries to learn if more follow.
        page_size = min(query.limit + 1, MAX_QUERY_PAGE)
        key, descending = query.sort.key, query.sort.descending
        after = sort_value(query.marker, key) if query.marker is not None else None
        partitions = image_partitions(query.ctx, query.admin, query.filters)
        streams = [self._scan(p, key, descending, after, page_size) for p in partitions]
        return collect_page(merged_ids(streams, descending), self._get_many, query.keeps, query.limit, query.budget)

    def overdue(self, now: datetime, limit: int) -> Sequence[str]:
        """Ids of in-flight images (saving, uploading, importing) whose deadline is past ``now``, earliest first, at
        most ``limit``: one index page per sweep partition, whatever the table holds (docs/data-model.md)."""
        from shared.resources import SWEEP_PARTITIONS

        before = deadline_value(now)
        found: list[tuple[str, str]] = []
        for partition in SWEEP_PARTITIONS:
            found.extend(self._overdue(partition, before, limit))
        found.sort()
        return list(dict.fromkeys(image_id for _, image_id in found))[:limit]

    # -- backend hooks ----------------------------------------------------------------------------

    @abstractmethod
    def _overdue(self, partition: str, before: str, limit: int) -> Sequence[tuple[str, str]]:
        """At most ``limit`` ``(encoded deadline, image id)`` of one sweep partition with deadlines at or before
        ``before``, earliest first."""

    @abstractmethod
    def _get(self, image_id: str) -> Image | None:
        """Read one image or None."""

    @abstractmethod
    def _add(self, image: Image, counters: Sequence[CounterUpdate]) -> Image:
        """Insert unless the id was ever used."""

    @abstractmethod
    def _save(self, image: Image, counters: Sequence[CounterUpdate]) -> Image:
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
