"""The workers stack: upload_complete, import_worker and store_sync, each fed by its SQS queue, and the sweeper on
an EventBridge schedule.

Workers hand the work that does not fit their timeout to the ECS job runner when one is configured
(``OperatorConfig.jobs``): each then may start the job task definition and pass it its two roles, nothing else.

Each may start the job task (``ecs:RunTask`` of its family, ``iam:PassRole`` of its two roles) for work that
cannot finish before its deadline; its environment names the cluster, task definition, subnets and security group.

Each queue redrives to its DLQ (stateful stack) after its ``maxReceiveCount``; an alarm fires as soon as a DLQ
holds a message. The event sources report partial batch failures, so one bad record is retried alone. A function
runs for at most a sixth of its queue's visibility timeout, as AWS advises for SQS event sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from aws_cdk import Duration, Environment, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import LambdaSizing
from infra.stacks import access
from infra.stacks.dataplane import JobLauncher
from infra.stacks.function import GlanceFunction, stack_code
from infra.stacks.props import ServiceProps
from infra.stacks.stateful import WorkQueue

UPLOAD_COMPLETE_HANDLER = "functions.upload_complete.handler.handler"
IMPORT_WORKER_HANDLER = "functions.import_worker.handler.handler"
STORE_SYNC_HANDLER = "functions.store_sync.handler.handler"
SWEEPER_HANDLER = "functions.sweeper.handler.handler"
# Records per invocation; partial batch responses retry only the failed ones.
BATCH_SIZE = 10
# AWS: a queue's visibility timeout should be at least six times the function timeout.
VISIBILITY_TO_TIMEOUT = 6


@dataclass(frozen=True)
class Worker:
    """A worker function and the queue that feeds it."""

    function: GlanceFunction
    queue: WorkQueue
    dlq_alarm: cloudwatch.Alarm


class WorkersStack(Stack):
    """The queue-driven functions, with their grants and DLQ alarms."""

    workers: Mapping[str, Worker]
    sweeper: GlanceFunction
    sweep_schedule: events.Rule

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ServiceProps,
        jobs: JobLauncher,
        env: Environment | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description=description)
        config, code, environment = props.config, props.code, props.environment
        stateful, secrets, notifications = props.stateful, props.secrets, props.notifications
        # Grants name the table and bucket rather than import them; the order must still hold.
        self.add_stack_dependency(stateful)
        self._config = config
        self._code = code
        # The workers hand work that cannot finish before their deadline to a job task (shared/jobrunner).
        # Without an operator-named job runner (``OperatorConfig.jobs``), the deployment's own job task (data plane
        # stack) runs the work that cannot finish before a worker's deadline.
        own_jobs = config.jobs is None
        self._package = stack_code(self, code, {**environment, **jobs.environment} if own_jobs else environment)
        self._alarm_topic = (
            sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn) if config.alarm_topic_arn else None
        )
        table, bucket, bus = stateful.resources.table_name, stateful.resources.image_bucket, notifications.bus

        upload = self._worker(
            "UploadComplete",
            "upload-complete",
            UPLOAD_COMPLETE_HANDLER,
            stateful.upload_queue,
            config.upload_complete,
            "finalises uploaded images (size, checksums, format, status)",
        )
        access.grant_table(upload.function.role, table)
        access.grant_image_objects(upload.function.role, bucket, access.UPLOAD_COMPLETE_OBJECT_ACTIONS)
        access.grant_send(upload.function.role, stateful.store_sync_queue.queue)
        access.grant_put_events(upload.function.role, bus)

        imports = self._worker(
            "ImportWorker",
            "import-worker",
            IMPORT_WORKER_HANDLER,
            stateful.import_queue,
            config.import_worker,
            "runs image imports (glance-direct, web-download)",
        )
        access.grant_table(imports.function.role, table)
        access.grant_image_objects(imports.function.role, bucket, access.IMPORT_WORKER_OBJECT_ACTIONS)
        access.grant_send(imports.function.role, stateful.store_sync_queue.queue)
        access.grant_put_events(imports.function.role, bus)

        sync = self._worker(
            "StoreSync",
            "store-sync",
            STORE_SYNC_HANDLER,
            stateful.store_sync_queue,
            config.store_sync,
            "replicates images to the other stores and deletes them there",
        )
        access.grant_table(sync.function.role, table)
        access.grant_image_objects(sync.function.role, bucket, access.STORE_SYNC_OBJECT_ACTIONS)
        access.grant_read_secrets(sync.function.role, [secrets.policy_arns[store] for store in secrets.stores])
        # A delete that must wait is queued again as a new job.
        access.grant_send(sync.function.role, stateful.store_sync_queue.queue)
        access.grant_put_events(sync.function.role, bus)  # fmt: skip

        if own_jobs:
            for worker in (upload, imports, sync):
                access.grant_run_job(worker.function.role, jobs.family, jobs.task_definition)
        self.workers = MappingProxyType({"upload_complete": upload, "import_worker": imports, "store_sync": sync})
        external = config.jobs
        if external is not None:
            for worker in self.workers.values():
                access.grant_run_jobs(
                    worker.function.role,
                    external.task_definition_arn,
                    (external.task_role_arn, external.execution_role_arn),
                )

        self.sweeper = GlanceFunction(
            self,
            "Sweeper",
            function_name=f"sglance-{config.stage}-sweeper",
            handler=SWEEPER_HANDLER,
            description="Serverless Glance: returns abandoned uploads and imports to queued (scheduled)",
            package=self._package,
            sizing=config.sweeper,
        )
        access.grant_table(self.sweeper.role, table)
        access.grant_image_objects(self.sweeper.role, bucket, access.SWEEPER_OBJECT_ACTIONS)
        access.grant_put_events(self.sweeper.role, bus)
        interval = config.runtime_settings().sweep_interval_seconds
        self.sweep_schedule = events.Rule(
            self,
            "SweepSchedule",
            rule_name=f"sglance-{config.stage}-sweep",
            description="Runs the sweeper: in-flight images past their owner's deadline go back to queued",
            schedule=events.Schedule.rate(Duration.minutes(max(1, interval // 60))),
            # A missed run is harmless: the next one reads the same overdue entries.
            targets=[events_targets.LambdaFunction(self.sweeper.function, retry_attempts=0)],
        )

    def _worker(
        self, construct_id: str, name: str, handler: str, queue: WorkQueue, sizing: LambdaSizing, what: str
    ) -> Worker:
        longest_s = queue.definition.visibility_timeout_s // VISIBILITY_TO_TIMEOUT
        if sizing.timeout_s > longest_s:
            raise ValueError(f"{name}: timeout_s {sizing.timeout_s} exceeds a sixth of its queue's visibility timeout")
        function = GlanceFunction(
            self,
            construct_id,
            function_name=f"sglance-{self._config.stage}-{name}",
            handler=handler,
            description=f"Serverless Glance: {what}",
            package=self._package,
            sizing=sizing,
        )
        function.function.add_event_source(
            event_sources.SqsEventSource(queue.queue, batch_size=BATCH_SIZE, report_batch_item_failures=True)
        )
        alarm = cloudwatch.Alarm(
            self,
            f"{construct_id}DlqAlarm",
            alarm_name=f"sglance-{self._config.stage}-{name}-dlq-not-empty",
            alarm_description=f"Messages of {name} failed every attempt and wait in its DLQ: inspect and redrive",
            metric=queue.dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            threshold=self._config.dlq_alarm_threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if self._alarm_topic is not None:
            alarm.add_alarm_action(cloudwatch_actions.SnsAction(self._alarm_topic))
        return Worker(function=function, queue=queue, dlq_alarm=alarm)
