"""The DynamoDB task repository against moto server: items, TTL, per-image lookup, paging and optimistic locking."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.provision import provision
from shared.config import Settings
from shared.data.dynamodb.table import table_models
from shared.data.dynamodb.tasks import DynamoTaskRepository
from shared.domain.errors import ConcurrentUpdateError, NotFoundError
from shared.domain.listing import TaskQuery
from shared.domain.task import Task, TaskStatus
from shared.resources import IMAGES_TABLE, resources_for

pytestmark = pytest.mark.integration
REGION = "us-east-1"
TTL = timedelta(hours=48)


@pytest.fixture
def repo(moto_reset: str, aws_client: Callable[[str], Any]) -> Iterator[DynamoTaskRepository]:
    settings = Settings(table_name="tasks-test", aws_region=REGION)
    provision(resources_for(settings), moto_reset, REGION)
    yield DynamoTaskRepository(
        table_models(IMAGES_TABLE, "tasks-test", moto_reset, REGION, aws_client("dynamodb")), TTL
    )


def _task(owner: str = "p1", image_id: str | None = "img-1") -> Task:
    return Task.new("api_image_import", owner, {"image_id": image_id}, image_id, "req-1", "u1")


def test_add_get_save__round_trip_and_lose_no_update(repo: DynamoTaskRepository) -> None:
    stored = repo.add(_task())
    first, second = repo.get(stored.id), repo.get(stored.id)

    first.begin_processing()
    repo.save(first)
    second.fail("late", TTL)

    with pytest.raises(ConcurrentUpdateError):
        repo.save(second)
    again = repo.get(stored.id)
    assert again.status is TaskStatus.PROCESSING
    again.succeed({"image_id": "img-1"}, TTL)
    done = repo.save(again)
    read = repo.get(done.id)
    assert (read.status, read.result, read.request_id, read.user_id) == (
        TaskStatus.SUCCESS,
        {"image_id": "img-1"},
        "req-1",
        "u1",
    )
    assert read.expires_at is not None


def test_items__carry_the_ttl_attribute_and_a_pointer_next_to_the_image(
    repo: DynamoTaskRepository, aws_client: Callable[[str], Any]
) -> None:
    task = repo.add(_task(image_id="img-9"))
    dynamodb = aws_client("dynamodb")

    item = dynamodb.get_item(TableName="tasks-test", Key={"pk": {"S": f"TASK#{task.id}"}, "sk": {"S": "TASK"}})["Item"]
    pointer = dynamodb.get_item(TableName="tasks-test", Key={"pk": {"S": "IMG#img-9"}, "sk": {"S": f"TASK#{task.id}"}})
    ttl = dynamodb.describe_time_to_live(TableName="tasks-test")["TimeToLiveDescription"]

    assert ttl["AttributeName"] == "expires_at" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert int(item["expires_at"]["N"]) == int((task.created_at + TTL).timestamp())
    assert "Item" in pointer and "expires_at" in pointer["Item"]
    assert [t.id for t in repo.for_image("img-9")] == [task.id]


def test_expired_tasks__are_gone_before_dynamodb_deletes_them(repo: DynamoTaskRepository) -> None:
    task = repo.add(_task())
    task.fail("x", TTL)
    repo.save(task)
    later = datetime.now(UTC) + TTL + timedelta(minutes=1)

    with pytest.raises(NotFoundError):
        repo.get(task.id, now=later)
    assert repo.for_image("img-1", now=later) == []


def test_list__pages_one_owner_or_everyone_in_order(repo: DynamoTaskRepository) -> None:
    mine = [repo.add(_task("p1", f"i{n}")) for n in range(5)]
    repo.add(_task("p2", "other"))

    def page(owner: str | None, marker: Task | None = None, limit: int = 2) -> Any:
        query = TaskQuery(owner, None, None, "created_at", False, limit, marker, 100)
        return repo.list_page(query)

    first = page("p1")
    assert [t.id for t in first.items] == [t.id for t in mine[:2]]
    second = page("p1", repo.get(first.next_marker or ""))
    assert [t.id for t in second.items] == [t.id for t in mine[2:4]]
    assert len(page(None, limit=100).items) == 6
