"""Definitions of the AWS resources the functions use: one source for the CDK stacks and the local stack.

Names come from ``Settings``; shapes (keys, indexes, queue wiring) are fixed here. ``infra/stacks`` turns
these into CloudFormation, ``devstack`` creates them on the emulator with boto3, and
``shared/data/dynamodb.py`` builds its pynamodb models from the same table description.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.config import Settings

# Sort keys Glance accepts for GET /v2/images, in Glance's order.
SORT_KEYS: tuple[str, ...] = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
)

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


IMAGES_TABLE = TableDef(
    partition_attr="pk",
    sort_attr="sk",
    indexes=tuple(IndexDef(index_name(k), LIST_PARTITION_ATTR, sort_attr(k)) for k in SORT_KEYS),
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

    @property
    def queues(self) -> tuple[QueueDef, ...]:
        """The work queues, each with its DLQ."""
        return (self.upload_queue, self.store_sync_queue, self.import_queue)


def resources_for(settings: Settings) -> Resources:
    """The resource set named by ``settings``."""
    return Resources(
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
