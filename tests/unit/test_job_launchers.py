"""The job launchers: ECS RunTask requests checked against botocore's ECS API model (Stubber validates every
parameter; moto 5 crashes on an awsvpc RunTask, so no emulator test), and the local launcher running the real task
runner as a child process."""

from __future__ import annotations

import json
import sys

import boto3
import pytest
from botocore.stub import Stubber

from shared.jobrunner import JOB_ENV, JobLaunchError, job_text
from shared.jobrunner.ecs import EcsJobLauncher
from shared.jobrunner.local import SubprocessJobLauncher
from shared.jobs import FinalizeJob, read_envelope

ARN = "arn:aws:ecs:us-east-1:123456789012:task/sglance-jobs/0123456789abcdef"


def _launcher(client: object) -> EcsJobLauncher:
    return EcsJobLauncher(
        lambda: client,
        cluster="sglance-jobs",
        task_definition="sglance-job:3",
        container="data-plane",
        subnets=["subnet-1", "subnet-2"],
        security_groups=["sg-1"],
    )


def test_ecs_launcher__runs_the_job_task_definition_with_the_job_as_its_command() -> None:
    client = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    job = FinalizeJob("images/a/b", "req-1")
    text = job_text(job)
    expected = {
        "cluster": "sglance-jobs",
        "taskDefinition": "sglance-job:3",
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": "sglance-FinalizeJob",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-1", "subnet-2"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED",
            }
        },
        "overrides": {
            "containerOverrides": [
                {
                    "name": "data-plane",
                    "command": ["python", "-m", "functions.task_runner", text],
                    "environment": [{"name": JOB_ENV, "value": text}],
                }
            ]
        },
    }
    with Stubber(client) as stub:
        stub.add_response("run_task", {"tasks": [{"taskArn": ARN}], "failures": []}, expected)
        assert _launcher(client).launch(job) == ARN
    assert read_envelope(json.loads(text)) == job
    client.close()


def test_ecs_launcher__that_starts_no_task__is_a_launch_error_naming_the_reason() -> None:
    client = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("run_task", {"tasks": [], "failures": [{"arn": "x", "reason": "RESOURCE:MEMORY"}]})
        with pytest.raises(JobLaunchError, match="RESOURCE:MEMORY"):
            _launcher(client).launch(FinalizeJob("images/a/b"))
        stub.add_client_error("run_task", "AccessDeniedException", "not allowed")
        with pytest.raises(JobLaunchError, match="not allowed"):
            _launcher(client).launch(FinalizeJob("images/a/b"))
    client.close()


def test_local_launcher__runs_the_task_runner_which_refuses_a_malformed_job() -> None:
    launcher = SubprocessJobLauncher(sys.executable)
    launcher._launch(FinalizeJob("x"), "not json")  # the command a launch runs, with a job it cannot read

    assert launcher.wait(120) == [2]
