"""CDK tests run a jsii (node) kernel; keep its end-of-life banner for node 20 out of the output.

- ``deployment`` (session): every stack of one deployment, built by the app's own ``add_deployment`` from an
  operator configuration that uses every option (stores with and without their own secret, a custom domain, a
  policy file, an alarm topic), checked by cdk-nag's AwsSolutions rules and synthesized (a finding fails it).
- ``synthesized_off`` (session): the same configuration with ``data_plane`` off.
- ``templates`` (session): stack short name (``api``, ``workers``, ...) -> ``Template``; ``assembly`` its folder.
"""

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Must be set before the first `import aws_cdk` starts the kernel (to the running Node major); `make` exports it too.
if "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION" not in os.environ:
    _node = subprocess.run(
        ["node", "-p", "process.versions.node.split('.')[0]"], capture_output=True, text=True, check=False
    )
    os.environ["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = _node.stdout.strip() or "20"

from aws_cdk import App, Validations  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.cdk_app import Deployment, add_deployment  # noqa: E402
from infra.config import OperatorConfig  # noqa: E402

CEPH_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:ops/ceph-rgw-AbCdEf"
# The ECS job runner the workers hand long work to (built by the data plane's stack; here named as an operator would).
JOB_CLUSTER = "arn:aws:ecs:eu-west-1:111122223333:cluster/sglance-qa"
JOB_TASK_DEFINITION = "arn:aws:ecs:eu-west-1:111122223333:task-definition/sglance-qa-job:*"
JOB_TASK_ROLE = "arn:aws:iam::111122223333:role/sglance-qa-job-task"
JOB_EXECUTION_ROLE = "arn:aws:iam::111122223333:role/sglance-qa-job-execution"


@dataclass(frozen=True)
class Synthesized:
    """A deployment and its synthesized templates."""

    deployment: Deployment
    assembly: Path
    templates: dict[str, Template]


def operator_config(policy_file: Path, **changes: Any) -> OperatorConfig:
    """A configuration that uses every option, with names unlike the defaults."""
    values: dict[str, Any] = {
        "stage": "qa",
        "table_name": "qa-sglance-images",
        "image_bucket": "qa-sglance-image-bucket",
        "upload_queue_name": "qa-upload",
        "store_sync_queue_name": "qa-store-sync",
        "import_queue_name": "qa-import",
        "event_bus_name": "qa-events",
        "keystone_url": "https://keystone.example.org/v3",
        "keystone_service_username": "glance-qa",
        "stores": {
            "swift1": {"type": "swift", "auth_url": "https://keystone.example.org/v3", "user": "glance",
                       "project_name": "service", "container": "glance"},
            "ceph1": {"type": "ceph", "endpoint_url": "https://rgw.example.org", "bucket": "glance",
                      "secret_arn": CEPH_SECRET_ARN},
        },
        "replicate_to": ("swift1",),
        "store_sync_max_attempts": 7,
        "quotas": {"image_size_cap": 10 * 1024**3, "image_tag_quota": 20},
        "policy_file": policy_file,
        "settings": {"hashing_algorithm": "sha256"},
        "domain_name": "images.example.org",
        # CloudFront (the front door holds the domain) takes us-east-1 certificates only.
        "certificate_arn": "arn:aws:acm:us-east-1:111122223333:certificate/0f1c1a1d-3b7e-4c51-a0e1-b3b0c0ffee01",
        "alarm_topic_arn": "arn:aws:sns:eu-west-1:111122223333:ops-alarms",
        "log_retention_days": 30,
    }  # fmt: skip
    return OperatorConfig(**{**values, **changes})


def _synthesize(folder: Path, **changes: Any) -> Synthesized:
    policy = folder / "policy.yaml"
    policy.write_text('"get_images": "role:reader"\n')
    assembly = folder / "cdk.out"
    app = App(outdir=str(assembly))
    deployment = add_deployment(app, operator_config(policy, **changes))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()
    templates = {
        stack.stack_name.removeprefix("sglance-qa-"): Template.from_json(
            json.loads((assembly / f"{stack.stack_name}.template.json").read_text())
        )
        for stack in deployment.stacks
    }
    return Synthesized(deployment=deployment, assembly=assembly, templates=templates)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    """The nag-checked, synthesized deployment of ``operator_config`` (data plane and front door on)."""
    yield _synthesize(tmp_path_factory.mktemp("infra"))


@pytest.fixture(scope="session")
def synthesized_off(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    """The same with ``data_plane`` off (no service, balancer or front door; the domain on API Gateway) and an
    operator-named job runner (``jobs``) instead of the deployment's own job task."""
    yield _synthesize(
        tmp_path_factory.mktemp("infra-off"),
        data_plane=False,
        certificate_arn="arn:aws:acm:eu-west-1:111122223333:certificate/0f1c1a1d-3b7e-4c51-a0e1-b3b0c0ffee01",
        # A job runner the operator names instead of the deployment's own job task.
        jobs={
            "cluster_arn": JOB_CLUSTER,
            "task_definition_arn": JOB_TASK_DEFINITION,
            "task_role_arn": JOB_TASK_ROLE,
            "execution_role_arn": JOB_EXECUTION_ROLE,
            "subnets": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
            "security_groups": ["sg-0a1b2c3d"],
        },
    )
