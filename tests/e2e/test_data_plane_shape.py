"""The data plane and front door as deployed to the emulator: what MiniStack emulates of them (localstack/README.md).

MiniStack creates the ECS task definitions and service, the load balancer and the CloudFront distribution from the
templates and routes requests through the emulated balancer and edge, but runs no ECS task without a Docker engine:
the balancer's target group stays empty. So these tests check the deployed shape and the routing up to the targets;
the image is checked in tests/infra/test_image.py and the server process on the local stack.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.e2e.conftest import STAGE, DeployedStack

pytestmark = pytest.mark.e2e


def _client(deployed: DeployedStack, service: str) -> Any:
    return deployed.emulator.client(service)


def _via(deployed: DeployedStack, host: str) -> requests.Session:
    """A session whose requests reach the emulated resource that answers for ``host`` (balancer, distribution)."""
    session = requests.Session()
    session.headers["Host"] = host
    return session


def test_task_definitions__run_the_image_as_synthesized_for_the_service_and_the_jobs(deployed: DeployedStack) -> None:
    ecs = _client(deployed, "ecs")
    try:
        service_task = ecs.describe_task_definition(taskDefinition=f"sglance-{STAGE}-data-plane")["taskDefinition"]
        job_task = ecs.describe_task_definition(taskDefinition=f"sglance-{STAGE}-job")["taskDefinition"]
        services = ecs.describe_services(cluster=f"sglance-{STAGE}", services=[f"sglance-{STAGE}-data-plane"])
    finally:
        ecs.close()

    (server,) = service_task["containerDefinitions"]
    (job,) = job_task["containerDefinitions"]
    assert server["command"] == ["python", "-m", "functions.data_plane"]
    assert job["command"] == ["python", "-m", "functions.task_runner"]
    repository = deployed.outputs.output("ImageRepositoryUri")
    assert server["image"] == job["image"]
    assert server["image"].startswith(f"{repository}:")
    assert server["readonlyRootFilesystem"] is True
    assert {m["containerPort"] for m in server["portMappings"]} == {8080}
    env = {pair["name"]: pair["value"] for pair in server["environment"]}
    assert env["SGLANCE_AUTH_MODE"] == "keystone"
    assert env["SGLANCE_KEYSTONE_URL"] == deployed.keystone.url
    assert service_task["requiresCompatibilities"] == ["FARGATE"]
    (service,) = services["services"]
    assert service["desiredCount"] == 1
    assert service["launchType"] == "FARGATE"


def test_workers__name_the_job_task_they_start_past_their_deadline(deployed: DeployedStack) -> None:
    lambdas = _client(deployed, "lambda")
    try:
        env = lambdas.get_function_configuration(FunctionName=f"sglance-{STAGE}-import-worker")["Environment"][
            "Variables"
        ]
    finally:
        lambdas.close()

    assert env["SGLANCE_JOB_LAUNCHER"] == "ecs"
    assert env["SGLANCE_JOB_CLUSTER"] == f"sglance-{STAGE}"
    assert env["SGLANCE_JOB_TASK_DEFINITION"] == f"sglance-{STAGE}-job"
    assert env["SGLANCE_JOB_CONTAINER_NAME"] == "job"
    assert len(env["SGLANCE_JOB_SUBNETS"].split(",")) == 2
    assert env["SGLANCE_JOB_SECURITY_GROUPS"].startswith("sg-")


def test_load_balancer__forwards_only_the_data_paths_to_the_data_plane_targets(deployed: DeployedStack) -> None:
    balancer = _via(deployed, deployed.outputs.output("LoadBalancerDns"))
    image_id = uuid.uuid4()

    data = balancer.get(deployed.url(f"/v2/images/{image_id}/file"))
    stage = balancer.put(deployed.url(f"/v2.1/images/{image_id}/stage"), data=b"x")
    other = balancer.get(deployed.url("/v2/images"))

    # No task runs on the emulator, so the data plane's target group is empty: the balancer's own 503.
    for response in (data, stage):
        assert response.status_code == 503, response.text
        assert "No registered targets" in response.text
    assert other.status_code == 404
    assert other.json() == {"message": "not a data route"}


def test_front_door__sends_the_data_paths_to_the_balancer_and_the_rest_elsewhere(deployed: DeployedStack) -> None:
    edge = _via(deployed, deployed.outputs.output("DistributionDomain"))
    image_id = uuid.uuid4()

    data = edge.put(deployed.url(f"/v2/images/{image_id}/file"), data=b"bytes")
    other = edge.get(deployed.url("/versions"))

    assert data.status_code == 503, data.text
    assert "No registered targets" in data.text
    # The default behaviour's origin is API Gateway's execute-api host name on AWS, which the emulated edge does not
    # reach (localstack/README.md); what matters here is that it is not the balancer.
    assert "not a data route" not in other.text
    assert "No registered targets" not in other.text
