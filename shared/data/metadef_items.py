"""The metadata definitions catalog's storage encoding: its items' keys, the item model an ``ItemStore`` reads and
writes, and the codec between items and the domain's objects (``shared/data/metadefs.py`` holds the repository).

Layout (docs/metadefs.md, "Storage"), all in the one table, keyed by name as Glance's API is:

- ``MDNS#<namespace>`` / ``NS``: the namespace, its resource type associations inline (``version`` guards writes);
  ``MDNS#<namespace>`` / ``OBJ#<name>``, ``PROP#<name>``, ``TAG#<name>``: what it holds, so showing a namespace is one
  ``Query`` of its partition;
  ``MDNS#<namespace>`` / ``LIST#o`` and ``LIST#v``: its list entries in the partitions ``n#o#<owner>`` and
  ``n#v#<visibility>`` of the table's existing list indexes (``list-created_at``, ``list-updated_at``, ``list-name``).
- ``MDRT#<name>`` / ``RT``: a resource type, in the list partition ``r#all``; ``MDRT#<name>`` / ``NS#<namespace>``: a
  pointer to each namespace associated with it (the ``resource_types`` filter of a namespace list).

An ``ItemStore`` (DynamoDB, or a dict for unit tests) only gets, queries and writes items, each write one transaction
whose conditions make concurrent changes a 409 and never a lost update.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.domain.limits import check_document_size
from shared.domain.metadefs import (
    Child,
    MetadefObject,
    MetadefProperty,
    MetadefTag,
    Namespace,
    ResourceType,
    ResourceTypeAssociation,
)

NS_PREFIX = "MDNS#"
NS_SK = "NS"
RT_PREFIX = "MDRT#"
RT_SK = "RT"
POINTER_PREFIX = "NS#"
KIND_PREFIX = {"object": "OBJ#", "property": "PROP#", "tag": "TAG#"}
ALL_RESOURCE_TYPES = "r#all"
# Sort key of the request -> the table's index holding it (``namespace`` sorts on the ``list-name`` index).
INDEX_SORT_KEY = {"created_at": "created_at", "updated_at": "updated_at", "namespace": "name"}
_SEP = "\x00"
_NOT_NULL = "\x01"


def ns_pk(name: str) -> str:
    """Partition key of a namespace and everything in it."""
    return f"{NS_PREFIX}{name}"


def rt_pk(name: str) -> str:
    """Partition key of a resource type and its namespace pointers."""
    return f"{RT_PREFIX}{name}"


@dataclass
class Item:
    """One table item as the repository sees it: keys, a JSON document, and list attributes when it is an entry."""

    pk: str
    sk: str
    doc: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    lp: str | None = None
    sorts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Put:
    """Write ``item``; ``expect``: None = unconditional, 0 = must not exist, n = must be at version n."""

    item: Item
    expect: int | None = None

    def __post_init__(self) -> None:
        # Every catalog write passes here: nothing larger than an item holds reaches the table (413 instead).
        check_document_size(self.item.doc, "metadata definition")


@dataclass(frozen=True)
class Delete:
    """Delete an item; ``expect`` as in ``Put`` (0 is not used)."""

    pk: str
    sk: str
    expect: int | None = None


@dataclass(frozen=True)
class Check:
    """The write happens only if this item exists (at version ``expect`` when given)."""

    pk: str
    sk: str
    expect: int | None = None


Op = Put | Delete | Check


class ConditionFailedError(Exception):
    """A write's condition failed; ``index`` is the position of the first failed operation."""

    def __init__(self, index: int) -> None:
        super().__init__(f"condition {index} failed")
        self.index = index


