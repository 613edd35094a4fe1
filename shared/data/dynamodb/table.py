"""The pynamodb models of the images table, built for one table name and endpoint, sharing one DynamoDB client.

Items (string ``pk``/``sk``; docs/data-model.md):

- ``IMG#<id>`` / ``IMAGE``: an image (``version`` guards every write); ``IMG#<id>`` / ``LIST#<kind>``: its list
  entries (``lp`` = the partition, ``s_<key>`` = the encoded sort values, ``shared/data/list_index.py``).
- ``TASK#<id>`` / ``TASK``: a task, in its owner's list partition; ``TASK#<id>`` / ``LIST#all``: its entry in the
  partition of every task; ``IMG#<image id>`` / ``TASK#<id>``: a pointer next to its image. All carry the TTL
  attribute ``expires_at``.
- ``QUOTA#<project>`` / ``USAGE``: a project's quota counters; ``QUOTA#<project>`` / ``LIMITS``: its overrides.

pynamodb binds a connection per model class; ``TableModels`` hands every class the one botocore client the
composition root made, so the table costs one client (and one connection pool) per process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from shared.data.dynamodb.fast_parse import use_fast_item_reads
from shared.domain.listing import SORT_KEYS, TASK_SORT_KEYS
from shared.domain.quota import LIMIT_NAMES
from shared.resources import DEADLINE_ATTR, LIST_PARTITION_ATTR, SWEEP_INDEX, TableDef, index_name, sort_attr

IMAGE_PREFIX = "IMG#"
IMAGE_SK = "IMAGE"
TASK_PREFIX = "TASK#"
TASK_SK = "TASK"
ALL_TASKS_SK = "LIST#all"
QUOTA_PREFIX = "QUOTA#"
USAGE_SK = "USAGE"
LIMITS_SK = "LIMITS"
TTL_ATTR = "expires_at"


def image_pk(image_id: str) -> str:
    """Partition key of everything stored about one image."""
    return f"{IMAGE_PREFIX}{image_id}"


def task_pk(task_id: str) -> str:
    """Partition key of a task."""
    return f"{TASK_PREFIX}{task_id}"


def quota_pk(project: str) -> str:
    """Partition key of one project's quota items."""
    return f"{QUOTA_PREFIX}{project}"


class LocationMap(MapAttribute[str, Any]):
    """One location of an image."""

    store = UnicodeAttribute()
    url = UnicodeAttribute()
    status = UnicodeAttribute()
    metadata = MapAttribute[str, Any](default=dict)  # type: ignore[no-untyped-call]


class UploadMap(MapAttribute[str, Any]):
    """An image's open upload session."""

    id = UnicodeAttribute()
    key = UnicodeAttribute()
    method = UnicodeAttribute()
    size = NumberAttribute(null=True)
    part_size = NumberAttribute(null=True)
    s3_upload_id = UnicodeAttribute(null=True)
    checksum = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    expires_at = UTCDateTimeAttribute()
    targets = ListAttribute(of=UnicodeAttribute, null=True)
    must_succeed = BooleanAttribute(null=True)
    task_id = UnicodeAttribute(null=True)
    lease_holder = UnicodeAttribute(null=True)
    lease_until = UTCDateTimeAttribute(null=True)


@dataclass(frozen=True)
class TableModels:
    """The model classes of one table; built at run time from ``TableDef``, so typed loosely (the repositories'
    mapping functions are the typed boundary)."""

    image: Any
    entry: Any
    task: Any
    pointer: Any
    usage: Any
    limits: Any
    indexes: dict[str, GlobalSecondaryIndex[Any]]

    @property
    def connection(self) -> Connection:
        """The pynamodb connection transactions run on."""
        connection: Connection = self.image._get_connection().connection
        return connection

    def botocore_clients(self) -> list[Any]:
        """The botocore clients the models call DynamoDB through (one, unless none was given)."""
        clients = {id(c): c for c in (m._get_connection().connection.client for m in self._models())}
        return list(clients.values())

    def _models(self) -> tuple[Any, ...]:
        return (self.image, self.entry, self.task, self.pointer, self.usage, self.limits)

    def read(self, model: Any, pk: str, sk: str) -> Any:
        """The item ``pk``/``sk`` of ``model`` (strongly consistent), or None."""
        try:
            return model.get(pk, sk, consistent_read=True)
        except DoesNotExist:
            return None

    def query_index(
        self, partition: str, sort_key: str, descending: bool, after: str | None, page_size: int
    ) -> Iterator[tuple[str, str]]:
        """``(sort value, pk)`` of one list partition in order, strictly after ``after``, ``page_size`` entries
        per Query."""
        index = self.indexes[index_name(sort_key)]
        attr = getattr(self.entry, sort_attr(sort_key))
        condition = None if after is None else (attr < after if descending else attr > after)
        results = index.query(
            partition, range_key_condition=condition, scan_index_forward=not descending, page_size=page_size
        )
        for entry in results:
            yield getattr(entry, sort_attr(sort_key)), entry.pk


def query_overdue(models: TableModels, partition: str, before: str, limit: int) -> list[tuple[str, str]]:
    """``(deadline, pk)`` of at most ``limit`` entries of one sweep partition due at or before ``before``, earliest
    first: one Query on the sweep index."""
    index = models.indexes[SWEEP_INDEX]
    attr = getattr(models.entry, DEADLINE_ATTR)
    results = index.query(partition, range_key_condition=attr <= before, limit=limit, page_size=limit)
    return [(getattr(entry, DEADLINE_ATTR), entry.pk) for entry in results]


