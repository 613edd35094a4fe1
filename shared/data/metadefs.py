"""The metadata definitions repository: ``MetadefRepository`` holds the catalog's logic once, over an ``ItemStore``
(``shared/data/metadef_items.py``: the items, their keys and codec; DynamoDB or a dict for unit tests).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared.data.metadef_items import (
    ALL_RESOURCE_TYPES,
    INDEX_SORT_KEY,
    KIND_PREFIX,
    NS_PREFIX,
    NS_SK,
    POINTER_PREFIX,
    RT_SK,
    Check,
    ConditionFailedError,
    Delete,
    Item,
    ItemStore,
    Op,
    Put,
    child_doc,
    child_from_item,
    kind_of,
    namespace_doc,
    namespace_from_item,
    namespace_partitions,
    namespace_sort_values,
    ns_pk,
    partitions_for,
    resource_type_from_item,
    resource_type_item,
    rt_pk,
)
from shared.data.paging import merged_ids
from shared.domain.errors import ConcurrentUpdateError, MetadefDuplicateError
from shared.domain.listing import Page
from shared.domain.metadefs import (
    Child,
    MetadefTag,
    Namespace,
    NamespaceContent,
    ResourceType,
    visible,
)

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
        return None if item is None else namespace_from_item(item)

    def content(self, name: str) -> NamespaceContent | None:
        """The namespace and everything it holds, from one Query of its partition."""
        ns: Namespace | None = None
        children: dict[str, list[Any]] = {k: [] for k in KIND_PREFIX}
        for item in self._store.query(ns_pk(name)):
            if item.sk == NS_SK:
                ns = namespace_from_item(item)
            for kind, prefix in KIND_PREFIX.items():
                if item.sk.startswith(prefix):
                    children[kind].append(child_from_item(kind, item))
        if ns is None:
            return None
        return NamespaceContent(ns, children["object"], children["property"], children["tag"])

    def _entry_ops(self, ns: Namespace) -> list[Op]:
        sorts = namespace_sort_values(ns)
        return [Put(Item(ns_pk(ns.namespace), sk, lp=lp, sorts=sorts)) for sk, lp in namespace_partitions(ns).items()]

    def _ns_put(self, ns: Namespace, expect: int) -> Put:
        return Put(Item(ns_pk(ns.namespace), NS_SK, namespace_doc(ns), version=ns.version + 1), expect=expect)

    def add_namespace(self, ns: Namespace, children: Sequence[Child] = ()) -> Namespace:
        """Create ``ns`` with its content; its associations' resource types are created when missing.

        Raises:
            MetadefDuplicateError: a namespace with this name exists.
        """
        stored = replace(ns, version=1)
        ops: list[Op] = [self._ns_put(ns, expect=0), *self._entry_ops(ns)]
        for association in ns.associations.values():
            ops.append(Put(Item(rt_pk(association.name), POINTER_PREFIX + ns.namespace)))
        ops.extend(Put(Item(ns_pk(ns.namespace), KIND_PREFIX[kind_of(c)] + c.name, child_doc(c)), expect=0)
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
            Put(Item(ns_pk(ns.namespace), NS_SK, namespace_doc(ns), version=1), expect=0),
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
        return [child_from_item(kind, i) for i in items]

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
            found = {
                i.doc["namespace"]: namespace_from_item(i)
                for i in self._store.batch_get([(ns_pk(n), NS_SK) for n in batch])
            }
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
            found.extend(namespace_from_item(i) for i in self._store.batch_get(keys))
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
        return None if item is None else child_from_item(kind, item)

    def children(self, ns: Namespace, kind: str) -> list[Child]:
        """Every object, property or tag of ``ns`` (one Query), in name order."""
        return [child_from_item(kind, i) for i in self._store.query(ns_pk(ns.namespace), KIND_PREFIX[kind])]

    def put_child(self, ns: Namespace, child: Child, old_name: str | None = None) -> Child:
        """Create (``old_name`` None) or replace a child, while the namespace exists; a rename moves it.

        Raises:
            MetadefDuplicateError: the (new) name is taken.
            ConcurrentUpdateError: the namespace went away, or the child did.
        """
        kind = kind_of(child)
        prefix = KIND_PREFIX[kind]
        ops: list[Op] = [Check(ns_pk(ns.namespace), NS_SK)]
        renamed = old_name is not None and old_name != child.name
        new_item = Item(ns_pk(ns.namespace), prefix + child.name, child_doc(child))
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
        ops.extend(Put(Item(ns_pk(ns.namespace), KIND_PREFIX["tag"] + t.name, child_doc(t)),
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
                found[item.pk] = resource_type_from_item(item)
        return [found[pk] for pk in pks if pk in found]

    def get_resource_type(self, name: str) -> ResourceType | None:
        """One resource type, or None."""
        item = self._store.get(rt_pk(name), RT_SK)
        return None if item is None else resource_type_from_item(item)

    def ensure_resource_type(self, name: str, now: datetime) -> ResourceType:
        """The resource type ``name``, created (unprotected) if it does not exist yet."""
        current = self.get_resource_type(name)
        if current is not None:
            return current
        rt = ResourceType(name, False, now, now)
        with contextlib.suppress(ConditionFailedError):  # created meanwhile
            self._store.write([Put(resource_type_item(rt), expect=0)])
        return self.get_resource_type(name) or rt

    def put_resource_type(self, rt: ResourceType) -> None:
        """Create or replace a resource type (the loader's seeding)."""
        self._store.write([Put(resource_type_item(rt))])

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
