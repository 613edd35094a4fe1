"""The stateful stack builds exactly what ``shared/resources.py`` describes, and the CDK app synthesizes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from infra.stacks.stateful import ACCESS_LOG_PREFIX, StatefulStack
from shared.config import Settings
from shared.resources import IMAGE_OBJECT_PREFIX, IMAGES_TABLE, PENDING_STATE, STATE_TAG_KEY, QueueDef, resources_for

REPO_ROOT = Path(__file__).resolve().parents[2]

# Names unlike the defaults, so a test fails if the stack ignores what it is given.
RESOURCES = resources_for(
    Settings(
        table_name="test-sglance-images",
        image_bucket="test-sglance-image-bucket",
        upload_queue_name="test-sglance-upload",
        store_sync_queue_name="test-sglance-store-sync",
        event_bus_name="test-sglance-events",
    )
)
DLQ_RETENTION_S = 14 * 24 * 3600
DENY_INSECURE_TRANSPORT = Match.object_like(
    {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> StatefulStack:
    app = App(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    return StatefulStack(app, "test-stateful", resources=RESOURCES)


@pytest.fixture(scope="module")
def template(stack: StatefulStack) -> Template:
    return Template.from_stack(stack)


def _only(template: Template, resource_type: str, properties: dict[str, Any] | None = None) -> tuple[str, Any]:
    """The logical id and body of the one resource of ``resource_type`` whose properties match."""
    found = template.find_resources(resource_type, {"Properties": properties or {}})
    assert len(found) == 1, f"expected one {resource_type} matching {properties}, found {sorted(found)}"
    return next(iter(found.items()))


def _queue_id(template: Template, name: str) -> str:
    return _only(template, "AWS::SQS::Queue", {"QueueName": name})[0]


def _table(template: Template) -> Any:
    return _only(template, "AWS::DynamoDB::GlobalTable")[1]


def test_table__has_the_images_table_name_keys_and_string_attributes(template: Template) -> None:
    table = _table(template)["Properties"]

    assert table["TableName"] == RESOURCES.table_name
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [
        {"AttributeName": IMAGES_TABLE.partition_attr, "KeyType": "HASH"},
        {"AttributeName": IMAGES_TABLE.sort_attr, "KeyType": "RANGE"},
    ]
    key_attrs = {IMAGES_TABLE.partition_attr, IMAGES_TABLE.sort_attr}
    key_attrs |= {attr for index in IMAGES_TABLE.indexes for attr in (index.partition_attr, index.sort_attr)}
    assert sorted(table["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": attr, "AttributeType": "S"} for attr in sorted(key_attrs)
    ]


def test_table__indexes_equal_the_images_table_indexes(template: Template) -> None:
    indexes = _table(template)["Properties"]["GlobalSecondaryIndexes"]

    in_template = [
        (
            index["IndexName"],
            [(key["AttributeName"], key["KeyType"]) for key in index["KeySchema"]],
            index["Projection"],
        )
        for index in indexes
    ]
    assert in_template == [
        (index.name, [(index.partition_attr, "HASH"), (index.sort_attr, "RANGE")], {"ProjectionType": "KEYS_ONLY"})
        for index in IMAGES_TABLE.indexes
    ]


def test_table__is_recoverable_protected_encrypted_and_expires_items(template: Template) -> None:
    table = _table(template)
    properties = table["Properties"]
    (replica,) = properties["Replicas"]

    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert replica["DeletionProtectionEnabled"] is True
    assert [index["IndexName"] for index in replica["GlobalSecondaryIndexes"]] == [i.name for i in IMAGES_TABLE.indexes]
    assert properties["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    assert "KMSMasterKeyId" not in properties["SSESpecification"]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": IMAGES_TABLE.ttl_attr, "Enabled": True}
    assert (table["DeletionPolicy"], table["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_bucket__logs_access_to_a_private_encrypted_log_bucket_that_expires_logs(template: Template) -> None:
    image_bucket = _only(template, "AWS::S3::Bucket", {"BucketName": RESOURCES.image_bucket})[1]["Properties"]
    log_bucket_id, log_bucket = next(
        (logical_id, body)
        for logical_id, body in template.find_resources("AWS::S3::Bucket").items()
        if body["Properties"].get("BucketName") != RESOURCES.image_bucket
    )

    assert image_bucket["LoggingConfiguration"] == {
        "DestinationBucketName": {"Ref": log_bucket_id},
        "LogFilePrefix": ACCESS_LOG_PREFIX,
    }
    properties = log_bucket["Properties"]
    assert properties["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert properties["LifecycleConfiguration"]["Rules"] == [
        {"Id": "expire-access-logs", "ExpirationInDays": 365, "Status": "Enabled"}
    ]
    # Delivered by the logging service principal under a bucket policy, never an ACL; and TLS-only like the rest.
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": log_bucket_id},
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        DENY_INSECURE_TRANSPORT,
                        Match.object_like(
                            {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
                             "Action": "s3:PutObject"}
                        ),
                    ]
                )
            },
        },
    )  # fmt: skip


def test_bucket__is_private_encrypted_and_retained(template: Template) -> None:
    bucket = _only(template, "AWS::S3::Bucket", {"BucketName": RESOURCES.image_bucket})[1]
    properties = bucket["Properties"]

    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "VersioningConfiguration" not in properties
    assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_bucket__policy_refuses_requests_without_tls(template: Template) -> None:
    bucket_id = _only(template, "AWS::S3::Bucket", {"BucketName": RESOURCES.image_bucket})[0]

    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "Bucket": {"Ref": bucket_id},
            "PolicyDocument": {"Statement": Match.array_with([DENY_INSECURE_TRANSPORT])},
        },
    )


def test_bucket__lifecycle_aborts_stale_multipart_uploads_and_expires_pending_objects_only(template: Template) -> None:
    properties = _only(template, "AWS::S3::Bucket", {"BucketName": RESOURCES.image_bucket})[1]["Properties"]
    rules = {rule["Id"]: rule for rule in properties["LifecycleConfiguration"]["Rules"]}

    assert rules == {
        "abort-incomplete-multipart-uploads": {
            "Id": "abort-incomplete-multipart-uploads",
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            "Status": "Enabled",
        },
        "expire-abandoned-uploads": {
            "Id": "expire-abandoned-uploads",
            "Prefix": IMAGE_OBJECT_PREFIX,
            "TagFilters": [{"Key": STATE_TAG_KEY, "Value": PENDING_STATE}],
            "ExpirationInDays": 7,
            "Status": "Enabled",
        },
    }


@pytest.mark.parametrize("queue", RESOURCES.queues, ids=lambda q: q.name)
def test_queue__redrives_to_its_dlq_after_max_receive_count(template: Template, queue: QueueDef) -> None:
    dlq_id = _queue_id(template, queue.dlq_name)

    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": queue.name,
            "VisibilityTimeout": queue.visibility_timeout_s,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                "maxReceiveCount": queue.max_receive_count,
            },
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {
            "QueueName": queue.dlq_name,
            "MessageRetentionPeriod": DLQ_RETENTION_S,
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": Match.absent(),
        },
    )


def test_queues__are_exactly_the_work_queues_and_their_dlqs(template: Template) -> None:
    names = {body["Properties"]["QueueName"] for body in template.find_resources("AWS::SQS::Queue").values()}

    assert names == {name for q in RESOURCES.queues for name in (q.name, q.dlq_name)}


@pytest.mark.parametrize("name", [n for q in RESOURCES.queues for n in (q.name, q.dlq_name)])
def test_queue__policy_refuses_requests_without_tls(template: Template, name: str) -> None:
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": _queue_id(template, name)}],
            "PolicyDocument": {"Statement": Match.array_with([DENY_INSECURE_TRANSPORT])},
        },
    )


def test_bucket__notifies_the_upload_queue_of_objects_created_under_staging(template: Template) -> None:
    bucket_id = _only(template, "AWS::S3::Bucket", {"BucketName": RESOURCES.image_bucket})[0]
    queue_id = _queue_id(template, RESOURCES.upload_queue.name)
    notifications = _only(template, "Custom::S3BucketNotifications")[1]["Properties"]

    assert notifications["BucketName"] == {"Ref": bucket_id}
    assert notifications["NotificationConfiguration"] == {
        "QueueConfigurations": [
            {
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": IMAGE_OBJECT_PREFIX}]}},
                "QueueArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            }
        ]
    }
    # S3 checks the destination when the configuration is written, so the queue must already let it send.
    template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": queue_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "s3.amazonaws.com"},
                                "Action": Match.array_with(["sqs:SendMessage"]),
                                "Condition": {"ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [bucket_id, "Arn"]}}},
                            }
                        )
                    ]
                )
            },
        },
    )


def test_stack__exposes_the_constructs_later_stacks_wire_to(stack: StatefulStack, template: Template) -> None:
    def logical_id(construct: Any) -> str:
        return stack.get_logical_id(construct.node.default_child)

    assert set(stack.queues) == {q.name for q in RESOURCES.queues}
    assert logical_id(stack.upload_queue.queue) == _queue_id(template, RESOURCES.upload_queue.name)
    assert logical_id(stack.upload_queue.dlq) == _queue_id(template, RESOURCES.upload_queue.dlq_name)
    assert logical_id(stack.store_sync_queue.queue) == _queue_id(template, RESOURCES.store_sync_queue.name)
    assert logical_id(stack.table) == _only(template, "AWS::DynamoDB::GlobalTable")[0]
    assert logical_id(stack.bucket) == _only(template, "AWS::S3::Bucket", {"BucketName": RESOURCES.image_bucket})[0]
    template.resource_count_is("AWS::Events::EventBus", 0)  # the notifications stack owns the bus
