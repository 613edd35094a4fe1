"""Least-privilege grants between the functions and the data (the "registry layer" between domain and DAL).

Each function's role gets only the actions its code calls (shared/data/dynamodb/, shared/upload_bucket/s3.py,
shared/queues.py, shared/notifications, shared/secrets.py), on its own resources, and on the image bucket only
under the image object prefix. These lists are the one place to widen when the code starts calling something new.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, Aws, Validations
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs

from shared.resources import IMAGE_OBJECT_PREFIX

# pynamodb: get/batch_get/query (models and indexes), save/update/delete, TransactWrite (its Put/Update/Delete/
# ConditionCheck are authorised as the single-item actions), batch_write, and DescribeTable for its metadata.
TABLE_ACTIONS = (
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
)
# Presigned URLs carry the signer's permissions: the API may only presign what it may do itself.
API_OBJECT_ACTIONS = (
    "s3:AbortMultipartUpload",  # replaced or deleted upload sessions
    "s3:DeleteObject",  # image delete
    "s3:GetObject",  # presigned GET, HEAD, PUT /file streaming
    "s3:ListMultipartUploadParts",  # session status, completion
    "s3:PutObject",  # presigned PUT / UploadPart, CreateMultipartUpload, CompleteMultipartUpload, PUT /file
    "s3:PutObjectTagging",  # the pending/active state tag
)
UPLOAD_COMPLETE_OBJECT_ACTIONS = ("s3:DeleteObject", "s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging")
IMPORT_WORKER_OBJECT_ACTIONS = API_OBJECT_ACTIONS
# Reads the primary copy to replicate it; deletes it when an image's locations are purged.
STORE_SYNC_OBJECT_ACTIONS = ("s3:DeleteObject", "s3:GetObject")
# The data plane serves the API's data routes with the API's code: what the API may do with image objects.
DATA_PLANE_OBJECT_ACTIONS = API_OBJECT_ACTIONS
# A job runs the finaliser, the import worker or store_sync past a Lambda's deadline: what any of them may do.
JOB_OBJECT_ACTIONS = tuple(
    sorted(set(UPLOAD_COMPLETE_OBJECT_ACTIONS) | set(IMPORT_WORKER_OBJECT_ACTIONS) | set(STORE_SYNC_OBJECT_ACTIONS))
)

# Deletes what an abandoned session left: its object, its open multipart upload.
SWEEPER_OBJECT_ACTIONS = ("s3:AbortMultipartUpload", "s3:DeleteObject")


def table_arn(table_name: str) -> str:
    """The images table's ARN in the deploying account and region (built from its name, no cross-stack export)."""
    return f"arn:{Aws.PARTITION}:dynamodb:{Aws.REGION}:{Aws.ACCOUNT_ID}:table/{table_name}"


def image_objects_arn(bucket_name: str) -> str:
    """The ARN pattern of every image object: the image prefix of the image bucket."""
    return f"arn:{Aws.PARTITION}:s3:::{bucket_name}/{IMAGE_OBJECT_PREFIX}*"


def grant_table(role: iam.IRole, table_name: str) -> None:
    """Item reads and writes on the images table and its indexes; no Scan, no table administration."""
    arn = table_arn(table_name)
    role.add_to_principal_policy(iam.PolicyStatement(actions=list(TABLE_ACTIONS), resources=[arn, f"{arn}/index/*"]))
    Validations.of(role).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{_nag(arn)}/index/*]",
            reason="Queries run on the table's list indexes, one per sort key (shared/resources.py); all of them.",
        )
    )


def grant_image_objects(role: iam.IRole, bucket_name: str, actions: Iterable[str]) -> None:
    """``actions`` on the image objects only (``images/*``), never on the bucket itself."""
    arn = image_objects_arn(bucket_name)
    role.add_to_principal_policy(iam.PolicyStatement(actions=sorted(actions), resources=[arn]))
    Validations.of(role).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{_nag(arn)}]",
            reason=(
                "Image object keys are images/<image id>/<upload id>, created at run time: the grant is scoped to "
                "that prefix of the one image bucket, with only the object actions this function calls."
            ),
        )
    )


def grant_send(role: iam.IRole, queue: sqs.IQueue) -> None:
    """Send messages to ``queue`` (and look up its URL)."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage"], resources=[queue.queue_arn]
        )
    )


def grant_put_events(role: iam.IRole, bus: events.IEventBus) -> None:
    """Publish image events on the bus."""
    role.add_to_principal_policy(iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus.event_bus_arn]))


def grant_read_secrets(role: iam.IRole, arns: Iterable[str]) -> None:
    """Read the current value of each secret (ARNs, or the name patterns of ``secrets.secret_arn_pattern``)."""
    resources = sorted(arns)
    if not resources:
        return
    role.add_to_principal_policy(iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=resources))
    for arn in resources:
        if arn.endswith("-??????"):
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{_nag(arn)}]",
                    reason=(
                        "One secret by name: Secrets Manager appends 6 random characters to a secret's ARN, and "
                        "'-??????' matches exactly those (the pattern AWS documents for secrets created by name)."
                    ),
                )
            )


def job_task_definition_arn(family: str) -> str:
    """Every revision of the job task definition ``family`` (RunTask by family runs its latest ACTIVE one)."""
    return f"arn:{Aws.PARTITION}:ecs:{Aws.REGION}:{Aws.ACCOUNT_ID}:task-definition/{family}:*"


def grant_run_job(role: iam.IRole, family: str, task: ecs.TaskDefinition) -> None:
    """Start the job task (``ecs:RunTask`` of its family) and hand it its two roles (``iam:PassRole``)."""
    arn = job_task_definition_arn(family)
    role.add_to_principal_policy(iam.PolicyStatement(actions=["ecs:RunTask"], resources=[arn]))
    passed = [task.task_role.role_arn]
    if task.execution_role is not None:
        passed.append(task.execution_role.role_arn)
    role.add_to_principal_policy(iam.PolicyStatement(actions=["iam:PassRole"], resources=passed))
    Validations.of(role).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{_nag(arn)}]",
            reason=(
                "RunTask names the job task definition by family, which runs its newest revision; ':*' is every "
                "revision of that one family (each deployment registers a new one), nothing else."
            ),
        )
    )


def _nag(arn: str) -> str:
    """How cdk-nag prints an ARN built from pseudo parameters in its finding ids."""
    return (
        arn.replace(Aws.PARTITION, "<AWS::Partition>")
        .replace(Aws.REGION, "<AWS::Region>")
        .replace(Aws.ACCOUNT_ID, "<AWS::AccountId>")
    )


def grant_run_jobs(role: iam.Role, task_definition_arn: str, passed_role_arns: Iterable[str]) -> None:
    """Start the job task definition (ECS RunTask) and hand it its task and execution roles (iam:PassRole)."""
    role.add_to_policy(iam.PolicyStatement(actions=["ecs:RunTask"], resources=[task_definition_arn]))
    role.add_to_policy(iam.PolicyStatement(actions=["iam:PassRole"], resources=sorted(passed_role_arns)))
    if task_definition_arn.endswith(":*"):
        Validations.of(role).acknowledge(
            Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{task_definition_arn}]",
                reason="Every revision of the one job task definition family: a new revision must not need a deploy.",
            )
        )
