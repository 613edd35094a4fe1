"""localstack/: the Docker Compose file and its init hook agree with what infra.emulator deploys against."""

from __future__ import annotations

from pathlib import Path

import yaml

from infra.emulator import BOOTSTRAP_QUALIFIER, BOOTSTRAP_VERSION

LOCALSTACK = Path(__file__).resolve().parents[2] / "localstack"


def test_compose__runs_localstack_with_every_service_the_stacks_use_and_mounts_the_init_hooks() -> None:
    compose = yaml.safe_load((LOCALSTACK / "docker-compose.yml").read_text())
    (service,) = compose["services"].values()
    environment = dict(item.split("=", 1) for item in service["environment"])

    services = set(environment["SERVICES"].split(","))
    assert {"cloudformation", "s3", "sqs", "dynamodb", "lambda", "apigatewayv2", "iam", "events", "secretsmanager",
            "ssm", "cloudwatch", "logs"} <= services  # fmt: skip
    assert environment["ENFORCE_IAM"] == "1"
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in service["volumes"]}
    assert mounts["./init/ready.d"] == "/etc/localstack/init/ready.d"
    assert (LOCALSTACK / "init" / "ready.d").is_dir()


def test_init_hook__creates_the_bootstrap_bucket_and_version_that_infra_emulator_expects() -> None:
    hook = LOCALSTACK / "init" / "ready.d" / "10-cdk-bootstrap.sh"
    script = hook.read_text()

    assert hook.stat().st_mode & 0o111
    assert f"s3://cdk-{BOOTSTRAP_QUALIFIER}-assets-000000000000-us-east-1" in script
    assert f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version --type String --value {BOOTSTRAP_VERSION}" in script
