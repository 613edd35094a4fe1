"""The task repository: task records in the images table (docs/data-model.md, "Tasks").

Items (string ``pk``/``sk``), all written in one transaction per change and all carrying the TTL attribute
``expires_at`` (epoch seconds) so DynamoDB removes them after ``task_time_to_live``:

- ``TASK#<id>`` / ``TASK``: the task, guarded by ``version`` (optimistic locking); ``lp`` = ``t#<owner>`` and
  ``s_<key>`` sort values put it in the owner's list partition of the ``list-<key>`` indexes.
- ``TASK#<id>`` / ``LIST#all``: the same sort values in the partition ``t#*`` (what an admin lists).
- ``IMG#<image id>`` / ``TASK#<id>``: a pointer next to the image, so ``GET /v2/images/{id}/tasks`` is one
  ``Query`` on the image's partition and one ``BatchGetItem``.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.errors import ConcurrentUpdateError, DuplicateError, NotFoundError
from shared.domain.task import Task, TaskStatus
from shared.resources import LIST_PARTITION_ATTR, index_name, sort_attr

TASK_SK = "TASK"
ALL_TASKS_PARTITION = "t#*"
# Sort keys /v2/tasks accepts (each has a list-<key> index); Glance also accepts the other columns.
TASK_SORT_KEYS = ("created_at", "updated_at", "id", "status")
MAX_BATCH = 100
TTL_ATTR = "expires_at"


def task_pk(task_id: str) -> str:
    """Partition key of a task."""
    return f"TASK#{task_id}"


def owner_partition(owner: str | None) -> str:
    """The list partition of one project's tasks."""
    return f"t#{owner or ''}"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def task_sort_value(task: Task, key: str) -> str:
    """Encoded sort value: the key's value, then created_at and id as tie-breakers (as the image lists)."""
    tail = f"{_iso(task.created_at)}\x00{task.id}"
    if key == "created_at":
        return tail
    value = {"updated_at": _iso(task.updated_at), "id": task.id, "status": task.status.value}[key]
    return f"{value}\x00{tail}"


@dataclass(frozen=True)
class TaskQuery:
    """One page of ``GET /v2/tasks``: whose tasks, filters, order, and where to start."""

    owner: str | None  # None: every project's (admin)
    status: str | None
    type: str | None
    sort_key: str
    descending: bool
    limit: int
    after: str | None  # the marker task's sort value
    budget: int


@dataclass(frozen=True)
class TaskPage:
    """A page of tasks and whether more follow."""

    tasks: list[Task]
    next_marker: str | None


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

    def list_page(self, query: TaskQuery, now: datetime | None = None) -> TaskPage:
        """One page in the query's order; reads at most ``limit`` + ``budget`` index entries."""
        if query.limit <= 0:
            return TaskPage([], None)
        partition = ALL_TASKS_PARTITION if query.owner is None else owner_partition(query.owner)
        stream = self._scan(partition, query.sort_key, query.descending, query.after, query.limit + 1)
        kept: list[Task] = []
        scanned = 0
        last: str | None = None
        for batch in _batches(stream, MAX_BATCH):
            found = self._get_many(batch)
            for task_id in batch:
                scanned += 1
                last = task_id
                task = found.get(task_id)
                if task is None or task.expired(now) or (query.owner is not None and task.owner != query.owner):
                    continue
                if query.status and task.status.value != query.status:
                    continue
                if query.type and task.type != query.type:
                    continue
                kept.append(task)
                if len(kept) == query.limit:
                    return TaskPage(kept, task_id)
            if scanned >= query.limit + query.budget:
                return TaskPage(kept, last)
        return TaskPage(kept, None)

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


