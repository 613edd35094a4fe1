"""Quota counters in the image repository's transactions, against moto server: every kind of change, the error
naming the limit, the per-image location limit, and recount/repair."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devstack.provision import provision
from shared.config import Settings
from shared.data.dynamodb import DynamoImageRepository
from shared.domain.errors import LimitExceededError
from shared.domain.image import Image, ImageData, ImageStatus, Location, LocationStatus
from shared.domain.quota import MiB, QuotaExceededError
from shared.quota import QuotaLedger
from shared.quota.recount import drifts, repair
from shared.resources import IMAGES_TABLE, resources_for

pytestmark = pytest.mark.integration
REGION = "us-east-1"
TABLE = "quota-test"


@pytest.fixture
def parts(moto_reset: str, aws_client: Callable[[str], Any]) -> tuple[DynamoImageRepository, QuotaLedger]:
    provision(resources_for(Settings(table_name=TABLE, aws_region=REGION)), moto_reset, REGION)
    ledger = QuotaLedger(TABLE, {}, REGION, client=aws_client("dynamodb"), max_locations=3)
    return DynamoImageRepository(IMAGES_TABLE, TABLE, REGION, moto_reset, quota=ledger), ledger


def _active(repo: DynamoImageRepository, owner: str, size: int) -> Image:
    image = repo.add(Image.new(owner=owner, disk_format="raw", container_format="bare"))
    image.transition(ImageStatus.IMPORTING)
    image = repo.save(image)
    assert repo.get(image.id).counted == (owner, {**_zero(), "image_count_total": 1, "image_count_uploading": 1})
    image.activate(ImageData(size, "md5", "sha512", "h", None), Location("s3", f"s3://b/{image.id}"))
    return repo.save(image)


def _zero() -> dict[str, int]:
    return {"image_size_total": 0, "image_stage_total": 0, "image_count_total": 0, "image_count_uploading": 0}


def test_counters_follow_create_activate_owner_change_and_delete(
    parts: tuple[DynamoImageRepository, QuotaLedger],
) -> None:
    repo, ledger = parts
    image = _active(repo, "p1", 3 * MiB)
    assert ledger.counters("p1") == {**_zero(), "image_count_total": 1, "image_size_total": 3 * MiB}

    image.owner = "p2"
    image = repo.save(image)
    assert ledger.counters("p1") == _zero()
    assert ledger.counters("p2")["image_size_total"] == 3 * MiB

    image.delete()
    repo.save(image)
    assert ledger.counters("p2") == _zero()


def test_limit__is_named_in_the_413_and_nothing_is_written(parts: tuple[DynamoImageRepository, QuotaLedger]) -> None:
    repo, ledger = parts
    ledger.set_limits("p1", {"image_size_total": 4})
    _active(repo, "p1", 3 * MiB)

    with pytest.raises(QuotaExceededError, match="image_size_total: the limit is 4 MiB, 3 MiB in use"):
        _active(repo, "p1", 2 * MiB)
    assert ledger.counters("p1")["image_size_total"] == 3 * MiB
    assert ledger.project_usage("p1").body()["image_size_total"] == {"limit": 4, "usage": 3}


def test_locations__are_limited_per_image(parts: tuple[DynamoImageRepository, QuotaLedger]) -> None:
    repo, _ = parts
    image = _active(repo, "p1", 1)
    for store in ("a", "b"):
        image.locations.append(Location(store, f"x://{store}", LocationStatus.ACTIVE))
    image = repo.save(image)
    image.locations.append(Location("c", "x://c", LocationStatus.PENDING))

    with pytest.raises(LimitExceededError, match="image locations"):
        repo.save(image)


def test_recount__finds_drift_and_repair_fixes_it(parts: tuple[DynamoImageRepository, QuotaLedger]) -> None:
    repo, ledger = parts
    _active(repo, "p1", 5)
    repo.import_images([Image.new(owner="p1")])  # seeding writes without counting
    ledger._client().delete_item(TableName=TABLE, Key={"pk": {"S": "QUOTA#p9"}, "sk": {"S": "USAGE"}})

    found = drifts(repo.scan_images(), ledger)

    assert [(d.project, d.counters["image_count_total"], d.recounted["image_count_total"]) for d in found] == [
        ("p1", 1, 2)
    ]
    assert repair(found[0], ledger)
    assert drifts(repo.scan_images(), ledger) == []
