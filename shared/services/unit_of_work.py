"""The unit of work: the one way a use case loads, changes and writes an image or a task.

It loads an aggregate and notes what it counted toward its owner's quota, writes it with the optimistic-lock
condition on the version it was read at (and, for images, the quota counter updates of the change in the same
transaction), and publishes the events the aggregate's methods recorded only once the write has committed. Two
ways to write:

- ``commit(aggregate)``: write what the caller read and changed, once; a concurrent change raises
  ``ConcurrentUpdateError`` (409), as the API answers a raced request.
- ``update(key, change)``: read, apply ``change``, write; on a lost race read again and re-apply, up to
  ``attempts`` times (then ``ConcurrentUpdateError``). A ``change`` that leaves the aggregate as it was writes
  nothing. Workers use this: their changes are decisions taken on the fresh state, so re-applying is safe.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, TypeVar

from shared.data.base import CounterLimitError, ImageRepository
from shared.domain.errors import ConcurrentUpdateError
from shared.domain.image import Image
from shared.domain.quota import contribution
from shared.domain.task import Task

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.data.tasks import TaskRepository
    from shared.notifications.events import Events
    from shared.quota.ledger import QuotaLedger

A = TypeVar("A", Image, Task)
R = TypeVar("R")


class UnitOfWork(ABC, Generic[A]):
    """Loads, writes and publishes one kind of aggregate; see the module docstring."""

    def __init__(self, events: Events, attempts: int) -> None:
        self.events = events
        self.attempts = attempts

    def get(self, key: str) -> A:
        """Load the aggregate for a change (NotFoundError when there is none)."""
        return self._tracked(self._read(key))

    def add(self, aggregate: A, request_id: str | None = None) -> A:
        """Store a new aggregate and publish its events (DuplicateError if its id was ever used)."""
        events = aggregate.take_events()
        stored = self._tracked(self._insert(aggregate))
        self.events.publish(stored, events, request_id)
        return stored

    def commit(self, aggregate: A, request_id: str | None = None) -> A:
        """Write a loaded aggregate's changes once, then publish its events; returns it as stored."""
        events = aggregate.take_events()
        stored = self._tracked(self._write(aggregate))
        self.events.publish(stored, events, request_id)
        return stored

    def update(self, key: str, change: Callable[[A], R], request_id: str | None = None) -> R:
        """Load, apply ``change`` and commit, again on a fresh read after a lost race; returns what ``change``
        returned (of the attempt that was written). NotFoundError when the aggregate is gone."""
        for attempt in range(1, self.attempts + 1):
            aggregate = self.get(key)
            before = copy.deepcopy(aggregate)
            result = change(aggregate)
            if aggregate == before and not aggregate.events:
                return result
            try:
                self.commit(aggregate, request_id)
            except ConcurrentUpdateError:
                if attempt == self.attempts:
                    raise
                continue
            return result
        raise ConcurrentUpdateError(image_id=key)  # attempts < 1; the settings refuse that

    def _tracked(self, aggregate: A) -> A:
        return aggregate

    @abstractmethod
    def _read(self, key: str) -> A:
        """Read one aggregate."""

    @abstractmethod
    def _insert(self, aggregate: A) -> A:
        """Insert a new aggregate."""

    @abstractmethod
    def _write(self, aggregate: A) -> A:
        """Conditionally write a changed aggregate."""


class ImageUnitOfWork(UnitOfWork[Image]):
    """Images, with their quota counter updates joining each write."""

    def __init__(self, repo: ImageRepository, quota: QuotaLedger, events: Events, attempts: int) -> None:
        super().__init__(events, attempts)
        self.repo = repo
        self.quota = quota

    def _tracked(self, image: Image) -> Image:
        # What the image counts now; the next write counts the difference (shared/domain/quota.py).
        image.counted = (image.owner, contribution(image))
        return image

    def _read(self, key: str) -> Image:
        return self.repo.get(key)

    def _insert(self, image: Image) -> Image:
        return self._counted(image, self.repo.add)

    def _write(self, image: Image) -> Image:
        assert image.counted is not None, "an image is written through the unit of work that loaded it"
        image.touch()
        return self._counted(image, self.repo.save)

    def _counted(self, image: Image, write: Callable[..., Image]) -> Image:
        self.quota.check_image(image)
        usage = self.quota.usage_changes(image)
        try:
            return write(image, self.quota.counter_updates(usage))
        except CounterLimitError:
            raise self.quota.explain(usage) from None


class TaskUnitOfWork(UnitOfWork[Task]):
    """Task records."""

    def __init__(self, repo: TaskRepository, events: Events, attempts: int) -> None:
        super().__init__(events, attempts)
        self.repo = repo

    def _read(self, key: str) -> Task:
        return self.repo.get(key)

    def _insert(self, task: Task) -> Task:
        return self.repo.add(task)

    def _write(self, task: Task) -> Task:
        return self.repo.save(task)