def _batches(ids: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for task_id in ids:
        batch.append(task_id)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class DynamoTaskRepository(TaskRepository):
    """Tasks in the images table, through the low-level DynamoDB API (client made on first use)."""

    def __init__(
        self, table_name: str, region: str, endpoint_url: str | None, ttl: timedelta, client: Any = None
    ) -> None:
        super().__init__(ttl)
        self._table = table_name
        self._region = region
        self._endpoint_url = endpoint_url
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The boto3 DynamoDB client."""
        with self._lock:
            if self._client is None:
                import boto3

                self._client = boto3.client("dynamodb", region_name=self._region, endpoint_url=self._endpoint_url)
            return self._client

    def _get(self, task_id: str) -> Task | None:
        item = self.client.get_item(
            TableName=self._table, Key=_key(task_pk(task_id), TASK_SK), ConsistentRead=True
        ).get("Item")
        return None if item is None else _from_item(item)

    def _put(self, task: Task, new: bool) -> Task:
        stored = Task(**{**task.__dict__, "version": task.version + 1})
        ttl = {"N": str(int(self.expiry(stored).timestamp()))}
        sorts = {sort_attr(k): {"S": task_sort_value(stored, k)} for k in TASK_SORT_KEYS}
        item = {
            **_key(task_pk(task.id), TASK_SK),
            **_to_attrs(stored),
            LIST_PARTITION_ATTR: {"S": owner_partition(stored.owner)},
            TTL_ATTR: ttl,
            **sorts,
        }
        if new:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"N": str(task.version)}},
            }
        items: list[dict[str, Any]] = [{"Put": {"TableName": self._table, "Item": item, **condition}}]
        entry = {**_key(task_pk(task.id), "LIST#all"), LIST_PARTITION_ATTR: {"S": ALL_TASKS_PARTITION}, TTL_ATTR: ttl}
        items.append({"Put": {"TableName": self._table, "Item": {**entry, **sorts}}})
        if stored.image_id:
            pointer = {**_key(f"IMG#{stored.image_id}", f"TASK#{task.id}"), TTL_ATTR: ttl}
            items.append({"Put": {"TableName": self._table, "Item": pointer}})
        try:
            self.client.transact_write_items(TransactItems=items)
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                if new:
                    raise DuplicateError(id=task.id) from exc
                raise ConcurrentUpdateError(image_id=f"(task {task.id})") from exc
            raise
        return stored

    def _for_image(self, image_id: str) -> list[Task]:
        ids: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": f"IMG#{image_id}"}, ":prefix": {"S": "TASK#"}},
        }
        while True:
            page = self.client.query(**kwargs)
            ids.extend(item["sk"]["S"][len("TASK#") :] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        tasks: list[Task] = []
        for start in range(0, len(ids), MAX_BATCH):
            tasks.extend(self._get_many(ids[start : start + MAX_BATCH]).values())
        return tasks

    def _scan(self, partition: str, sort_key: str, descending: bool, after: str | None, page: int) -> Iterator[str]:
        attr = sort_attr(sort_key)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index_name(sort_key),
            "KeyConditionExpression": "#lp = :lp",
            "ExpressionAttributeNames": {"#lp": LIST_PARTITION_ATTR},
            "ExpressionAttributeValues": {":lp": {"S": partition}},
            "ScanIndexForward": not descending,
            "Limit": page,
        }
        if after is not None:
            kwargs["KeyConditionExpression"] += f" AND #s {'<' if descending else '>'} :after"
            kwargs["ExpressionAttributeNames"]["#s"] = attr
            kwargs["ExpressionAttributeValues"][":after"] = {"S": after}
        while True:
            result = self.client.query(**kwargs)
            for item in result.get("Items", []):
                yield item["pk"]["S"][len("TASK#") :]
            if "LastEvaluatedKey" not in result:
                return
            kwargs["ExclusiveStartKey"] = result["LastEvaluatedKey"]

    def _get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        if not task_ids:
            return {}
        keys = [_key(task_pk(i), TASK_SK) for i in dict.fromkeys(task_ids)]
        found: dict[str, Task] = {}
        request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            result = self.client.batch_get_item(RequestItems=request)
            for item in result.get("Responses", {}).get(self._table, []):
                task = _from_item(item)
                found[task.id] = task
            request = result.get("UnprocessedKeys") or {}
        return found


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _opt(value: str | None) -> dict[str, Any]:
    return {"NULL": True} if value is None else {"S": value}


def _to_attrs(task: Task) -> dict[str, Any]:
    return {
        "id": {"S": task.id},
        "type": {"S": task.type},
        "owner": _opt(task.owner),
        "status": {"S": task.status.value},
        "input": {"S": json.dumps(task.input)},
        "result": _opt(None if task.result is None else json.dumps(task.result)),
        "message": {"S": task.message},
        "image_id": _opt(task.image_id),
        "request_id": _opt(task.request_id),
        "user_id": _opt(task.user_id),
        "task_expires_at": _opt(None if task.expires_at is None else task.expires_at.isoformat()),
        "created_at": {"S": task.created_at.isoformat()},
        "updated_at": {"S": task.updated_at.isoformat()},
        "version": {"N": str(task.version)},
    }


def _s(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None or "NULL" in value else str(value["S"])


def _from_item(item: dict[str, Any]) -> Task:
    result = _s(item, "result")
    expires = _s(item, "task_expires_at")
    return Task(
        id=item["id"]["S"],
        type=item["type"]["S"],
        owner=_s(item, "owner"),
        status=TaskStatus(item["status"]["S"]),
        input=json.loads(item["input"]["S"]),
        result=None if result is None else json.loads(result),
        message=item["message"]["S"],
        image_id=_s(item, "image_id"),
        request_id=_s(item, "request_id"),
        user_id=_s(item, "user_id"),
        expires_at=None if expires is None else datetime.fromisoformat(expires),
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        updated_at=datetime.fromisoformat(item["updated_at"]["S"]),
        version=int(item["version"]["N"]),
    )


class MemoryTaskRepository(TaskRepository):
    """Tasks in a dict, for unit tests; same semantics as the DynamoDB one."""

    def __init__(self, ttl: timedelta = timedelta(hours=48)) -> None:
        super().__init__(ttl)
        self._tasks: dict[str, Task] = {}
        self._lock = threading.Lock()

    def _get(self, task_id: str) -> Task | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return None if task is None else Task(**task.__dict__)

    def _put(self, task: Task, new: bool) -> Task:
        with self._lock:
            current = self._tasks.get(task.id)
            if new and current is not None:
                raise DuplicateError(id=task.id)
            if not new and (current is None or current.version != task.version):
                raise ConcurrentUpdateError(image_id=f"(task {task.id})")
            stored = Task(**{**task.__dict__, "version": task.version + 1})
            self._tasks[task.id] = stored
            return Task(**stored.__dict__)

    def _for_image(self, image_id: str) -> list[Task]:
        with self._lock:
            return [Task(**t.__dict__) for t in self._tasks.values() if t.image_id == image_id]

    def _scan(self, partition: str, sort_key: str, descending: bool, after: str | None, page: int) -> Iterator[str]:
        with self._lock:
            tasks = [t for t in self._tasks.values() if partition in (ALL_TASKS_PARTITION, owner_partition(t.owner))]
        entries = sorted((task_sort_value(t, sort_key), t.id) for t in tasks)
        if descending:
            entries.reverse()
        for value, task_id in entries:
            if after is None or (value < after if descending else value > after):
                yield task_id

    def _get_many(self, task_ids: Sequence[str]) -> dict[str, Task]:
        with self._lock:
            return {i: Task(**self._tasks[i].__dict__) for i in task_ids if i in self._tasks}
