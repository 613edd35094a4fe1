"""Quota counters in the transactions of the unit of work, against moto server: every kind of change, the error
naming the limit, the per-image location limit, and recount/repair."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.provision import provision
from shared.config import Settings
from shared.data.dynamodb.images import DynamoImageRepository
from shared.data.dynamodb.quota import DynamoQuotaLedger
from shared.data.dynamodb.table import USAGE_SK, quota_pk, table_models
from shared.domain.errors import LimitExceededError
from shared.domain.image import Image, ImageData
from shared.domain.location import Location, LocationStatus
from shared.domain.quota import MiB, QuotaExceededError
from shared.domain.status import ImageStatus
from shared.notifications import NullNotifier
from shared.notifications.events import Events
from shared.quota.recount import drifts, repair
from shared.resources import IMAGES_TABLE, resources_for
from shared.services.unit_of_work import ImageUnitOfWork

pytestmark = pytest.mark.integration
REGION = "us-east-1"
TABLE = "quota-test"


@dataclass
class Parts:
    uow: ImageUnitOfWork
    repo: DynamoImageRepository
    ledger: DynamoQuotaLedger


@pytest.fixture
def parts(moto_reset: str, aws_client: Callable[[str], Any]) -> Parts:
    provision(resources_for(Settings(table_name=TABLE, aws_region=REGION)), moto_reset, REGION)
    models = table_models(IMAGES_TABLE, TABLE, moto_reset, REGION, aws_client("dynamodb"))
    ledger = DynamoQuotaLedger(models, {}, max_locations=3)
    repo = DynamoImageRepository(models)
    return Parts(ImageUnitOfWork(repo, ledger, Events(NullNotifier()), attempts=8), repo, ledger)


def _active(uow: ImageUnitOfWork, owner: str, size: int) -> Image:
    image = uow.add(Image.new(owner=owner, disk_format="raw", container_format="bare"))
    image.transition(ImageStatus.IMPORTING)
    image = uow.commit(image)
    assert uow.get(image.id).counted == (owner, {**_zero(), "image_count_total": 1, "image_count_uploading": 1})
    image.activate(ImageData(size, "md5", "sha512", "h", None), Location("s3", f"s3://b/{image.id}"))
    return uow.commit(image)


def _zero() -> dict[str, int]:
    return {"image_size_total": 0, "image_stage_total": 0, "image_count_total": 0, "image_count_uploading": 0}


def test_counters_follow_create_activate_owner_change_and_delete(
    parts: Parts,
) -> None:
    uow, ledger = parts.uow, parts.ledger
    image = _active(uow, "p1", 3 * MiB)
    assert ledger.counters("p1") == {**_zero(), "image_count_total": 1, "image_size_total": 3 * MiB}

    image.owner = "p2"
    image = uow.commit(image)
    assert ledger.counters("p1") == _zero()
    assert ledger.counters("p2")["image_size_total"] == 3 * MiB

    image.delete()
    uow.commit(image)
    assert ledger.counters("p2") == _zero()


def test_limit__is_named_in_the_413_and_nothing_is_written(parts: Parts) -> None:
    uow, ledger = parts.uow, parts.ledger
    ledger.set_limits("p1", {"image_size_total": 4})
    _active(uow, "p1", 3 * MiB)

    with pytest.raises(QuotaExceededError, match="image_size_total: the limit is 4 MiB, 3 MiB in use"):
        _active(uow, "p1", 2 * MiB)
    assert ledger.counters("p1")["image_size_total"] == 3 * MiB
    assert ledger.project_usage("p1").body()["image_size_total"] == {"limit": 4, "usage": 3}


def test_locations__are_limited_per_image(parts: Parts) -> None:
    uow = parts.uow
    image = _active(uow, "p1", 1)
    for store in ("a", "b"):
        image.locations.append(Location(store, f"x://{store}", LocationStatus.ACTIVE))
    image = uow.commit(image)
    image.locations.append(Location("c", "x://c", LocationStatus.PENDING))

    with pytest.raises(LimitExceededError, match="image locations"):
        uow.commit(image)


def test_recount__finds_drift_and_repair_fixes_it(parts: Parts) -> None:
    uow, repo, ledger = parts.uow, parts.repo, parts.ledger
    _active(uow, "p1", 5)
    repo.import_images([Image.new(owner="p1")])  # seeding writes without counting
    ledger.models.usage(quota_pk("p9"), USAGE_SK).delete()

    found = drifts(repo.scan_images(), ledger)

    assert [(d.project, d.counters["image_count_total"], d.recounted["image_count_total"]) for d in found] == [
        ("p1", 1, 2)
    ]
    assert repair(found[0], ledger)
    assert drifts(repo.scan_images(), ledger) == []
