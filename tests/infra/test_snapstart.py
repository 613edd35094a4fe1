"""SnapStart on the API function: published versions, the alias API Gateway invokes, and the operator's switch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.cdk_app import add_deployment
from infra.config import SNAPSTART_UNAVAILABLE_REGIONS, ConfigError, OperatorConfig, check_snapstart_region
from infra.stacks.api import API_ALIAS
from tests.infra.conftest import Synthesized


def _one(template: Template, resource_type: str) -> tuple[str, dict[str, Any]]:
    (found,) = template.find_resources(resource_type).items()
    return found


def _api_function_id(template: Template) -> str:
    functions = template.find_resources("AWS::Lambda::Function")
    (function_id,) = [lid for lid, body in functions.items() if body["Properties"]["FunctionName"].endswith("-api")]
    return function_id


def _assert_api_gateway_invokes_the_alias_of_the_published_version(template: Template) -> dict[str, Any]:
    function_id = _api_function_id(template)
    version_id, version = _one(template, "AWS::Lambda::Version")
    alias_id, alias = _one(template, "AWS::Lambda::Alias")
    _, integration = _one(template, "AWS::ApiGatewayV2::Integration")
    _, permission = _one(template, "AWS::Lambda::Permission")

    assert version["Properties"] == {"FunctionName": {"Ref": function_id}}
    # a new version per deployment; the one it replaces goes (a kept version's snapshot is billed while cached)
    assert version["DeletionPolicy"] == "Delete"
    assert alias["Properties"] == {
        "FunctionName": {"Ref": function_id},
        "FunctionVersion": {"Fn::GetAtt": [version_id, "Version"]},
        "Name": API_ALIAS,
    }
    assert integration["Properties"]["IntegrationUri"] == {"Ref": alias_id}
    assert permission["Properties"]["FunctionName"] == {"Ref": alias_id}
    assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    function: dict[str, Any] = template.find_resources("AWS::Lambda::Function")[function_id]
    return function


def test_api_function__starts_published_versions_from_snapstart_snapshots_behind_the_alias(
    synthesized: Synthesized,
) -> None:
    template = synthesized.templates["api"]

    function = _assert_api_gateway_invokes_the_alias_of_the_published_version(template)

    assert function["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert function["Properties"]["Runtime"] == "python3.13"
    assert template.to_json()["Outputs"]["ApiFunctionAlias"]["Value"] == {
        "Ref": _one(template, "AWS::Lambda::Alias")[0]
    }


def test_workers__run_unpublished_without_snapstart(synthesized: Synthesized) -> None:
    template = synthesized.templates["workers"]

    assert template.find_resources("AWS::Lambda::Version") == {}
    assert template.find_resources("AWS::Lambda::Alias") == {}
    for body in template.find_resources("AWS::Lambda::Function").values():
        assert "SnapStart" not in body["Properties"]


def test_api_snapstart_off__keeps_the_alias_and_versions_without_snapstart(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path / "cdk.out"))
    deployment = add_deployment(app, OperatorConfig(stage="nosnap", image_bucket="nosnap-images", api_snapstart=False))

    function = _assert_api_gateway_invokes_the_alias_of_the_published_version(Template.from_stack(deployment.api))

    assert "SnapStart" not in function["Properties"]


@pytest.mark.parametrize("region", sorted(SNAPSTART_UNAVAILABLE_REGIONS))
def test_snapstart__in_a_region_without_it__is_refused_naming_the_switch(region: str) -> None:
    with pytest.raises(ConfigError, match=f"not available in {region}.*api_snapstart=false"):
        check_snapstart_region(OperatorConfig(), region)

    check_snapstart_region(OperatorConfig(api_snapstart=False), region)


@pytest.mark.parametrize("region", [None, "eu-west-1", "us-east-1", "ap-southeast-2"])
def test_snapstart__elsewhere_or_environment_agnostic__is_accepted(region: str | None) -> None:
    check_snapstart_region(OperatorConfig(), region)


def test_api_snapstart__is_a_context_switch(tmp_path: Path) -> None:
    from infra.config import load_config

    assert load_config({"api_snapstart": "false"}.get, tmp_path).api_snapstart is False
    assert load_config({}.get, tmp_path).api_snapstart is True
