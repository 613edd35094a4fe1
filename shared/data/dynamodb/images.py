"""The DynamoDB image repository (pynamodb). Table design and access patterns: docs/data-model.md.

- ``IMG#<id>`` / ``IMAGE``: the image; ``version`` guards every write (optimistic locking). A deleted image stays
  as a tombstone so its id can never be used again (OSSN-0075).
- ``IMG#<id>`` / ``LIST#<kind>``: one list entry per list partition (``o`` owner, ``v`` visibility, ``m#<project>``
  per member), with the encoded sort values (``shared/data/list_index.py``). The owner and visibility entries are
  written in the same transaction as the image, with the quota counter updates the write carries.

The pynamodb models are private (``table.py``): callers see only domain ``Image`` objects.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from shared.data.base import CounterLimitError, CounterUpdate, ImageRepository
from shared.data.dynamodb.table import (
    IMAGE_PREFIX,
    IMAGE_SK,
    USAGE_SK,
    LocationMap,
    TableModels,
    UploadMap,
    image_pk,
    query_overdue,
    quota_pk,
)
from shared.data.list_index import member_partitions, owner_partition, sort_values, sweep_entry, visibility_partition
from shared.domain.errors import ConcurrentUpdateError, DuplicateError, NotFoundError
from shared.domain.image import Image, Visibility
from shared.domain.location import Location, LocationStatus
from shared.domain.member import Member, MemberStatus
from shared.domain.status import ImageStatus
from shared.domain.upload import Lease, UploadMethod, UploadSession
from shared.resources import DEADLINE_ATTR, LIST_PARTITION_ATTR, sort_attr

# Entry kinds (the suffix of an entry's sort key) and how each derives its partition from the image.
_ENTRY_KINDS: dict[str, Callable[[Image], str | None]] = {
    "o": lambda img: owner_partition(img.owner) if img.owner else None,
    "v": lambda img: visibility_partition(img.visibility.value),
}


class DynamoImageRepository(ImageRepository):
    """Images in the DynamoDB table of ``models``; see the module docstring for the item layout."""

    def __init__(self, models: TableModels) -> None:
        self._models = models

    def botocore_clients(self) -> list[Any]:
        """The botocore clients this repository calls DynamoDB through (to hook call and item counters on)."""
        return self._models.botocore_clients()

    # -- hooks ------------------------------------------------------------------------------------

    def _get(self, image_id: str) -> Image | None:
        item = self._models.read(self._models.image, image_pk(image_id), IMAGE_SK)
        return None if item is None else _to_image(item)

    def _add(self, image: Image, counters: Sequence[CounterUpdate]) -> Image:
        item = self._to_item(image, version=None)
        try:
            self._transact(item, image, counters, self._models.image.pk.does_not_exist())
        except TransactWriteError as exc:
            if _condition_failed(exc, skip_last=len(counters)):
                raise DuplicateError(id=image.id) from exc
            if counters and _condition_failed(exc, only_last=len(counters)):
                raise CounterLimitError(image.id) from exc
            raise
        return _to_image(item)

    def _save(self, image: Image, counters: Sequence[CounterUpdate]) -> Image:
        item = self._to_item(image, version=image.version)
        try:
            self._transact(item, image, counters, self._models.image.pk.exists())
        except TransactWriteError as exc:
            if _condition_failed(exc, skip_last=len(counters)):
                if self._get(image.id) is None:
                    raise NotFoundError(kind="image", id=image.id) from exc
                raise ConcurrentUpdateError(image_id=image.id) from exc
            if counters and _condition_failed(exc, only_last=len(counters)):
                raise CounterLimitError(image.id) from exc
            raise
        return _to_image(item)

    def _transact(self, item: Any, image: Image, counters: Sequence[CounterUpdate], condition: Any) -> None:
        """One transaction: the image, its owner and visibility entries, then the counter updates (the
        transaction's last items, so the last cancellation reasons are theirs); then the member entries."""
        with TransactWrite(connection=self._models.connection) as tx:
            tx.save(item, condition=condition)
            for entry, keep in self._entries(image):
                if keep:
                    tx.save(entry)
                else:
                    tx.delete(entry)
            for counter in counters:
                self._count(tx, counter)
        self._write_member_entries(image)

    def _count(self, tx: TransactWrite, counter: CounterUpdate) -> None:
        usage = self._models.usage
        actions = [getattr(usage, name).add(delta) for name, delta in sorted(counter.deltas.items())]
        condition = None
        for name, ceiling in sorted(counter.ceilings.items()):
            attr = getattr(usage, name)
            check = attr.does_not_exist() | (attr <= ceiling)
            condition = check if condition is None else condition & check
        tx.update(usage(quota_pk(counter.project), USAGE_SK), actions=actions, condition=condition)

    def _scan(
        self, partition: str, sort_key: str, descending: bool, after: str | None, page_size: int
    ) -> Iterator[tuple[str, str]]:
        for value, pk in self._models.query_index(partition, sort_key, descending, after, page_size):
            yield value, pk[len(IMAGE_PREFIX) :]

    def _get_many(self, image_ids: Sequence[str]) -> dict[str, Image]:
        keys = [(image_pk(i), IMAGE_SK) for i in image_ids]
        return {item.id: _to_image(item) for item in self._models.image.batch_get(keys)}

    def _overdue(self, partition: str, before: str, limit: int) -> list[tuple[str, str]]:
        return [(value, pk[len(IMAGE_PREFIX) :]) for value, pk in query_overdue(self._models, partition, before, limit)]

    # -- list entries -----------------------------------------------------------------------------

    def _entries(self, image: Image) -> Iterator[tuple[Any, bool]]:
        """The image's owner and visibility entries, each with whether it should exist (False: delete it)."""
        values = sort_values(image)
        for kind, partition_of in _ENTRY_KINDS.items():
            partition = None if image.is_deleted() else partition_of(image)
            entry = self._models.entry(image_pk(image.id), f"LIST#{kind}")
            if partition is not None:
                setattr(entry, LIST_PARTITION_ATTR, partition)
                for key, value in values.items():
                    setattr(entry, sort_attr(key), value)
            yield entry, partition is not None
        # The sweep entry of an in-flight image (its owner's deadline); gone once the status settles.
        sweep = self._models.entry(image_pk(image.id), "LIST#w")
        found = sweep_entry(image)
        if found is not None:
            setattr(sweep, LIST_PARTITION_ATTR, found[0])
            setattr(sweep, DEADLINE_ATTR, found[1])
        yield sweep, found is not None

    def _write_member_entries(self, image: Image) -> None:
        """Entries in the partitions of the projects the image is shared with.

        An image has up to 128 members, more than one transaction holds (100 items), so these are written after
        the image's transaction, with batched writes. They are derived data: a list re-checks every candidate
        against the image item itself, so an entry left stale by a crash here can hide nothing and show nothing
        it should not; the next save of the image rewrites them all.
        """
        entries = list(self._member_entries(image))
        if not entries:
            return
        with self._models.entry.batch_write() as batch:
            for entry, keep in entries:
                if keep:
                    batch.save(entry)
                else:
                    batch.delete(entry)

    def _member_entries(self, image: Image) -> Iterator[tuple[Any, bool]]:
        current = member_partitions(image)
        values = sort_values(image)
        for project, partition in current.items():
            entry = self._models.entry(image_pk(image.id), f"LIST#m#{project}")
            setattr(entry, LIST_PARTITION_ATTR, partition)
            for key, value in values.items():
                setattr(entry, sort_attr(key), value)
            yield entry, True
        for project in (set(image.members) | image.removed_members) - set(current):
            yield self._models.entry(image_pk(image.id), f"LIST#m#{project}"), False

    # -- operator tools ---------------------------------------------------------------------------

    def scan_images(self) -> Iterator[Image]:
        """Every image item, tombstones included, by a full table Scan: for operator tools (the quota recount),
        never for requests."""
        for item in self._models.image.scan(self._models.image.sk == IMAGE_SK):
            yield _to_image(item)

    def import_images(self, images: Iterable[Image]) -> int:
        """Write new images with batched, unconditional writes (seeding a table or migrating from Glance).

        Unlike ``add`` this neither checks for existing ids nor counts quota usage, nor is atomic per image; use
        it only on ids known to be unused (a quota recount counts them). Returns the number of images written.
        """
        count = 0
        with self._models.image.batch_write() as images_batch, self._models.entry.batch_write() as entries_batch:
            for image in images:
                item = self._to_item(image, version=None)
                item.version = 1
                images_batch.save(item)
                for entry, keep in itertools.chain(self._entries(image), self._member_entries(image)):
                    if keep:
                        entries_batch.save(entry)
                count += 1
        return count

    def _to_item(self, image: Image, version: int | None) -> Any:
        item = self._models.image(image_pk(image.id), IMAGE_SK)
        if version is not None:
            item.version = version
        item.id = image.id
        item.owner = image.owner
        item.status = image.status.value
        item.name = image.name
        item.visibility = image.visibility.value
        item.protected = image.protected
        item.os_hidden = image.os_hidden
        item.disk_format = image.disk_format
        item.container_format = image.container_format
        item.min_ram = image.min_ram
        item.min_disk = image.min_disk
        item.size = image.size
        item.virtual_size = image.virtual_size
        item.checksum = image.checksum
        item.os_hash_algo = image.os_hash_algo
        item.os_hash_value = image.os_hash_value
        item.tags = set(image.tags) or None
        item.props = dict(image.extra_properties) or None
        item.locations = [
            LocationMap(store=loc.store, url=loc.url, status=loc.status.value, metadata=dict(loc.metadata))  # type: ignore[no-untyped-call]
            for loc in image.locations
        ] or None
        item.created_at = image.created_at
        item.updated_at = image.updated_at
        item.deleted_at = image.deleted_at
        item.upload = _upload_to_map(image.upload)
        item.members = {
            project: {"status": m.status.value, "created_at": _iso(m.created_at), "updated_at": _iso(m.updated_at)}
            for project, m in image.members.items()
        } or None
        return item


def _to_image(item: Any) -> Image:
    props = item.props.as_dict() if item.props is not None else {}
    image = Image(
        id=item.id,
        owner=item.owner,
        status=ImageStatus(item.status),
        name=item.name,
        visibility=Visibility(item.visibility),
        protected=bool(item.protected),
        os_hidden=bool(item.os_hidden),
        disk_format=item.disk_format,
        container_format=item.container_format,
        min_ram=int(item.min_ram),
        min_disk=int(item.min_disk),
        size=None if item.size is None else int(item.size),
        virtual_size=None if item.virtual_size is None else int(item.virtual_size),
        checksum=item.checksum,
        os_hash_algo=item.os_hash_algo,
        os_hash_value=item.os_hash_value,
        tags=set(item.tags or ()),
        extra_properties={str(k): str(v) for k, v in props.items()},
        locations=[
            Location(
                store=loc.store,
                url=loc.url,
                status=LocationStatus(loc.status),
                metadata={str(k): str(v) for k, v in (loc.metadata.as_dict() if loc.metadata else {}).items()},
            )
            for loc in item.locations or ()
        ],
        created_at=item.created_at,
        updated_at=item.updated_at,
        deleted_at=item.deleted_at,
        upload=_map_to_upload(item.upload),
        members=_map_to_members(item.id, item.members),
        version=int(item.version),
    )
    return image


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _map_to_members(image_id: str, raw: Any) -> dict[str, Member]:
    if raw is None:
        return {}
    return {
        str(project): Member(
            image_id=image_id,
            member_id=str(project),
            status=MemberStatus(record["status"]),
            created_at=datetime.fromisoformat(record["created_at"]),
            updated_at=datetime.fromisoformat(record["updated_at"]),
        )
        for project, record in raw.as_dict().items()
    }


def _upload_to_map(upload: UploadSession | None) -> Any:
    if upload is None:
        return None
    return UploadMap(  # type: ignore[no-untyped-call]
        id=upload.id,
        key=upload.key,
        method=upload.method.value,
        size=upload.size,
        part_size=upload.part_size,
        s3_upload_id=upload.s3_upload_id,
        checksum=upload.checksum,
        created_at=upload.created_at,
        expires_at=upload.expires_at,
        targets=list(upload.targets) or None,
        must_succeed=upload.all_stores_must_succeed,
        task_id=upload.task_id,
        lease_holder=upload.lease.holder if upload.lease is not None else None,
        lease_until=upload.lease.until if upload.lease is not None else None,
    )


def _map_to_upload(raw: Any) -> UploadSession | None:
    if raw is None:
        return None
    return UploadSession(
        id=raw.id,
        key=raw.key,
        method=UploadMethod(raw.method),
        size=None if raw.size is None else int(raw.size),
        part_size=None if raw.part_size is None else int(raw.part_size),
        s3_upload_id=raw.s3_upload_id,
        checksum=raw.checksum,
        created_at=raw.created_at,
        expires_at=raw.expires_at,
        targets=tuple(raw.targets or ()),
        all_stores_must_succeed=raw.must_succeed is not False,
        task_id=raw.task_id,
        lease=Lease(raw.lease_holder, raw.lease_until) if raw.lease_holder and raw.lease_until else None,
    )


def _condition_failed(exc: Exception, skip_last: int = 0, only_last: int | None = None) -> bool:
    """Whether a condition failed, among all items, all but the last ``skip_last``, or only the last ``only_last``
    (counter updates are the transaction's last items)."""
    reasons = list(getattr(exc, "cancellation_reasons", None) or [])
    if only_last is not None:
        reasons = reasons[len(reasons) - only_last :] if only_last else []
    elif skip_last:
        reasons = reasons[: len(reasons) - skip_last]
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in reasons)
