"""Definitions of the AWS resources the functions use: one source for the CDK stacks and the local stack.

Names come from ``Settings``; shapes (keys, indexes, queue wiring) are fixed here. ``infra/stacks`` turns
these into CloudFormation, ``devstack`` creates them on the emulator with boto3, and
``shared/data/dynamodb/table.py`` builds its pynamodb models from the same table description. The key layout of
the image bucket (``image_object_key``) lives here too: the bucket's notifications and lifecycle filter on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.listing import SORT_KEYS

if TYPE_CHECKING:
    from shared.config import Settings


# Every image has one small "list entry" item per list partition it belongs to (its owner's, its visibility's;
# later, one per accepting member). Entries carry the encoded sort values; one keys-only index per sort key
# orders a partition. See docs/data-model.md for how a list request picks partitions and merges them.
LIST_PARTITION_ATTR = "lp"


@dataclass(frozen=True)
class IndexDef:
    """A global secondary index: keys-only, string keys."""

    name: str
    partition_attr: str
    sort_attr: str


@dataclass(frozen=True)
class TableDef:
    """A DynamoDB table with string ``pk``/``sk`` keys, on-demand billing and a version attribute."""

    partition_attr: str
    sort_attr: str
    indexes: tuple[IndexDef, ...]
    ttl_attr: str | None = None


def sort_attr(sort_key: str) -> str:
    """Name of the attribute holding an entry's encoded sort value for ``sort_key``."""
    return f"s_{sort_key}"


def index_name(sort_key: str) -> str:
    """Name of the index that orders a list partition by ``sort_key``."""
    return f"list-{sort_key}"


# Every in-flight image (saving, uploading, importing) has one more entry, ``LIST#w``, in one of the sweep partitions,
# with its deadline (fixed-width UTC text) in ``DEADLINE_ATTR``; the sweep index orders each partition by deadline, so
# the sweeper reads only the overdue entries, one page at a time, whatever the table holds. The partitions are shards
# (by image id) so that many concurrent uploads do not write one index partition.
DEADLINE_ATTR = "dl"
SWEEP_INDEX = "sweep-deadline"
SWEEP_SHARDS = 4


def sweep_partition(image_id: str) -> str:
    """The sweep partition of an in-flight image (a shard picked by its id)."""
    return f"w#{sum(image_id.encode()) % SWEEP_SHARDS}"


SWEEP_PARTITIONS = tuple(f"w#{shard}" for shard in range(SWEEP_SHARDS))

IMAGES_TABLE = TableDef(
    partition_attr="pk",
    sort_attr="sk",
    indexes=(
        *(IndexDef(index_name(k), LIST_PARTITION_ATTR, sort_attr(k)) for k in SORT_KEYS),
        IndexDef(SWEEP_INDEX, LIST_PARTITION_ATTR, DEADLINE_ATTR),
    ),
    ttl_attr="expires_at",
)


@dataclass(frozen=True)
class QueueDef:
    """An SQS queue with its dead-letter queue."""

    name: str
    visibility_timeout_s: int = 120
    max_receive_count: int = 5

    @property
    def dlq_name(self) -> str:
        """Name of the dead-letter queue."""
        return f"{self.name}-dlq"


# Key prefix of every image object (images/<image id>/<upload session id>); S3 notifications are filtered on it.
IMAGE_OBJECT_PREFIX = "images/"


def image_object_key(image_id: str, session_id: str) -> str:
    """The object key of one upload session's bytes."""
    return f"{IMAGE_OBJECT_PREFIX}{image_id}/{session_id}"


def parse_image_object_key(key: str) -> tuple[str, str] | None:
    """``(image id, session id)`` of an image object key, or None for any other key."""
    if not key.startswith(IMAGE_OBJECT_PREFIX):
        return None
    parts = key[len(IMAGE_OBJECT_PREFIX) :].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


# Objects carry this tag from upload until finalisation; the bucket lifecycle expires objects still pending
# after a week (abandoned or refused uploads), and never touches active ones.
STATE_TAG_KEY = "sglance-state"
PENDING_STATE = "pending"
ACTIVE_STATE = "active"


@dataclass(frozen=True)
class Resources:
    """Every named resource of one deployment."""

    table_name: str
    table: TableDef
    image_bucket: str
    upload_queue: QueueDef
    store_sync_queue: QueueDef
    import_queue: QueueDef
    event_bus_name: str
    # Notifications (docs/notifications.md): a rule on the bus sends every Glance event to this queue.
    notification_queue: QueueDef | None = None
    notification_rule: EventRuleDef | None = None

    @property
    def queues(self) -> tuple[QueueDef, ...]:
        """The work queues, each with its DLQ."""
        return (self.upload_queue, self.store_sync_queue, self.import_queue)


@dataclass(frozen=True)
class EventRuleDef:
    """An EventBridge rule on the notification bus that forwards matching events to an SQS queue."""

    name: str
    source: str
    queue_name: str

    @property
    def pattern(self) -> dict[str, list[str]]:
        """The event pattern: every event of the notification source."""
        return {"source": [self.source]}


def resources_for(settings: Settings) -> Resources:
    """The resource set named by ``settings``."""
    notification_queue = (
        QueueDef(settings.notification_queue_name, visibility_timeout_s=60)
        if settings.notification_queue_name
        else None
    )
    rule = (
        EventRuleDef(f"{settings.event_bus_name}-to-queue", settings.notification_source, notification_queue.name)
        if notification_queue is not None
        else None
    )
    return Resources(
        notification_queue=notification_queue,
        notification_rule=rule,
        table_name=settings.table_name,
        table=IMAGES_TABLE,
        image_bucket=settings.image_bucket,
        upload_queue=QueueDef(settings.upload_queue_name, visibility_timeout_s=900),
        store_sync_queue=QueueDef(
            settings.store_sync_queue_name, visibility_timeout_s=900, max_receive_count=settings.store_sync_max_attempts
        ),
        import_queue=QueueDef(settings.import_queue_name, visibility_timeout_s=900),
        event_bus_name=settings.event_bus_name,
    )
