"""Operator configuration: one typed model, read from a file and context, mapped to what Settings reads in Lambda."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, OperatorConfig, function_environment, load_config
from infra.packaging import build_package
from shared.config import Settings

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:sglance/prod/keystone-service-AbCdEf"


def _context(values: dict[str, Any]) -> Any:
    return values.get


def test_function_environment__is_read_back_by_settings_in_a_deployed_function(monkeypatch: pytest.MonkeyPatch) -> None:
    config = OperatorConfig(
        stage="prod",
        image_bucket="prod-images",
        keystone_url="https://keystone.example.org/v3/",
        stores={
            "swift1": {
                "type": "swift",
                "auth_url": "https://k/v3",
                "user": "glance",
                "project_name": "p",
                "container": "g",
            }
        },
        replicate_to=("swift1",),
        store_sync_max_attempts=3,
        quotas={"image_member_quota": 5},
        settings={"disk_formats": ["raw", "qcow2"], "allow_raw_format_mismatch": True, "hashing_algorithm": "sha384"},
    )
    env = function_environment(
        config,
        region="eu-west-1",
        keystone_secret_arn=SECRET_ARN,
        store_secret_arns={"swift1": "arn:aws:secretsmanager:eu-west-1:1:secret:s-AbCdEf"},
        policy_paths={"policy_file": "config/policy.yaml"},
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "sglance-prod-api")

    settings = Settings()  # with the deployed-function checks

    assert settings.aws_region == "eu-west-1"
    assert settings.image_bucket == "prod-images"
    assert settings.keystone_url == "https://keystone.example.org/v3"
    assert settings.keystone_service_password_secret_arn == SECRET_ARN
    assert settings.store_configs["swift1"].secret_arn == "arn:aws:secretsmanager:eu-west-1:1:secret:s-AbCdEf"
    assert settings.replicate_to == ("swift1",)
    assert settings.store_sync_max_attempts == 3
    assert settings.image_member_quota == 5
    assert settings.disk_formats == ("raw", "qcow2")
    assert settings.allow_raw_format_mismatch is True
    assert settings.hashing_algorithm == "sha384"
    assert settings.policy_file == "config/policy.yaml"
    assert settings.auth_mode == "keystone"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"auth_mode": "trusted-headers"}, "auth_mode"),
        ({"stage": "Prod Stage"}, "stage"),
        ({"domain_name": "images.example.org"}, "go together"),
        ({"stores": {"c": {"type": "ceph", "endpoint_url": "https://r", "bucket": "b", "secret_access_key": "x"}}},
         "Secrets Manager"),
        ({"stores": {"s": {"type": "swift", "auth_url": "https://k/v3", "user": "u", "project_name": "p", "key": "k",
                           "container": "c"}}},
         "Secrets Manager"),
        ({"stores": {"f": {"type": "file", "data_dir": "/mnt/images"}}}, "EFS"),
        ({"replicate_to": ["nowhere"]}, "unknown stores"),
        ({"settings": {"table_name": "x"}}, "own fields"),
        ({"settings": {"no_such_setting": 1}}, "unknown settings"),
        ({"emulator_endpoint_url": "https://s3.us-east-1.amazonaws.com"}, "local emulator"),
        ({"log_retention_days": 42}, "log_retention_days"),
    ],
)  # fmt: skip
def test_operator_config__refuses(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OperatorConfig(**values)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4566", "https://localhost.localstack.cloud:4566"])
def test_operator_config__accepts_local_emulator_endpoints(endpoint: str) -> None:
    assert OperatorConfig(emulator_endpoint_url=endpoint).emulator_endpoint_url == endpoint


def test_load_config__reads_the_file_then_context_overrides_and_resolves_policy_paths(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("{}\n")
    (tmp_path / "prod.json").write_text(
        json.dumps({"stage": "prod", "policy_file": "policy.yaml", "api": {"memory_mb": 2048, "timeout_s": 20}})
    )

    config = load_config(_context({"config": "prod.json", "stage": "qa", "throttle_burst_limit": "10"}), tmp_path)

    assert (config.stage, config.throttle_burst_limit, config.api.memory_mb) == ("qa", 10, 2048)
    assert config.policy_file == tmp_path / "policy.yaml"


@pytest.mark.parametrize(
    "context", [{"stage": ""}, {"table_name": 7}, {"config": "missing.json"}, {"architecture": "sparc"}]
)
def test_load_config__names_the_bad_context(tmp_path: Path, context: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="context"):
        load_config(_context(context), tmp_path)


def test_build_package__layer_has_wheels_for_the_lambda_architecture_and_code_has_only_sources(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("{}\n")

    package = build_package("arm64", policy_files={"policy.yaml": policy})

    site = package.layer_dir / "python"
    # compiled for the python3.13 runtime on arm64 (Graviton), whatever this machine is
    assert list(site.glob("pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so"))
    assert (site / "cryptography").is_dir() and (site / "mangum").is_dir() and (site / "pynamodb").is_dir()
    assert not (site / "pytest").exists() and not (site / "moto").exists() and not (site / "aws_cdk").exists()
    assert sorted(p.name for p in package.code_dir.iterdir()) == ["config", "functions", "shared"]
    assert (package.code_dir / "functions" / "api" / "handler.py").is_file()
    assert not list(package.code_dir.rglob("__pycache__"))
    assert (package.code_dir / "config" / "policy.yaml").read_text() == "{}\n"


def test_deploy_prod_json__the_example_the_docs_name__is_a_valid_configuration() -> None:
    repo = Path(__file__).resolve().parents[2]

    config = load_config(_context({"config": "deploy/prod.json"}), repo)

    assert config.stage == "prod"
    assert config.keystone_url == "https://keystone.example.org/v3"
    assert set(config.store_configs) == {"ceph1", "swift1"}
