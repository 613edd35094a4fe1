"""The metadata definitions catalog's items in the images table (pynamodb), for ``shared/data/metadef_items.py``.

One model class for every catalog item: ``pk``/``sk``, the item's document as a JSON string (``doc``), its
``version``, and, for list entries and resource types, ``lp`` and the ``s_<key>`` sort values that the table's
existing keys-only list indexes order (no index of its own). Writes are ``TransactWriteItems`` with the conditions of
the operations; a failed one names the first operation whose condition failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from shared.data.dynamodb.table import TableModels
from shared.data.metadef_items import Check, ConditionFailedError, Delete, Item, ItemStore, Op, Put, dumps
from shared.data.paging import MAX_QUERY_PAGE
from shared.resources import LIST_PARTITION_ATTR, sort_attr

_SORT_KEYS = ("created_at", "updated_at", "name")


def _model_class(models: TableModels) -> Any:
    meta = models.image.Meta
    attrs: dict[str, Any] = {
        "Meta": type("Meta", (), {"table_name": meta.table_name, "host": meta.host, "region": meta.region,
                                  "billing_mode": "PAY_PER_REQUEST"}),
        "pk": UnicodeAttribute(hash_key=True),
        "sk": UnicodeAttribute(range_key=True),
        "doc": UnicodeAttribute(null=True),
        "version": NumberAttribute(null=True),
        LIST_PARTITION_ATTR: UnicodeAttribute(null=True),
    }  # fmt: skip
    attrs.update({sort_attr(k): UnicodeAttribute(null=True) for k in _SORT_KEYS})
    cls: Any = type("MetadefItem", (Model,), attrs)
    # The table's one botocore client (TableModels hands it to every class the same way).
    cls._get_connection().connection._client = models.image._get_connection().connection.client
    return cls


class DynamoItemStore(ItemStore):
    """Catalog items in the DynamoDB table of ``models``."""

    def __init__(self, models: TableModels) -> None:
        self._models = models
        self._item = _model_class(models)

    def _to_item(self, row: Any) -> Item:
        sorts = {k: getattr(row, sort_attr(k)) for k in _SORT_KEYS if getattr(row, sort_attr(k)) is not None}
        return Item(
            pk=row.pk,
            sk=row.sk,
            doc=json.loads(row.doc) if row.doc else {},
            version=int(row.version or 0),
            lp=getattr(row, LIST_PARTITION_ATTR),
            sorts=sorts,
        )

    def _to_row(self, item: Item) -> Any:
        row = self._item(item.pk, item.sk)
        row.doc = dumps(item.doc) if item.doc else None
        row.version = item.version or None
        setattr(row, LIST_PARTITION_ATTR, item.lp)
        for key, value in item.sorts.items():
            setattr(row, sort_attr(key), value)
        return row

    def get(self, pk: str, sk: str) -> Item | None:
        try:
            return self._to_item(self._item.get(pk, sk, consistent_read=True))
        except DoesNotExist:
            return None

    def query(self, pk: str, sk_prefix: str = "") -> list[Item]:
        condition = self._item.sk.startswith(sk_prefix) if sk_prefix else None
        rows = self._item.query(pk, range_key_condition=condition, consistent_read=True)
        return [self._to_item(r) for r in rows]

    def index(
        self, partition: str, sort_key: str, descending: bool, after: str | None, page_size: int
    ) -> Iterator[tuple[str, str]]:
        yield from self._models.query_index(partition, sort_key, descending, after, min(page_size, MAX_QUERY_PAGE))

    def batch_get(self, keys: Sequence[tuple[str, str]]) -> list[Item]:
        if not keys:
            return []
        return [self._to_item(r) for r in self._item.batch_get(list(dict.fromkeys(keys)), consistent_read=True)]

    def _condition(self, expect: int | None) -> Any:
        if expect is None:
            return None
        if expect == 0:
            return self._item.pk.does_not_exist()
        return self._item.version == expect

    def write(self, ops: Sequence[Op]) -> None:
        if not ops:
            return
        try:
            with TransactWrite(connection=self._models.connection) as tx:
                for op in ops:
                    if isinstance(op, Put):
                        tx.save(self._to_row(op.item), condition=self._condition(op.expect))
                    elif isinstance(op, Delete):
                        tx.delete(self._item(op.pk, op.sk), condition=self._condition(op.expect))
                    else:
                        assert isinstance(op, Check)
                        condition = self._item.pk.exists()
                        if op.expect:
                            condition = condition & (self._item.version == op.expect)
                        tx.condition_check(self._item, op.pk, op.sk, condition=condition)
        except TransactWriteError as exc:
            reasons = list(exc.cancellation_reasons or [])
            for position, reason in enumerate(reasons):
                if reason is not None and reason.code == "ConditionalCheckFailed":
                    raise ConditionFailedError(position) from exc
            raise
