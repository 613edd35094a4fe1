"""The stateful stack: the images table, the image bucket (and its access-log bucket), the work queues.

Everything that holds data lives here, apart from the code, so the API and worker stacks can be replaced
freely. Shapes come from ``shared/resources.py``, the same definitions ``devstack`` builds the local stack from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from aws_cdk import Acknowledgment, Duration, Environment, RemovalPolicy, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from shared.resources import IMAGE_OBJECT_PREFIX, PENDING_STATE, STATE_TAG_KEY, QueueDef, Resources, TableDef

# Clients abandon multipart uploads (killed CLI, lost network); their parts are billed until aborted.
ABORT_INCOMPLETE_UPLOADS_AFTER = Duration.days(1)
# Data under the staging prefix only waits for the upload-complete worker; after a week it is an abandoned upload.
STAGING_EXPIRATION = Duration.days(7)
# The longest SQS allows, so an operator has two weeks to inspect and redrive failed messages.
DLQ_RETENTION = Duration.days(14)
# AWS endpoints refuse older TLS already; stating it in the bucket policy keeps it true for audits and copies.
MINIMUM_TLS_VERSION = 1.2
# Server access logs of the image bucket (who presigned-PUT/GET what): kept a year, then expired.
ACCESS_LOG_EXPIRATION = Duration.days(365)
ACCESS_LOG_PREFIX = "image-bucket/"


@dataclass(frozen=True)
class WorkQueue:
    """A work queue and the dead-letter queue it redrives to."""

    queue: sqs.Queue
    dlq: sqs.Queue
    definition: QueueDef


class StatefulStack(Stack):
    """The data of one deployment: DynamoDB table, S3 buckets, SQS queues with DLQs."""

    resources: Resources
    table: dynamodb.TableV2
    bucket: s3.Bucket
    access_log_bucket: s3.Bucket
    queues: Mapping[str, WorkQueue]

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resources: Resources,
        env: Environment | None = None,
        description: str | None = None,
        termination_protection: bool = False,
    ) -> None:
        super().__init__(
            scope, construct_id, env=env, description=description, termination_protection=termination_protection
        )
        # Access logs are delivered under a bucket policy, not the LogDeliveryWrite ACL (ACLs stay disabled).
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self.resources = resources
        self.table = self._table(resources.table_name, resources.table)
        self.queues = MappingProxyType({q.name: self._work_queue(q) for q in resources.queues})
        self.access_log_bucket = self._access_log_bucket()
        self.bucket = self._bucket(resources.image_bucket)
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.upload_queue.queue),
            s3.NotificationKeyFilter(prefix=IMAGE_OBJECT_PREFIX),
        )
        Validations.of(self).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                reason=(
                    "Only on CDK's own BucketNotificationsHandler, the custom resource that writes the bucket's "
                    "notification configuration at deploy time; the service's functions use no managed policy."
                ),
            )
        )
        for dlq in (q.dlq for q in self.queues.values()):
            Validations.of(dlq).acknowledge(
                Acknowledgment(id="AwsSolutions-SQS3", reason="This queue is a dead-letter queue; it has none itself.")
            )

    @property
    def upload_queue(self) -> WorkQueue:
        """The queue S3 notifies when a staged upload lands."""
        return self.queues[self.resources.upload_queue.name]

    @property
    def import_queue(self) -> WorkQueue:
        """The queue of the import worker (web-download)."""
        return self.queues[self.resources.import_queue.name]

    @property
    def store_sync_queue(self) -> WorkQueue:
        """The queue of replication and deletion work across stores."""
        return self.queues[self.resources.store_sync_queue.name]

    def _table(self, table_name: str, definition: TableDef) -> dynamodb.TableV2:
        return dynamodb.TableV2(
            self,
            "ImagesTable",
            table_name=table_name,
            partition_key=_string_attr(definition.partition_attr),
            sort_key=_string_attr(definition.sort_attr),
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=index.name,
                    partition_key=_string_attr(index.partition_attr),
                    sort_key=_string_attr(index.sort_attr),
                    projection_type=dynamodb.ProjectionType.KEYS_ONLY,
                )
                for index in definition.indexes
            ],
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            time_to_live_attribute=definition.ttl_attr,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _bucket(self, bucket_name: str) -> s3.Bucket:
        return s3.Bucket(
            self,
            "ImageBucket",
            bucket_name=bucket_name,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=MINIMUM_TLS_VERSION,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix=ACCESS_LOG_PREFIX,
            # Image data is immutable once active and deleting an image must free its storage: versions would only cost.
            versioned=False,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-multipart-uploads",
                    abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS_AFTER,
                ),
                # Only objects still tagged pending (uploads never finalised, or refused): active images stay.
                s3.LifecycleRule(
                    id="expire-abandoned-uploads",
                    prefix=IMAGE_OBJECT_PREFIX,
                    tag_filters={STATE_TAG_KEY: PENDING_STATE},
                    expiration=STAGING_EXPIRATION,
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _access_log_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # S3 log delivery writes with the bucket policy CDK adds; ACLs stay off.
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=MINIMUM_TLS_VERSION,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=ACCESS_LOG_EXPIRATION)],
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(bucket).acknowledge(
            Acknowledgment(
                id="AwsSolutions-S1",
                reason="This bucket receives the image bucket's access logs; logging it to itself would loop.",
            )
        )
        return bucket

    def _work_queue(self, definition: QueueDef) -> WorkQueue:
        construct_id = _pascal(definition.name)
        dlq = sqs.Queue(
            self,
            f"{construct_id}Dlq",
            queue_name=definition.dlq_name,
            retention_period=DLQ_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        queue = sqs.Queue(
            self,
            construct_id,
            queue_name=definition.name,
            visibility_timeout=Duration.seconds(definition.visibility_timeout_s),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=definition.max_receive_count),
        )
        return WorkQueue(queue=queue, dlq=dlq, definition=definition)


def _string_attr(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def _pascal(name: str) -> str:
    """``sglance-upload-complete`` -> ``SglanceUploadComplete``, a stable construct id for a queue name."""
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-") if part)
