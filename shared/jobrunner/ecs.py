"""ECS adapter of the job runner: one RunTask (Fargate) of the job task definition per job.

The task definition runs the data plane's container image (i12-infra); the launcher overrides its command with
``python -m functions.task_runner <job>`` and also passes the job in ``SGLANCE_JOB``. The launching function's role
needs ``ecs:RunTask`` on the task definition and ``iam:PassRole`` on its task and execution roles
(infra/stacks/access.py); docs/operators.md lists the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from shared.jobrunner import JOB_ENV, TASK_RUNNER_MODULE, JobLauncher, JobLaunchError

if TYPE_CHECKING:
    from shared.jobs import Job


class EcsJobLauncher(JobLauncher):
    """RunTask of ``task_definition`` on ``cluster`` (Fargate, awsvpc in ``subnets``)."""

    def __init__(
        self,
        client: Callable[[], Any],
        *,
        cluster: str,
        task_definition: str,
        container: str,
        subnets: Sequence[str],
        security_groups: Sequence[str] = (),
        assign_public_ip: bool = False,
    ) -> None:
        self._client = client
        self.cluster = cluster
        self.task_definition = task_definition
        self.container = container
        self.subnets = tuple(subnets)
        self.security_groups = tuple(security_groups)
        self.assign_public_ip = assign_public_ip

    def _launch(self, job: Job, text: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        network: dict[str, Any] = {
            "subnets": list(self.subnets),
            "assignPublicIp": "ENABLED" if self.assign_public_ip else "DISABLED",
        }
        if self.security_groups:
            network["securityGroups"] = list(self.security_groups)
        try:
            response = self._client().run_task(
                cluster=self.cluster,
                taskDefinition=self.task_definition,
                launchType="FARGATE",
                count=1,
                startedBy=f"sglance-{type(job).__name__}"[:36],
                networkConfiguration={"awsvpcConfiguration": network},
                overrides={
                    "containerOverrides": [
                        {
                            "name": self.container,
                            "command": ["python", "-m", TASK_RUNNER_MODULE, text],
                            "environment": [{"name": JOB_ENV, "value": text}],
                        }
                    ]
                },
            )
        except (BotoCoreError, ClientError) as exc:
            raise JobLaunchError(f"ECS RunTask failed: {exc}") from exc
        tasks = response.get("tasks") or []
        if not tasks:
            failures = response.get("failures") or []
            reasons = ", ".join(f"{f.get('arn', '')} {f.get('reason', '')}".strip() for f in failures) or "no task"
            raise JobLaunchError(f"ECS RunTask started no task: {reasons}")
        arn: str = tasks[0]["taskArn"]
        return arn