class ItemStore(ABC):
    """The table operations the catalog needs (DynamoDB: GetItem, Query, index Query, BatchGetItem, transactions)."""

    @abstractmethod
    def get(self, pk: str, sk: str) -> Item | None:
        """One item, strongly consistent, or None."""

    @abstractmethod
    def query(self, pk: str, sk_prefix: str = "") -> list[Item]:
        """The items of partition ``pk`` whose ``sk`` starts with ``sk_prefix``, in ``sk`` order."""

    @abstractmethod
    def index(
        self, partition: str, sort_key: str, descending: bool, after: str | None, page_size: int
    ) -> Iterator[tuple[str, str]]:
        """``(sort value, pk)`` of list partition ``partition`` on the ``list-<sort_key>`` index, after ``after``,
        read ``page_size`` entries at a time."""

    @abstractmethod
    def batch_get(self, keys: Sequence[tuple[str, str]]) -> list[Item]:
        """The items that exist among ``keys`` (at most 100)."""

    @abstractmethod
    def write(self, ops: Sequence[Op]) -> None:
        """All of ``ops`` or none (at most 100).

        Raises:
            ConditionFailedError: a condition failed; nothing was written.
        """


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _time_key(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def namespace_sort_values(ns: Namespace) -> dict[str, str]:
    """Encoded sort values of a namespace's list entries (ties fall to ``created_at``, then the name)."""
    created = _time_key(ns.created_at)
    return {
        "created_at": f"{created}{_SEP}{ns.namespace}",
        "updated_at": f"{_time_key(ns.updated_at)}{_SEP}{created}{_SEP}{ns.namespace}",
        "name": f"{_NOT_NULL}{ns.namespace}{_SEP}{created}{_SEP}{ns.namespace}",
    }


def namespace_partitions(ns: Namespace) -> dict[str, str]:
    """The list partitions of a namespace: its owner's and its visibility's (entry sk -> partition)."""
    return {"LIST#o": f"n#o#{ns.owner or ''}", "LIST#v": f"n#v#{ns.visibility}"}


def partitions_for(project_id: str | None, is_admin: bool, visibility: str | None) -> list[str]:
    """The list partitions whose union holds every namespace the caller may list (candidates are checked again)."""
    if is_admin:
        return [f"n#v#{visibility}"] if visibility else ["n#v#public", "n#v#private"]
    own = f"n#o#{project_id or ''}"
    if visibility == "public":
        return ["n#v#public"]
    if visibility == "private":
        return [own]
    return [own, "n#v#public"]


# -- codecs ----------------------------------------------------------------------------------------------------------


def namespace_doc(ns: Namespace) -> dict[str, Any]:
    return {
        "namespace": ns.namespace,
        "owner": ns.owner,
        "visibility": ns.visibility,
        "protected": ns.protected,
        "display_name": ns.display_name,
        "description": ns.description,
        "created_at": _time(ns.created_at),
        "updated_at": _time(ns.updated_at),
        "associations": {
            a.name: {
                "prefix": a.prefix,
                "properties_target": a.properties_target,
                "created_at": _time(a.created_at),
                "updated_at": _time(a.updated_at),
            }
            for a in ns.associations.values()
        },
    }


def namespace_from_item(item: Item) -> Namespace:
    d = item.doc
    return Namespace(
        namespace=d["namespace"],
        owner=d.get("owner"),
        visibility=d.get("visibility", "private"),
        protected=bool(d.get("protected", False)),
        display_name=d.get("display_name"),
        description=d.get("description"),
        created_at=_parse_time(d["created_at"]),
        updated_at=_parse_time(d["updated_at"]),
        associations={
            name: ResourceTypeAssociation(
                name,
                a.get("prefix"),
                a.get("properties_target"),
                _parse_time(a["created_at"]),
                _parse_time(a["updated_at"]),
            )
            for name, a in d.get("associations", {}).items()
        },
        version=item.version,
    )


def child_doc(child: Child) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": child.name,
        "created_at": _time(child.created_at),
        "updated_at": _time(child.updated_at),
    }
    if isinstance(child, MetadefObject):
        doc.update(description=child.description, required=list(child.required), properties=dict(child.properties))
    elif isinstance(child, MetadefProperty):
        doc["schema"] = dict(child.schema)
    return doc


def child_from_item(kind: str, item: Item) -> Child:
    d = item.doc
    created, updated = _parse_time(d["created_at"]), _parse_time(d["updated_at"])
    if kind == "object":
        return MetadefObject(d["name"], d.get("description"), tuple(d.get("required", ())), d.get("properties", {}),
                             created, updated)  # fmt: skip
    if kind == "property":
        return MetadefProperty(d["name"], d.get("schema", {}), created, updated)
    return MetadefTag(d["name"], created, updated)


def kind_of(child: Child) -> str:
    if isinstance(child, MetadefObject):
        return "object"
    if isinstance(child, MetadefProperty):
        return "property"
    return "tag"


def resource_type_from_item(item: Item) -> ResourceType:
    d = item.doc
    return ResourceType(d["name"], bool(d.get("protected", False)), _parse_time(d["created_at"]),
                        _parse_time(d["updated_at"]))  # fmt: skip


def resource_type_item(rt: ResourceType) -> Item:
    doc = {"name": rt.name, "protected": rt.protected, "created_at": _time(rt.created_at),
           "updated_at": _time(rt.updated_at)}  # fmt: skip
    return Item(rt_pk(rt.name), RT_SK, doc, lp=ALL_RESOURCE_TYPES, sorts={"name": f"{_NOT_NULL}{rt.name}"})


def dumps(doc: dict[str, Any]) -> str:
    """An item's document as stored (compact JSON)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)
