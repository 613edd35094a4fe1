"""devstack.provision against a real moto server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

import pytest

from devstack.provision import provision
from shared.config import Settings
from shared.resources import IMAGE_OBJECT_PREFIX, IMAGES_TABLE, Resources, resources_for
from tests.conftest import AWS_REGION

pytestmark = pytest.mark.integration


@pytest.fixture
def resources() -> Resources:
    return resources_for(Settings())


def _drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message body now on the queue, parsed (the queues here hold a handful)."""
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        bodies.extend(json.loads(m["Body"]) for m in messages)


def _snapshot(aws_client: Callable[[str], Any], resources: Resources) -> dict[str, Any]:
    dynamodb, s3, sqs, events = (aws_client(s) for s in ("dynamodb", "s3", "sqs", "events"))
    table = dynamodb.describe_table(TableName=resources.table_name)["Table"]
    queues = {}
    for queue in resources.queues:
        for name in (queue.name, queue.dlq_name):
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            queues[name] = {k: v for k, v in attributes.items() if not k.endswith("Timestamp")}
    notification = s3.get_bucket_notification_configuration(Bucket=resources.image_bucket)
    notification.pop("ResponseMetadata")
    return {
        "tables": dynamodb.list_tables()["TableNames"],
        "indexes": sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]),
        "ttl": dynamodb.describe_time_to_live(TableName=resources.table_name)["TimeToLiveDescription"],
        "buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]],
        "queues": queues,
        "notification": notification,
        "buses": sorted(b["Name"] for b in events.list_event_buses()["EventBuses"]),
    }


def test_provision__run_twice__changes_nothing_and_sends_one_test_event(
    moto_reset: str, aws_client: Callable[[str], Any], resources: Resources
) -> None:
    provision(resources, moto_reset, AWS_REGION)
    first = _snapshot(aws_client, resources)

    provision(resources, moto_reset, AWS_REGION)

    assert _snapshot(aws_client, resources) == first
    sqs = aws_client("sqs")
    upload_url = sqs.get_queue_url(QueueName=resources.upload_queue.name)["QueueUrl"]
    assert [body.get("Event") for body in _drain(sqs, upload_url)] == ["s3:TestEvent"]


def test_provision__images_table__has_every_index_keys_only_with_ttl(
    moto_reset: str, aws_client: Callable[[str], Any], resources: Resources
) -> None:
    provision(resources, moto_reset, AWS_REGION)

    dynamodb = aws_client("dynamodb")
    table = dynamodb.describe_table(TableName=resources.table_name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {index.name for index in IMAGES_TABLE.indexes}
    for index in IMAGES_TABLE.indexes:
        assert indexes[index.name]["KeySchema"] == [
            {"AttributeName": index.partition_attr, "KeyType": "HASH"},
            {"AttributeName": index.sort_attr, "KeyType": "RANGE"},
        ]
        assert indexes[index.name]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert all(d["AttributeType"] == "S" for d in table["AttributeDefinitions"])
    ttl = dynamodb.describe_time_to_live(TableName=resources.table_name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": IMAGES_TABLE.ttl_attr}


def test_provision__table_from_an_older_run__gets_the_missing_indexes(
    moto_reset: str, aws_client: Callable[[str], Any], resources: Resources
) -> None:
    first = IMAGES_TABLE.indexes[0]
    aws_client("dynamodb").create_table(
        TableName=resources.table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": attr, "AttributeType": "S"}
            for attr in ("pk", "sk", first.partition_attr, first.sort_attr)
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": first.name,
                "KeySchema": [
                    {"AttributeName": first.partition_attr, "KeyType": "HASH"},
                    {"AttributeName": first.sort_attr, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    )

    provision(resources, moto_reset, AWS_REGION)

    table = aws_client("dynamodb").describe_table(TableName=resources.table_name)["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {i.name for i in IMAGES_TABLE.indexes}


def test_provision__each_queue__redrives_to_its_dlq(
    moto_reset: str, aws_client: Callable[[str], Any], resources: Resources
) -> None:
    provisioned = provision(resources, moto_reset, AWS_REGION)

    sqs = aws_client("sqs")
    for queue in resources.queues:
        urls = provisioned.queues[queue.name]
        attributes = sqs.get_queue_attributes(QueueUrl=urls.url, AttributeNames=["All"])["Attributes"]
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": urls.dlq_arn,
            "maxReceiveCount": queue.max_receive_count,
        }
        assert attributes["VisibilityTimeout"] == str(queue.visibility_timeout_s)
        assert urls.dlq_arn.endswith(f":{queue.dlq_name}")


def test_provision__event_bus__exists(moto_reset: str, aws_client: Callable[[str], Any], resources: Resources) -> None:
    provision(resources, moto_reset, AWS_REGION)

    bus = aws_client("events").describe_event_bus(Name=resources.event_bus_name)
    assert bus["Name"] == resources.event_bus_name


def test_upload_notification__put_under_staging__reaches_upload_queue_and_others_do_not(
    moto_reset: str, aws_client: Callable[[str], Any], resources: Resources
) -> None:
    provisioned = provision(resources, moto_reset, AWS_REGION)
    s3, sqs = aws_client("s3"), aws_client("sqs")

    s3.put_object(Bucket=resources.image_bucket, Key="elsewhere/outside", Body=b"x")
    s3.put_object(Bucket=resources.image_bucket, Key=f"{IMAGE_OBJECT_PREFIX}upload 1", Body=b"abc")

    bodies = [b for b in _drain(sqs, provisioned.queues[resources.upload_queue.name].url) if "Records" in b]
    records = [record for body in bodies for record in body["Records"]]
    assert [(r["eventName"], unquote_plus(r["s3"]["object"]["key"])) for r in records] == [
        ("ObjectCreated:Put", f"{IMAGE_OBJECT_PREFIX}upload 1")
    ]
    assert records[0]["s3"]["bucket"]["name"] == resources.image_bucket
    assert records[0]["s3"]["object"]["size"] == 3
    store_sync_url = provisioned.queues[resources.store_sync_queue.name].url
    assert _drain(sqs, store_sync_url) == []