def table_models(table: TableDef, table_name: str, host: str | None, region: str, client: Any = None) -> TableModels:
    """Model classes bound to one table and endpoint (pynamodb binds these per class); ``client``: the botocore
    DynamoDB client every class uses (None: each makes its own)."""
    meta = {"table_name": table_name, "host": host, "region": region, "billing_mode": "PAY_PER_REQUEST"}

    def model(name: str, attrs: dict[str, Any]) -> Any:
        keys = {"pk": UnicodeAttribute(hash_key=True), "sk": UnicodeAttribute(range_key=True)}
        return type(name, (Model,), {"Meta": type("Meta", (), meta), **keys, **attrs})

    image = model("ImageItem", _image_attrs())
    entry_attrs: dict[str, Any] = {LIST_PARTITION_ATTR: UnicodeAttribute(), TTL_ATTR: NumberAttribute(null=True)}
    entry_attrs.update({sort_attr(k): UnicodeAttribute(null=True) for k in SORT_KEYS})
    entry_attrs[DEADLINE_ATTR] = UnicodeAttribute(null=True)
    for index in table.indexes:
        entry_attrs[_index_attr(index.name)] = _index(index.name, index.partition_attr, index.sort_attr)
    entry = model("ListEntryItem", entry_attrs)
    task_attrs = {**_task_attrs(), LIST_PARTITION_ATTR: UnicodeAttribute(), TTL_ATTR: NumberAttribute()}
    task_attrs.update({sort_attr(k): UnicodeAttribute() for k in TASK_SORT_KEYS})
    counters = {name: NumberAttribute(null=True) for name in LIMIT_NAMES}
    models = TableModels(
        image=image,
        entry=entry,
        task=model("TaskItem", task_attrs),
        pointer=model("TaskPointerItem", {TTL_ATTR: NumberAttribute()}),
        usage=model("UsageItem", dict(counters)),
        limits=model("LimitsItem", {name: NumberAttribute(null=True) for name in LIMIT_NAMES}),
        # The model class binds copies of its indexes; use those.
        indexes={index.name: getattr(entry, _index_attr(index.name)) for index in table.indexes},
    )
    if client is not None:
        use_fast_item_reads(client)
        for cls in models._models():
            # pynamodb has no public way to hand a model a client; its Connection keeps the one it made here.
            cls._get_connection().connection._client = client
    return models


def _index_attr(name: str) -> str:
    return f"idx_{name.replace('-', '_')}"


def _index(name: str, partition_attr: str, sort_attr_name: str) -> Any:
    cls = type(
        f"Index_{name.replace('-', '_')}",
        (GlobalSecondaryIndex,),
        {
            "Meta": type("Meta", (), {"index_name": name, "projection": KeysOnlyProjection()}),
            partition_attr: UnicodeAttribute(hash_key=True),
            sort_attr_name: UnicodeAttribute(range_key=True),
        },
    )
    return cls()


def _image_attrs() -> dict[str, Any]:
    return {
        "version": VersionAttribute(),
        "id": UnicodeAttribute(),
        "owner": UnicodeAttribute(null=True),
        "status": UnicodeAttribute(),
        "name": UnicodeAttribute(null=True),
        "visibility": UnicodeAttribute(),
        "protected": BooleanAttribute(default=False),
        "os_hidden": BooleanAttribute(default=False),
        "disk_format": UnicodeAttribute(null=True),
        "container_format": UnicodeAttribute(null=True),
        "min_ram": NumberAttribute(default=0),
        "min_disk": NumberAttribute(default=0),
        "size": NumberAttribute(null=True),
        "virtual_size": NumberAttribute(null=True),
        "checksum": UnicodeAttribute(null=True),
        "os_hash_algo": UnicodeAttribute(null=True),
        "os_hash_value": UnicodeAttribute(null=True),
        "tags": UnicodeSetAttribute(null=True),
        "props": MapAttribute[str, Any](null=True),  # type: ignore[no-untyped-call]
        "locations": ListAttribute(of=LocationMap, null=True),
        "created_at": UTCDateTimeAttribute(),
        "updated_at": UTCDateTimeAttribute(),
        "deleted_at": UTCDateTimeAttribute(null=True),
        "upload": UploadMap(null=True),  # type: ignore[no-untyped-call]
        "members": MapAttribute[str, Any](null=True),  # type: ignore[no-untyped-call]
    }


def _task_attrs() -> dict[str, Any]:
    # Times are ISO strings and JSON documents strings, as the items were first written.
    return {
        "version": VersionAttribute(),
        "id": UnicodeAttribute(),
        "task_type": UnicodeAttribute(attr_name="type"),
        "owner": UnicodeAttribute(null=True),
        "status": UnicodeAttribute(),
        "task_input": UnicodeAttribute(attr_name="input"),
        "result": UnicodeAttribute(null=True),
        "message": UnicodeAttribute(null=True),
        "image_id": UnicodeAttribute(null=True),
        "request_id": UnicodeAttribute(null=True),
        "user_id": UnicodeAttribute(null=True),
        "task_expires_at": UnicodeAttribute(null=True),
        "created_at": UnicodeAttribute(),
        "updated_at": UnicodeAttribute(),
    }
