"""Create the resources named by ``shared.resources`` on an AWS emulator (moto server), idempotently.

This is the local counterpart of ``infra/stacks``: the same ``Resources`` description, applied with boto3.
Every step first looks at what exists, so running it twice changes nothing and sends no second S3 test event.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from shared.resources import IMAGE_OBJECT_PREFIX, EventRuleDef, QueueDef, Resources, TableDef

log = logging.getLogger(__name__)

UPLOAD_NOTIFICATION_ID = "staging-to-upload-queue"


@dataclass(frozen=True)
class QueueUrls:
    """URL and ARN of a work queue and of its dead-letter queue."""

    url: str
    arn: str
    dlq_url: str
    dlq_arn: str


@dataclass(frozen=True)
class Provisioned:
    """What ``provision`` created or found, keyed by queue name."""

    queues: dict[str, QueueUrls]


def provision(resources: Resources, endpoint_url: str | None, region: str) -> Provisioned:
    """Create the table, bucket, queues (with DLQs and redrive), bucket notification and event bus."""
    session = boto3.session.Session(region_name=region)
    clients: list[Any] = []

    def client(service: str) -> Any:
        made = session.client(service, endpoint_url=endpoint_url, region_name=region)
        clients.append(made)
        return made

    try:
        _ensure_table(client("dynamodb"), resources.table_name, resources.table)
        s3 = client("s3")
        _ensure_bucket(s3, resources.image_bucket, region)
        sqs = client("sqs")
        queues = {q.name: _ensure_queue(sqs, q) for q in resources.queues}
        upload = queues[resources.upload_queue.name]
        _allow_bucket_to_send(sqs, upload, resources.image_bucket)
        _ensure_upload_notification(s3, resources.image_bucket, upload.arn)
        events = client("events")
        _ensure_event_bus(events, resources.event_bus_name)
        if resources.notification_queue is not None and resources.notification_rule is not None:
            queues[resources.notification_queue.name] = _ensure_queue(sqs, resources.notification_queue)
            _ensure_event_rule(events, sqs, resources.event_bus_name, resources.notification_rule, queues)
    finally:
        for made in clients:
            made.close()
    return Provisioned(queues=queues)


def _ensure_table(dynamodb: Any, name: str, table: TableDef) -> None:
    key_attrs = {table.partition_attr, table.sort_attr}
    for index in table.indexes:
        key_attrs.update((index.partition_attr, index.sort_attr))
    definitions = [{"AttributeName": attr, "AttributeType": "S"} for attr in sorted(key_attrs)]
    gsis = [_gsi(index.name, index.partition_attr, index.sort_attr) for index in table.indexes]
    try:
        existing = dynamodb.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        create: dict[str, Any] = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": definitions,
            "KeySchema": [
                {"AttributeName": table.partition_attr, "KeyType": "HASH"},
                {"AttributeName": table.sort_attr, "KeyType": "RANGE"},
            ],
        }
        if gsis:
            create["GlobalSecondaryIndexes"] = gsis
        dynamodb.create_table(**create)
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        log.info("created table %s with %d indexes", name, len(gsis))
    else:
        # A table left by an older run gets the indexes added since; DynamoDB takes one GSI per update.
        have = {gsi["IndexName"] for gsi in existing.get("GlobalSecondaryIndexes", [])}
        for gsi in gsis:
            if gsi["IndexName"] not in have:
                dynamodb.update_table(
                    TableName=name,
                    AttributeDefinitions=definitions,
                    GlobalSecondaryIndexUpdates=[{"Create": gsi}],
                )
                log.info("added index %s to table %s", gsi["IndexName"], name)
    if table.ttl_attr:
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or ttl.get("AttributeName") != table.ttl_attr:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attr}
            )


def _gsi(name: str, partition_attr: str, sort_attr: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": partition_attr, "KeyType": "HASH"},
            {"AttributeName": sort_attr, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }


def _ensure_bucket(s3: Any, name: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=name)
        return
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
    # us-east-1 is the one region that rejects an explicit LocationConstraint.
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    log.info("created bucket %s", name)


def _ensure_queue(sqs: Any, queue: QueueDef) -> QueueUrls:
    # CreateQueue without attributes returns an existing queue's URL whatever its attributes, so this converges
    # with set_queue_attributes instead of failing with QueueNameExists on a changed definition.
    dlq_url = sqs.create_queue(QueueName=queue.dlq_name)["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    url = sqs.create_queue(QueueName=queue.name)["QueueUrl"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={"VisibilityTimeout": str(queue.visibility_timeout_s), "RedrivePolicy": json.dumps(redrive)},
    )
    return QueueUrls(url=url, arn=_queue_arn(sqs, url), dlq_url=dlq_url, dlq_arn=dlq_arn)


def _queue_arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def _allow_bucket_to_send(sqs: Any, queue: QueueUrls, bucket: str) -> None:
    # moto does not check queue policies, but AWS, LocalStack and MiniStack refuse the notification without one.
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "s3-notifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue.arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"Policy": json.dumps(policy)})


def _ensure_upload_notification(s3: Any, bucket: str, queue_arn: str) -> None:
    wanted = {
        "Id": UPLOAD_NOTIFICATION_ID,
        "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": IMAGE_OBJECT_PREFIX}]}},
    }
    current = s3.get_bucket_notification_configuration(Bucket=bucket)
    # Every PutBucketNotificationConfiguration puts an s3:TestEvent on the queue, so only write on a change.
    if any(_same_queue_config(config, wanted) for config in current.get("QueueConfigurations", [])):
        return
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [wanted]})
    log.info("bucket %s notifies %s of objects created under %s", bucket, queue_arn, IMAGE_OBJECT_PREFIX)


def _same_queue_config(config: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def rules(cfg: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted(
            (rule["Name"].lower(), rule["Value"])
            for rule in cfg.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        )

    return (
        config.get("QueueArn") == wanted["QueueArn"]
        and sorted(config.get("Events", [])) == sorted(wanted["Events"])
        and rules(config) == rules(wanted)
    )


def _ensure_event_bus(events: Any, name: str) -> None:
    try:
        events.describe_event_bus(Name=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        events.create_event_bus(Name=name)
        log.info("created event bus %s", name)


def _ensure_event_rule(events: Any, sqs: Any, bus: str, rule: EventRuleDef, queues: dict[str, QueueUrls]) -> None:
    """The bus rule that copies notifications to their queue (put_rule and put_targets are idempotent)."""
    queue = queues[rule.queue_name]
    rule_arn = events.put_rule(Name=rule.name, EventBusName=bus, EventPattern=json.dumps(rule.pattern))["RuleArn"]
    events.put_targets(Rule=rule.name, EventBusName=bus, Targets=[{"Id": "notification-queue", "Arn": queue.arn}])
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "eventbridge-notifications",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue.arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue.url, Attributes={"Policy": json.dumps(policy)})
