"""In-memory image and task repositories for fast unit tests (the DynamoDB ones are tested against moto server).

Same semantics as the DynamoDB repositories: versions, tombstones, list partitions and orders. They take no quota
counter updates: a unit test that needs quotas runs against moto.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Iterator, Sequence
from datetime import timedelta

from shared.data.base import CounterUpdate, ImageRepository
from shared.data.list_index import (
    ALL_TASKS_PARTITION,
    partitions_of,
    sort_value,
    sweep_entry,
    task_partition,
    task_sort_value,
)
from shared.data.metadef_items import Check, ConditionFailedError, Delete, Item, ItemStore, Op, Put
from shared.data.tasks import TaskRepository
from shared.domain.errors import ConcurrentUpdateError, DuplicateError, NotFoundError
from shared.domain.image import Image
from shared.domain.task import Task


def _in_order(entries: list[tuple[str, str]], descending: bool, after: str | None) -> Iterator[tuple[str, str]]:
    entries.sort(reverse=descending)
    for value, item_id in entries:
        if after is None or (value < after if descending else value > after):
            yield value, item_id


class MemoryImageRepository(ImageRepository):
    """Keeps images in a dict."""

    def __init__(self) -> None:
        self._images: dict[str, Image] = {}
        self._lock = threading.Lock()

    def _get(self, image_id: str) -> Image | None:
        with self._lock:
            image = self._images.get(image_id)
            return copy.deepcopy(image) if image else None

    def _add(self, image: Image, counters: Sequence[CounterUpdate]) -> Image:
        _refuse(counters)
        with self._lock:
            if image.id in self._images:
                raise DuplicateError(id=image.id)
            return self._store(image, 1)

    def _save(self, image: Image, counters: Sequence[CounterUpdate]) -> Image:
        _refuse(counters)
        with self._lock:
            current = self._images.get(image.id)
            if current is None:
                raise NotFoundError(kind="image", id=image.id)
            if current.version != image.version:
                raise ConcurrentUpdateError(image_id=image.id)
            return self._store(image, image.version + 1)

    def _store(self, image: Image, version: int) -> Image:
        stored = copy.deepcopy(image)
        stored.version = version
        stored.removed_members = set()
        stored.events = []
        self._images[image.id] = stored
        return copy.deepcopy(stored)

    def _scan(
        self, partition: str, sort_key: str, descending: bool, after: str | None, page_size: int
    ) -> Iterator[tuple[str, str]]:
        with self._lock:
            entries = [
                (sort_value(img, sort_key), img.id)
                for img in self._images.values()
                if not img.is_deleted() and partition in partitions_of(img)
            ]
        return _in_order(entries, descending, after)

    def _get_many(self, image_ids: Sequence[str]) -> dict[str, Image]:
        with self._lock:
            return {i: copy.deepcopy(self._images[i]) for i in image_ids if i in self._images}

    def _overdue(self, partition: str, before: str, limit: int) -> list[tuple[str, str]]:
        with self._lock:
            entries = [(entry, img.id) for img in self._images.values() if (entry := sweep_entry(img)) is not None]
        due = sorted((value, image_id) for (part, value), image_id in entries if part == partition and value <= before)
        return due[:limit]


class MemoryTaskRepository(TaskRepository):
    """Keeps tasks in a dict."""

    def __init__(self, ttl: timedelta = timedelta(hours=48)) -> None:
        super().__init__(ttl)
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def _get(self, task_id: str) -> Task | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return None if task is None else _copy(task)

    def _put(self, task: Task, new: bool) -> Task:
        with self._lock:
            current = self._tasks.get(task.id)
            if new and current is not None:
                raise DuplicateError(id=task.id)
            if not new and (current is None or current.version != task.version):
                raise ConcurrentUpdateError(image_id=f"(task {task.id})")
            stored = dataclasses.replace(_copy(task), version=task.version + 1)
            self._tasks[task.id] = stored
            return _copy(stored)

    def _for_image(self, image_id: str) -> list[Task]:
        with self._lock:
            return [_copy(t) for t in self._tasks.values() if t.image_id == image_id]

    def _scan(self, partition: str, sort_key: str, descending: bool, after: str | None, page: int) -> Iterator[str]:
        with self._lock:
            entries = [
                (task_sort_value(t, sort_key), t.id)
                for t in self._tasks.values()
                if partition in (ALL_TASKS_PARTITION, task_partition(t.owner))
            ]
        return (task_id for _, task_id in _in_order(entries, descending, after))

    def _get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        with self._lock:
            return {i: _copy(self._tasks[i]) for i in task_ids if i in self._tasks}


def _copy(task: Task) -> Task:
    return dataclasses.replace(copy.deepcopy(task), events=[])


def _refuse(counters: Sequence[CounterUpdate]) -> None:
    if counters:
        raise TypeError("the in-memory repository keeps no quota counters")


class MemoryItemStore(ItemStore):
    """The metadata definitions catalog's items in a dict (``shared/data/metadef_items.py``), with DynamoDB's semantics:
    keyed items, ``sk``-ordered partitions, sparse list indexes and all-or-nothing conditional writes."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, str], Item] = {}
        self._lock = threading.Lock()

    def get(self, pk: str, sk: str) -> Item | None:
        with self._lock:
            item = self._items.get((pk, sk))
            return copy.deepcopy(item)

    def query(self, pk: str, sk_prefix: str = "") -> list[Item]:
        with self._lock:
            found = [i for (p, s), i in self._items.items() if p == pk and s.startswith(sk_prefix)]
            return copy.deepcopy(sorted(found, key=lambda i: i.sk))

    def index(
        self, partition: str, sort_key: str, descending: bool, after: str | None, page_size: int
    ) -> Iterator[tuple[str, str]]:
        with self._lock:
            entries = [
                (i.sorts[sort_key], i.pk) for i in self._items.values() if i.lp == partition and sort_key in i.sorts
            ]
        yield from _in_order(entries, descending, after)

    def batch_get(self, keys: Sequence[tuple[str, str]]) -> list[Item]:
        with self._lock:
            return [copy.deepcopy(self._items[k]) for k in dict.fromkeys(keys) if k in self._items]

    def write(self, ops: Sequence[Op]) -> None:
        with self._lock:
            for position, op in enumerate(ops):
                key = (op.item.pk, op.item.sk) if isinstance(op, Put) else (op.pk, op.sk)
                current = self._items.get(key)
                if op.expect == 0 and current is not None:
                    raise ConditionFailedError(position)
                if isinstance(op, Check) and current is None:
                    raise ConditionFailedError(position)
                if op.expect and (current is None or current.version != op.expect):
                    raise ConditionFailedError(position)
            for op in ops:
                if isinstance(op, Put):
                    self._items[(op.item.pk, op.item.sk)] = copy.deepcopy(op.item)
                elif isinstance(op, Delete):
                    self._items.pop((op.pk, op.sk), None)
