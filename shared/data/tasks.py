"""The task repository interface: task records, their lookup per image, and paging (docs/data-model.md, "Tasks")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from shared.data.list_index import task_partition, task_sort_value
from shared.data.paging import MAX_QUERY_PAGE, collect_page
from shared.domain.errors import NotFoundError
from shared.domain.listing import Page, TaskQuery
from shared.domain.task import Task


class TaskRepository(ABC):
    """Stores tasks; every change is conditional on the version read."""

    def __init__(self, ttl: timedelta) -> None:
        self.ttl = ttl

    def expiry(self, task: Task) -> datetime:
        """When the records go: ``expires_at`` once finished, else ``ttl`` after the last change."""
        return task.expires_at or task.updated_at + self.ttl

    def get(self, task_id: str, now: datetime | None = None) -> Task:
        """The task; an expired one is gone even before DynamoDB's TTL removes it.

        Raises:
            NotFoundError: no such task, or it expired.
        """
        task = self._get(task_id)
        if task is None or task.expired(now):
            raise NotFoundError(kind="task", id=task_id)
        return task

    def add(self, task: Task) -> Task:
        """Store a new task.

        Raises:
            DuplicateError: the id is taken.
        """
        return self._put(task, new=True)

    def save(self, task: Task) -> Task:
        """Store a change of a task read from here; returns it with its new version.

        Raises:
            ConcurrentUpdateError: another writer changed it since it was read.
        """
        return self._put(task, new=False)

    def for_image(self, image_id: str, now: datetime | None = None) -> list[Task]:
        """The unexpired tasks of one image, oldest first."""
        tasks = [t for t in self._for_image(image_id) if not t.expired(now)]
        return sorted(tasks, key=lambda t: (t.created_at, t.id))

    def list_page(self, query: TaskQuery, now: datetime | None = None) -> Page[Task]:
        """One page in the query's order; reads at most ``limit`` + ``budget`` index entries."""
        after = task_sort_value(query.marker, query.sort_key) if query.marker is not None else None
        page_size = min(query.limit + 1, MAX_QUERY_PAGE)
        ids = self._scan(task_partition(query.owner), query.sort_key, query.descending, after, page_size)
        return collect_page(ids, self._get_many, lambda t: query.keeps(t, now), query.limit, query.limit + query.budget)

    # -- backend hooks ----------------------------------------------------------------------------

    @abstractmethod
    def _get(self, task_id: str) -> Task | None:
        """Read one task or None."""

    @abstractmethod
    def _put(self, task: Task, new: bool) -> Task:
        """Insert (``new``) or conditionally update on ``task.version``."""

    @abstractmethod
    def _for_image(self, image_id: str) -> list[Task]:
        """Every stored task of an image."""

    @abstractmethod
    def _scan(self, partition: str, sort_key: str, descending: bool, after: str | None, page: int) -> Iterator[str]:
        """Task ids of a list partition in order, strictly after ``after``."""

    @abstractmethod
    def _get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        """Up to ``MAX_BATCH`` tasks by id."""
