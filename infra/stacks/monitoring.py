"""The monitoring stack: one CloudWatch dashboard for the API, the workers, their queues and the table."""

from __future__ import annotations

from aws_cdk import Duration, Environment, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.stacks.api import ApiStack
from infra.stacks.stateful import StatefulStack
from infra.stacks.workers import WorkersStack

PERIOD = Duration.minutes(5)


class MonitoringStack(Stack):
    """The operators' dashboard."""

    dashboard: cloudwatch.Dashboard

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        stateful: StatefulStack,
        api: ApiStack,
        workers: WorkersStack,
        env: Environment | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id, env=env, description=description)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"sglance-{stage}")
        http_api = api.http_api
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[http_api.metric_count(period=PERIOD)],
                right=[
                    http_api.metric_client_error(period=PERIOD),
                    http_api.metric_server_error(period=PERIOD),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API latency (p50, p99)",
                left=[
                    http_api.metric_latency(period=PERIOD, statistic="p50"),
                    http_api.metric_latency(period=PERIOD, statistic="p99"),
                ],
                width=12,
            ),
        )
        functions = {"api": api.api, **{name: worker.function for name, worker in workers.workers.items()}}
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=f"{name}: invocations, errors, throttles, duration p99",
                    left=[
                        glance.function.metric_invocations(period=PERIOD),
                        glance.function.metric_errors(period=PERIOD),
                        glance.function.metric_throttles(period=PERIOD),
                    ],
                    right=[glance.function.metric_duration(period=PERIOD, statistic="p99")],
                    width=6,
                )
                for name, glance in functions.items()
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Work queues: visible messages, oldest age",
                left=[
                    q.queue.metric_approximate_number_of_messages_visible(period=PERIOD)
                    for q in stateful.queues.values()
                ],
                right=[
                    q.queue.metric_approximate_age_of_oldest_message(period=PERIOD) for q in stateful.queues.values()
                ],
                width=12,
            ),
            cloudwatch.AlarmStatusWidget(
                title="Dead-letter queues", alarms=[worker.dlq_alarm for worker in workers.workers.values()], width=12
            ),
        )
        table = stateful.table
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Images table: consumed capacity, throttled requests",
                left=[
                    table.metric_consumed_read_capacity_units(period=PERIOD),
                    table.metric_consumed_write_capacity_units(period=PERIOD),
                ],
                right=[table.metric_throttled_requests_for_operations(period=PERIOD)],
                width=24,
            )
        )
