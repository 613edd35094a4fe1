"""The restore runbook of docs/operators.md ("Backup and restore"), steps 2 to 5, against moto server: restore the
table to a new name, copy its items back into the live table, reconcile the table with the image bucket (images
whose object is missing, objects no image points to) and recount quota usage.

moto's ``restore_table_to_point_in_time`` copies the table as it is at the call, whatever time is given, so the
test takes its "restore point" at the call and damages the live table afterwards; that the restore returns to an
earlier second is AWS's part and is not checked here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.provision import provision
from shared.config import Settings
from shared.data.dynamodb.images import DynamoImageRepository
from shared.data.dynamodb.quota import DynamoQuotaLedger
from shared.data.dynamodb.table import image_pk, table_models
from shared.domain.errors import NotFoundError
from shared.domain.image import Image, ImageData
from shared.domain.location import Location
from shared.domain.status import ImageStatus
from shared.notifications import NullNotifier
from shared.notifications.events import Events
from shared.quota.recount import drifts, repair
from shared.resources import IMAGE_OBJECT_PREFIX, IMAGES_TABLE, image_object_key, resources_for
from shared.services.unit_of_work import ImageUnitOfWork

pytestmark = pytest.mark.integration
REGION = "us-east-1"
TABLE = "restore-live"
RESTORED = "restore-live-restored-20261208"
BUCKET = "restore-images"
OWNER = "project-a"


@dataclass
class Live:
    uow: ImageUnitOfWork
    repo: DynamoImageRepository
    ledger: DynamoQuotaLedger
    ddb: Any
    s3: Any


@pytest.fixture
def live(moto_reset: str, aws_client: Callable[[str], Any]) -> Live:
    provision(resources_for(Settings(table_name=TABLE, image_bucket=BUCKET, aws_region=REGION)), moto_reset, REGION)
    ddb = aws_client("dynamodb")
    ddb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    models = table_models(IMAGES_TABLE, TABLE, moto_reset, REGION, ddb)
    ledger = DynamoQuotaLedger(models, {}, max_locations=3)
    repo = DynamoImageRepository(models)
    uow = ImageUnitOfWork(repo, ledger, Events(NullNotifier()), attempts=8)
    return Live(uow, repo, ledger, ddb, aws_client("s3"))


def _active_with_bytes(live: Live, size: int) -> Image:
    image = live.uow.add(Image.new(owner=OWNER, disk_format="raw", container_format="bare"))
    image.transition(ImageStatus.IMPORTING)
    image = live.uow.commit(image)
    key = image_object_key(image.id, "session-1")
    live.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x" * size)
    image.activate(ImageData(size, "md5", "sha512", "h", None), Location("s3", f"s3://{BUCKET}/{key}"))
    return live.uow.commit(image)


def _copy_back(ddb: Any, source: str, target: str) -> int:
    """Step 3 of the runbook, as docs/operators.md prints it: every item of the restored table into the live one."""
    copied = 0
    for page in ddb.get_paginator("scan").paginate(TableName=source):
        for item in page["Items"]:
            ddb.put_item(TableName=target, Item=item)
            copied += 1
    return copied


def _reconcile(repo: DynamoImageRepository, s3: Any) -> tuple[set[str], set[str]]:
    """Step 4: (ids of active images whose s3 object is missing, object keys no image points to)."""
    keys = {
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=IMAGE_OBJECT_PREFIX)
        for obj in page.get("Contents", [])
    }
    prefix = f"s3://{BUCKET}/"
    pointed: set[str] = set()
    missing: set[str] = set()
    for image in repo.scan_images():
        own = {
            loc.url.removeprefix(prefix) for loc in image.locations if loc.store == "s3" and loc.url.startswith(prefix)
        }
        pointed |= own
        if image.status is ImageStatus.ACTIVE and own - keys:
            missing.add(image.id)
    return missing, keys - set(pointed)


def test_restore_runbook__restore_copy_back_reconcile_recount(live: Live) -> None:
    kept = _active_with_bytes(live, 10)
    lost = _active_with_bytes(live, 20)
    gone_bytes = _active_with_bytes(live, 30)

    # Step 2: restore to a new table name; the live table is untouched.
    live.ddb.restore_table_to_point_in_time(
        SourceTableName=TABLE, TargetTableName=RESTORED, UseLatestRestorableTime=True
    )
    restored = live.ddb.describe_table(TableName=RESTORED)["Table"]
    live_table = live.ddb.describe_table(TableName=TABLE)["Table"]
    assert restored["KeySchema"] == live_table["KeySchema"]
    assert {i["IndexName"] for i in restored.get("GlobalSecondaryIndexes", [])} == {
        i["IndexName"] for i in live_table["GlobalSecondaryIndexes"]
    }

    # After the restore point: a new image, the damage (every item of one image deleted) and one image's bytes gone.
    newer = _active_with_bytes(live, 40)
    for item in live.ddb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": image_pk(lost.id)}},
    )["Items"]:
        live.ddb.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})
    with pytest.raises(NotFoundError):
        live.repo.get(lost.id)
    gone_key = image_object_key(gone_bytes.id, "session-1")
    live.s3.delete_object(Bucket=BUCKET, Key=gone_key)
    stray_key = image_object_key("00000000-0000-4000-8000-000000000000", "session-1")
    live.s3.put_object(Bucket=BUCKET, Key=stray_key, Body=b"left behind")

    # Step 3: copy back.
    assert _copy_back(live.ddb, RESTORED, TABLE) > 0
    back = live.repo.get(lost.id)
    assert back is not None and back.status is ImageStatus.ACTIVE and back.size == 20
    assert {i.id for i in live.repo.scan_images()} == {kept.id, lost.id, gone_bytes.id, newer.id}

    # Step 4: reconcile with the bucket.
    missing, strays = _reconcile(live.repo, live.s3)
    assert missing == {gone_bytes.id}
    assert strays == {stray_key}

    # Step 5: the copied-back counters are the restore point's (three images): the recount finds the newer one.
    found = drifts(live.repo.scan_images(), live.ledger)
    assert [d.project for d in found] == [OWNER]
    assert found[0].counters["image_count_total"] == 3
    assert found[0].recounted["image_count_total"] == 4
    assert found[0].recounted["image_size_total"] == 100
    assert repair(found[0], live.ledger)
    assert drifts(live.repo.scan_images(), live.ledger) == []
