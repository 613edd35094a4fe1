"""``infra.emulator`` against moto server's CloudFormation: a second deploy updates in place, as ``cdk deploy`` does.

The assembly is a hand-made one-stack cloud assembly (manifest + template), so the test needs no CDK synthesis;
tests/e2e redeploys the real one to MiniStack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError
from infra.emulator import check_endpoint, deploy_assembly

STACK = "sglance-emu-test"


def _assembly(folder: Path, *, queue_name: str, outputs: dict[str, str]) -> Path:
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue_name}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{STACK}.template.json").write_text(json.dumps(template))
    manifest = {
        "version": "48.0.0",
        "artifacts": {
            STACK: {"type": "aws:cloudformation:stack", "properties": {"templateFile": f"{STACK}.template.json"}}
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_deploy__twice_with_the_same_assembly__updates_in_place_without_error(
    moto_reset: str, tmp_path: Path, aws_client: Callable[[str], Any]
) -> None:
    assembly = _assembly(tmp_path / "a", queue_name="emu-q", outputs={"Answer": "42"})

    first = deploy_assembly(assembly, moto_reset)
    second = deploy_assembly(assembly, moto_reset)

    assert first.outputs == second.outputs == {STACK: {"Answer": "42"}}
    (stack,) = aws_client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    assert stack["StackStatus"] in {"CREATE_COMPLETE", "UPDATE_COMPLETE"}


def test_deploy__of_a_changed_template__applies_the_change_to_the_existing_stack(
    moto_reset: str, tmp_path: Path, aws_client: Callable[[str], Any]
) -> None:
    deploy_assembly(_assembly(tmp_path / "a", queue_name="emu-q", outputs={"Answer": "42"}), moto_reset)

    updated = deploy_assembly(
        _assembly(tmp_path / "b", queue_name="emu-q", outputs={"Answer": "43", "Extra": "x"}), moto_reset
    )

    assert updated.outputs == {STACK: {"Answer": "43", "Extra": "x"}}
    (stack,) = aws_client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert len(aws_client("cloudformation").list_stacks()["StackSummaries"]) == 1


def test_deploy__refuses_an_endpoint_that_is_not_a_local_emulator() -> None:
    with pytest.raises(ConfigError, match="not a local emulator"):
        check_endpoint("https://cloudformation.us-east-1.amazonaws.com")
