"""Tasks: the records imports leave behind (Glance's glance/domain Task), pending -> processing -> success|failure."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.domain.errors import ConflictError
from shared.domain.events import DomainEvent, EventRecorder, TaskChanged
from shared.domain.limits import check_task_input_size

# api_image_import: every POST /v2/images/{id}/import; import: the legacy POST /v2/tasks type.
TASK_TYPES = ("import", "api_image_import", "location_import")


class TaskStatus(StrEnum):
    """Glance's task statuses."""

    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILURE = "failure"


T = TaskStatus
TASK_TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    T.PENDING: frozenset({T.PROCESSING, T.FAILURE}),
    T.PROCESSING: frozenset({T.SUCCESS, T.FAILURE}),
    T.SUCCESS: frozenset(),
    T.FAILURE: frozenset(),
}


class InvalidTaskTransitionError(ConflictError):
    """The task status change is not in the table."""

    template = "Task status transition from {current} to {target} is not allowed"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Task(EventRecorder):
    """One task record; status changes only through the methods below, which record Glance's task events."""

    id: str
    type: str
    owner: str | None
    status: TaskStatus = TaskStatus.PENDING
    input: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    message: str = ""
    image_id: str | None = None
    request_id: str | None = None
    user_id: str | None = None
    expires_at: datetime | None = None
    created_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)
    version: int = 0
    # Events recorded since the task was read, published by the unit of work after the next write; not stored.
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def new(
        cls,
        task_type: str,
        owner: str | None,
        task_input: dict[str, Any],
        image_id: str | None,
        request_id: str | None,
        user_id: str | None,
    ) -> Task:
        """A pending task.

        Raises:
            LimitExceededError: the input would take more than ``TASK_INPUT_BYTES`` in the task's item (413).
        """
        check_task_input_size(task_input)
        now = _now()
        task = cls(
            id=str(uuid.uuid4()),
            type=task_type,
            owner=owner,
            input=dict(task_input),
            image_id=image_id,
            request_id=request_id,
            user_id=user_id,
            created_at=now,
            updated_at=now,
        )
        task.record(TaskChanged("task.create"))
        task.record(TaskChanged("task.run"))
        return task

    def _move(self, target: TaskStatus) -> None:
        if target not in TASK_TRANSITIONS[self.status]:
            raise InvalidTaskTransitionError(current=self.status.value, target=target.value)
        self.status = target
        self.updated_at = _now()

    def begin_processing(self) -> None:
        """pending -> processing."""
        self._move(TaskStatus.PROCESSING)
        self.record(TaskChanged("task.processing"))

    def succeed(self, result: dict[str, Any], ttl: timedelta) -> None:
        """processing -> success; the record expires ``ttl`` after (Glance's task_time_to_live)."""
        self._move(TaskStatus.SUCCESS)
        self.result = dict(result)
        self.expires_at = self.updated_at + ttl
        self.record(TaskChanged("task.success"))

    def finish(self, result: dict[str, Any], ttl: timedelta) -> None:
        """pending or processing -> success: a pending task passes through processing without its event."""
        if self.status is TaskStatus.PENDING:
            self._move(TaskStatus.PROCESSING)
        self.succeed(result, ttl)

    def fail(self, message: str, ttl: timedelta) -> None:
        """pending or processing -> failure, with the reason."""
        self._move(TaskStatus.FAILURE)
        self.message = message
        self.expires_at = self.updated_at + ttl
        self.record(TaskChanged("task.failure"))

    @property
    def finished(self) -> bool:
        """Success or failure."""
        return self.status in (TaskStatus.SUCCESS, TaskStatus.FAILURE)

    def expired(self, now: datetime | None = None) -> bool:
        """Past ``expires_at`` (DynamoDB's TTL deletes such items within days; reads hide them at once)."""
        return self.expires_at is not None and self.expires_at < (now or _now())
