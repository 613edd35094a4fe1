"""The metadata definitions repository: the catalog's items in the images table, and how it reads and writes them.

Layout (docs/metadefs.md, "Storage"), all in the one table, keyed by name as Glance's API is:

- ``MDNS#<namespace>`` / ``NS``: the namespace, its resource type associations inline (``version`` guards writes);
  ``MDNS#<namespace>`` / ``OBJ#<name>``, ``PROP#<name>``, ``TAG#<name>``: what it holds, so showing a namespace is one
  ``Query`` of its partition;
  ``MDNS#<namespace>`` / ``LIST#o`` and ``LIST#v``: its list entries in the partitions ``n#o#<owner>`` and
  ``n#v#<visibility>`` of the table's existing list indexes (``list-created_at``, ``list-updated_at``, ``list-name``).
- ``MDRT#<name>`` / ``RT``: a resource type, in the list partition ``r#all``; ``MDRT#<name>`` / ``NS#<namespace>``: a
  pointer to each namespace associated with it (the ``resource_types`` filter of a namespace list).

``MetadefRepository`` holds the logic once; an ``ItemStore`` (DynamoDB, or a dict for unit tests) only gets, queries
and writes items, each write one transaction whose conditions make concurrent changes a 409 and never a lost update.
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from shared.data.paging import merged_ids
from shared.domain.errors import ConcurrentUpdateError, MetadefDuplicateError
from shared.domain.limits import check_document_size
from shared.domain.listing import Page
from shared.domain.metadefs import (
    Child,
    MetadefObject,
    MetadefProperty,
    MetadefTag,
    Namespace,
    NamespaceContent,
    ResourceType,
    ResourceTypeAssociation,
    visible,
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


def _ns_doc(ns: Namespace) -> dict[str, Any]:
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


def _ns(item: Item) -> Namespace:
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


def _child_doc(child: Child) -> dict[str, Any]:
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


def _child(kind: str, item: Item) -> Child:
    d = item.doc
    created, updated = _parse_time(d["created_at"]), _parse_time(d["updated_at"])
    if kind == "object":
        return MetadefObject(d["name"], d.get("description"), tuple(d.get("required", ())), d.get("properties", {}),
                             created, updated)  # fmt: skip
    if kind == "property":
        return MetadefProperty(d["name"], d.get("schema", {}), created, updated)
    return MetadefTag(d["name"], created, updated)


def _kind_of(child: Child) -> str:
    if isinstance(child, MetadefObject):
        return "object"
    if isinstance(child, MetadefProperty):
        return "property"
    return "tag"


def _rt(item: Item) -> ResourceType:
    d = item.doc
    return ResourceType(d["name"], bool(d.get("protected", False)), _parse_time(d["created_at"]),
                        _parse_time(d["updated_at"]))  # fmt: skip


def _rt_item(rt: ResourceType) -> Item:
    doc = {"name": rt.name, "protected": rt.protected, "created_at": _time(rt.created_at),
           "updated_at": _time(rt.updated_at)}  # fmt: skip
    return Item(rt_pk(rt.name), RT_SK, doc, lp=ALL_RESOURCE_TYPES, sorts={"name": f"{_NOT_NULL}{rt.name}"})


# Largest transaction DynamoDB accepts.
MAX_TRANSACTION = 100


class MetadefRepository:
    """The catalog over one ``ItemStore``; every read is a GetItem, a Query of one partition or a page of an index."""

    def __init__(self, store: ItemStore) -> None:
        self._store = store

    # -- namespaces --------------------------------------------------------------------------------------------------

    def get_namespace(self, name: str) -> Namespace | None:
        """The namespace ``name`` (any visibility: the caller's policy decides), or None."""
        item = self._store.get(ns_pk(name), NS_SK)
        return None if item is None else _ns(item)

    def content(self, name: str) -> NamespaceContent | None:
        """The namespace and everything it holds, from one Query of its partition."""
        ns: Namespace | None = None
        children: dict[str, list[Any]] = {k: [] for k in KIND_PREFIX}
        for item in self._store.query(ns_pk(name)):
            if item.sk == NS_SK:
                ns = _ns(item)
            for kind, prefix in KIND_PREFIX.items():
                if item.sk.startswith(prefix):
                    children[kind].append(_child(kind, item))
        if ns is None:
            return None
        return NamespaceContent(ns, children["object"], children["property"], children["tag"])

    def _entry_ops(self, ns: Namespace) -> list[Op]:
        sorts = namespace_sort_values(ns)
        return [Put(Item(ns_pk(ns.namespace), sk, lp=lp, sorts=sorts)) for sk, lp in namespace_partitions(ns).items()]

    def _ns_put(self, ns: Namespace, expect: int) -> Put:
        return Put(Item(ns_pk(ns.namespace), NS_SK, _ns_doc(ns), version=ns.version + 1), expect=expect)

    def add_namespace(self, ns: Namespace, children: Sequence[Child] = ()) -> Namespace:
        """Create ``ns`` with its content; its associations' resource types are created when missing.

        Raises:
            MetadefDuplicateError: a namespace with this name exists.
        """
        stored = replace(ns, version=1)
        ops: list[Op] = [self._ns_put(ns, expect=0), *self._entry_ops(ns)]
        for association in ns.associations.values():
            ops.append(Put(Item(rt_pk(association.name), POINTER_PREFIX + ns.namespace)))
        ops.extend(Put(Item(ns_pk(ns.namespace), KIND_PREFIX[_kind_of(c)] + c.name, _child_doc(c)), expect=0)
                   for c in children)  # fmt: skip
        try:
            self._write_chunked(ops)
        except ConditionFailedError as exc:
            raise MetadefDuplicateError(kind="namespace", name=ns.namespace, where="") from exc
        for association in ns.associations.values():
            self.ensure_resource_type(association.name, association.created_at)
        return stored

    def _write_chunked(self, ops: Sequence[Op]) -> None:
        # The first transaction carries the conditions that decide the write; what does not fit follows it.
        for start in range(0, len(ops), MAX_TRANSACTION):
            self._store.write(ops[start : start + MAX_TRANSACTION])

    def save_namespace(self, ns: Namespace, old_name: str) -> Namespace:
        """Write a changed namespace read at ``ns.version``; a new name moves its content to the new partition.

        Raises:
            ConcurrentUpdateError: it changed since it was read.
            MetadefDuplicateError: the new name is taken.
        """
        if ns.namespace == old_name:
            try:
                self._store.write([self._ns_put(ns, expect=ns.version), *self._entry_ops(ns)])
            except ConditionFailedError as exc:
                raise ConcurrentUpdateError(image_id=f"(namespace {old_name})") from exc
            return replace(ns, version=ns.version + 1)
        moved = [i for i in self._store.query(ns_pk(old_name)) if i.sk != NS_SK and not i.sk.startswith("LIST#")]
        first: list[Op] = [
            Put(Item(ns_pk(ns.namespace), NS_SK, _ns_doc(ns), version=1), expect=0),
            Check(ns_pk(old_name), NS_SK, expect=ns.version),
            *self._entry_ops(ns),
        ]
        for association in ns.associations.values():
            first.append(Put(Item(rt_pk(association.name), POINTER_PREFIX + ns.namespace)))
        try:
            self._store.write(first)
        except ConditionFailedError as exc:
            if exc.index == 0:
                raise MetadefDuplicateError(kind="namespace", name=ns.namespace, where="") from exc
            raise ConcurrentUpdateError(image_id=f"(namespace {old_name})") from exc
        copies: list[Op] = [Put(Item(ns_pk(ns.namespace), i.sk, i.doc)) for i in moved]
        self._write_chunked(copies)
        self._delete_partition(old_name, ns.associations.keys())
        return replace(ns, version=1)

    def _delete_partition(self, name: str, resource_types: Iterable[str]) -> None:
        ops: list[Op] = [Delete(rt_pk(rt), POINTER_PREFIX + name) for rt in resource_types]
        items = self._store.query(ns_pk(name))
        # The namespace item goes last, so a failure part-way leaves a namespace that can be deleted again.
        ops.extend(Delete(i.pk, i.sk) for i in items if i.sk != NS_SK)
        ops.extend(Delete(i.pk, i.sk) for i in items if i.sk == NS_SK)
        self._write_chunked(ops)

    def delete_namespace(self, ns: Namespace) -> None:
        """Delete ``ns`` and everything in it."""
        self._delete_partition(ns.namespace, ns.associations.keys())

    def delete_children(self, ns: Namespace, kind: str) -> list[Child]:
        """Delete every object, property or tag of ``ns``; returns what was deleted."""
        items = self._store.query(ns_pk(ns.namespace), KIND_PREFIX[kind])
        self._write_chunked([Delete(i.pk, i.sk) for i in items])
        return [_child(kind, i) for i in items]

    def list_namespaces(
        self,
        project_id: str | None,
        is_admin: bool,
        visibility: str | None,
        sort_key: str,
        descending: bool,
        limit: int,
        marker: Namespace | None,
        resource_types: Sequence[str] = (),
    ) -> Page[Namespace]:
        """One page of the namespaces the caller may see, in order, after ``marker``.

        Without ``resource_types`` the page costs one index Query per partition (at most ``limit + 1`` entries each)
        and one BatchGetItem; with it, one Query per named resource type reads its namespace pointers.
        """
        index_key = INDEX_SORT_KEY[sort_key]
        after = None if marker is None else namespace_sort_values(marker)[index_key]

        def keeps(ns: Namespace) -> bool:
            return visible(ns, project_id, is_admin) and (visibility is None or ns.visibility == visibility)

        if resource_types:
            return self._by_resource_types(resource_types, keeps, index_key, descending, limit, after)
        streams = [self._store.index(p, index_key, descending, after, limit + 1)
                   for p in partitions_for(project_id, is_admin, visibility)]  # fmt: skip
        names = (pk[len(NS_PREFIX) :] for pk in merged_ids(streams, descending))
        kept: list[Namespace] = []
        while len(kept) < limit + 1:
            batch = [n for _, n in zip(range(min(100, limit + 1 - len(kept))), names, strict=False)]
            if not batch:
                break
            found = {i.doc["namespace"]: _ns(i) for i in self._store.batch_get([(ns_pk(n), NS_SK) for n in batch])}
            kept.extend(found[n] for n in batch if n in found and keeps(found[n]))
        return Page(kept[:limit], kept[limit - 1].namespace if len(kept) > limit and limit > 0 else None)

    def _by_resource_types(
        self,
        resource_types: Sequence[str],
        keeps: Any,
        index_key: str,
        descending: bool,
        limit: int,
        after: str | None,
    ) -> Page[Namespace]:
        names: set[str] = set()
        for rt in resource_types:
            names.update(i.sk[len(POINTER_PREFIX) :] for i in self._store.query(rt_pk(rt), POINTER_PREFIX))
        found: list[Namespace] = []
        ordered = sorted(names)
        for start in range(0, len(ordered), 100):
            keys = [(ns_pk(n), NS_SK) for n in ordered[start : start + 100]]
            found.extend(_ns(i) for i in self._store.batch_get(keys))
        rows = sorted(((namespace_sort_values(n)[index_key], n) for n in found if keeps(n)),
                      key=lambda r: r[0], reverse=descending)  # fmt: skip
        if after is not None:
            rows = [r for r in rows if (r[0] < after if descending else r[0] > after)]
        page = [n for _, n in rows[: limit + 1]]
        return Page(page[:limit], page[limit - 1].namespace if len(page) > limit and limit > 0 else None)

    # -- objects, properties, tags -----------------------------------------------------------------------------------

    def get_child(self, ns: Namespace, kind: str, name: str) -> Child | None:
        """One object, property or tag of ``ns``, or None."""
        item = self._store.get(ns_pk(ns.namespace), KIND_PREFIX[kind] + name)
        return None if item is None else _child(kind, item)

    def children(self, ns: Namespace, kind: str) -> list[Child]:
        """Every object, property or tag of ``ns`` (one Query), in name order."""
        return [_child(kind, i) for i in self._store.query(ns_pk(ns.namespace), KIND_PREFIX[kind])]

    def put_child(self, ns: Namespace, child: Child, old_name: str | None = None) -> Child:
        """Create (``old_name`` None) or replace a child, while the namespace exists; a rename moves it.

        Raises:
            MetadefDuplicateError: the (new) name is taken.
            ConcurrentUpdateError: the namespace went away, or the child did.
        """
        kind = _kind_of(child)
        prefix = KIND_PREFIX[kind]
        ops: list[Op] = [Check(ns_pk(ns.namespace), NS_SK)]
        renamed = old_name is not None and old_name != child.name
        new_item = Item(ns_pk(ns.namespace), prefix + child.name, _child_doc(child))
        ops.append(Put(new_item, expect=0 if old_name is None or renamed else None))
        if renamed:
            ops.append(Delete(ns_pk(ns.namespace), prefix + str(old_name)))
        try:
            self._store.write(ops)
        except ConditionFailedError as exc:
            if exc.index == 1:
                raise MetadefDuplicateError(kind=kind, name=child.name, where=f" in namespace={ns.namespace}") from exc
            raise ConcurrentUpdateError(image_id=f"(namespace {ns.namespace})") from exc
        return child

    def delete_child(self, ns: Namespace, kind: str, name: str) -> None:
        """Delete one object, property or tag."""
        self._store.write([Delete(ns_pk(ns.namespace), KIND_PREFIX[kind] + name)])

    def replace_tags(self, ns: Namespace, tags: Sequence[MetadefTag], append: bool) -> None:
        """Create ``tags`` (all new names); without ``append`` the namespace's other tags are deleted first.

        Raises:
            MetadefDuplicateError: a name is taken (nothing is written when the tags fit one transaction).
        """
        ops: list[Op] = [Check(ns_pk(ns.namespace), NS_SK)]
        new = {KIND_PREFIX["tag"] + t.name for t in tags}
        if not append:
            # A transaction may touch an item once: a tag that stays is overwritten, not deleted and put.
            existing = self._store.query(ns_pk(ns.namespace), KIND_PREFIX["tag"])
            ops.extend(Delete(i.pk, i.sk) for i in existing if i.sk not in new)
        ops.extend(Put(Item(ns_pk(ns.namespace), KIND_PREFIX["tag"] + t.name, _child_doc(t)),
                       expect=0 if append else None) for t in tags)  # fmt: skip
        try:
            self._write_chunked(ops)
        except ConditionFailedError as exc:
            op = ops[exc.index]
            if isinstance(op, Put):
                name = op.item.sk[len(KIND_PREFIX["tag"]) :]
                raise MetadefDuplicateError(kind="tag", name=name, where=f" in namespace={ns.namespace}") from exc
            raise ConcurrentUpdateError(image_id=f"(namespace {ns.namespace})") from exc

    # -- resource types ----------------------------------------------------------------------------------------------

    def resource_types(self) -> list[ResourceType]:
        """Every resource type, by name (one index Query, one BatchGetItem per 100)."""
        pks = [pk for _, pk in self._store.index(ALL_RESOURCE_TYPES, "name", False, None, 100)]
        found: dict[str, ResourceType] = {}
        for start in range(0, len(pks), 100):
            for item in self._store.batch_get([(pk, RT_SK) for pk in pks[start : start + 100]]):
                found[item.pk] = _rt(item)
        return [found[pk] for pk in pks if pk in found]

    def get_resource_type(self, name: str) -> ResourceType | None:
        """One resource type, or None."""
        item = self._store.get(rt_pk(name), RT_SK)
        return None if item is None else _rt(item)

    def ensure_resource_type(self, name: str, now: datetime) -> ResourceType:
        """The resource type ``name``, created (unprotected) if it does not exist yet."""
        current = self.get_resource_type(name)
        if current is not None:
            return current
        rt = ResourceType(name, False, now, now)
        with contextlib.suppress(ConditionFailedError):  # created meanwhile
            self._store.write([Put(_rt_item(rt), expect=0)])
        return self.get_resource_type(name) or rt

    def put_resource_type(self, rt: ResourceType) -> None:
        """Create or replace a resource type (the loader's seeding)."""
        self._store.write([Put(_rt_item(rt))])

    def save_associations(self, ns: Namespace, added: str | None = None, removed: str | None = None) -> Namespace:
        """Write ``ns`` whose associations changed (one added or removed), with the resource type's pointer.

        Raises:
            ConcurrentUpdateError: the namespace changed since it was read.
        """
        ops: list[Op] = [self._ns_put(ns, expect=ns.version)]
        if added is not None:
            ops.append(Put(Item(rt_pk(added), POINTER_PREFIX + ns.namespace)))
        if removed is not None:
            ops.append(Delete(rt_pk(removed), POINTER_PREFIX + ns.namespace))
        try:
            self._store.write(ops)
        except ConditionFailedError as exc:
            raise ConcurrentUpdateError(image_id=f"(namespace {ns.namespace})") from exc
        return replace(ns, version=ns.version + 1)


def dumps(doc: dict[str, Any]) -> str:
    """An item's document as stored (compact JSON)."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)
