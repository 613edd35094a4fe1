"""The DynamoDB task repository (pynamodb): task records in the images table (docs/data-model.md, "Tasks").

Every change is one transaction of three items, all carrying the TTL attribute ``expires_at`` (epoch seconds) so
DynamoDB removes them after ``task_time_to_live``: the task (``TASK#<id>`` / ``TASK``, guarded by ``version``, in
its owner's list partition), its entry in the partition of every task (``TASK#<id>`` / ``LIST#all``), and a pointer
next to its image (``IMG#<image id>`` / ``TASK#<id>``), so ``GET /v2/images/{id}/tasks`` is one Query on the image's
partition and one BatchGetItem.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from shared.data.dynamodb.table import ALL_TASKS_SK, TASK_PREFIX, TASK_SK, TableModels, image_pk, task_pk
from shared.data.list_index import ALL_TASKS_PARTITION, task_partition, task_sort_values
from shared.data.paging import MAX_BATCH
from shared.data.tasks import TaskRepository
from shared.domain.errors import ConcurrentUpdateError, DuplicateError
from shared.domain.task import Task, TaskStatus
from shared.resources import LIST_PARTITION_ATTR, sort_attr


class DynamoTaskRepository(TaskRepository):
    """Tasks in the DynamoDB table of ``models``."""

    def __init__(self, models: TableModels, ttl: timedelta) -> None:
        super().__init__(ttl)
        self._models = models

    def _get(self, task_id: str) -> Task | None:
        item = self._models.read(self._models.task, task_pk(task_id), TASK_SK)
        return None if item is None else _to_task(item)

    def _put(self, task: Task, new: bool) -> Task:
        stored = dataclasses.replace(task, version=task.version + 1, events=[])
        ttl = int(self.expiry(stored).timestamp())
        sorts = {sort_attr(k): v for k, v in task_sort_values(stored).items()}
        item = self._to_item(stored, None if new else task.version)
        item.expires_at = ttl
        setattr(item, LIST_PARTITION_ATTR, task_partition(stored.owner))
        for name, value in sorts.items():
            setattr(item, name, value)
        entry = self._models.entry(task_pk(task.id), ALL_TASKS_SK, expires_at=ttl)
        setattr(entry, LIST_PARTITION_ATTR, ALL_TASKS_PARTITION)
        for name, value in sorts.items():
            setattr(entry, name, value)
        try:
            with TransactWrite(connection=self._models.connection) as tx:
                tx.save(item, condition=self._models.task.pk.does_not_exist() if new else None)
                tx.save(entry)
                if stored.image_id:
                    pointer = self._models.pointer(image_pk(stored.image_id), task_pk(task.id), expires_at=ttl)
                    tx.save(pointer)
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                if new:
                    raise DuplicateError(id=task.id) from exc
                raise ConcurrentUpdateError(image_id=f"(task {task.id})") from exc
            raise
        return stored

    def _for_image(self, image_id: str) -> list[Task]:
        pointer = self._models.pointer
        ids = [p.sk[len(TASK_PREFIX) :] for p in pointer.query(image_pk(image_id), pointer.sk.startswith(TASK_PREFIX))]
        tasks: list[Task] = []
        for start in range(0, len(ids), MAX_BATCH):
            tasks.extend(self._get_many(ids[start : start + MAX_BATCH]).values())
        return tasks

    def _scan(self, partition: str, sort_key: str, descending: bool, after: str | None, page: int) -> Iterator[str]:
        for _, pk in self._models.query_index(partition, sort_key, descending, after, page):
            yield pk[len(TASK_PREFIX) :]

    def _get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        keys = [(task_pk(i), TASK_SK) for i in dict.fromkeys(task_ids)]
        return {item.id: _to_task(item) for item in self._models.task.batch_get(keys, consistent_read=True)}

    def _to_item(self, task: Task, version: int | None) -> Any:
        item = self._models.task(task_pk(task.id), TASK_SK)
        if version is not None:
            item.version = version
        item.id = task.id
        item.task_type = task.type
        item.owner = task.owner
        item.status = task.status.value
        item.task_input = json.dumps(task.input)
        item.result = None if task.result is None else json.dumps(task.result)
        item.message = task.message
        item.image_id = task.image_id
        item.request_id = task.request_id
        item.user_id = task.user_id
        item.task_expires_at = None if task.expires_at is None else task.expires_at.isoformat()
        item.created_at = task.created_at.isoformat()
        item.updated_at = task.updated_at.isoformat()
        return item


def _to_task(item: Any) -> Task:
    return Task(
        id=item.id,
        type=item.task_type,
        owner=item.owner,
        status=TaskStatus(item.status),
        input=json.loads(item.task_input),
        result=None if item.result is None else json.loads(item.result),
        message=item.message or "",
        image_id=item.image_id,
        request_id=item.request_id,
        user_id=item.user_id,
        expires_at=None if item.task_expires_at is None else datetime.fromisoformat(item.task_expires_at),
        created_at=datetime.fromisoformat(item.created_at),
        updated_at=datetime.fromisoformat(item.updated_at),
        version=int(item.version),
    )
