"""The app as operators run it: `python infra/cdk_app.py` synthesizes offline, cdk-nag clean, cfn-lint clean."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS = ("stateful", "secrets", "notifications", "registry", "dataplane", "api", "workers", "frontdoor", "monitoring")


@pytest.fixture(scope="module")
def cli_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The assembly `cdk synth -c config=... -c stage=ci` makes (the CLI runs the app with CDK_CONTEXT_JSON)."""
    folder = tmp_path_factory.mktemp("cli")
    config = folder / "deploy.json"
    config.write_text(
        json.dumps({"stage": "prod", "image_bucket": "ci-sglance-images", "keystone_url": "https://k/v3"})
    )
    env = {
        **os.environ,
        "CDK_OUTDIR": str(folder / "cdk.out"),
        "CDK_CONTEXT_JSON": json.dumps({"config": str(config), "stage": "ci", "throttle_rate_limit": "50"}),
        "SGLANCE_IMAGE_BUCKET": "from-the-shell",
        "SGLANCE_AUTH_MODE": "trusted-headers",
    }
    done = subprocess.run(
        [sys.executable, "infra/cdk_app.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # the assertion below shows stderr
    )
    assert done.returncode == 0, done.stderr[-5000:]
    (folder / "synth.stderr").write_text(done.stderr)
    return folder / "cdk.out"


def test_cdk_app__synthesizes_every_stack_from_file_and_context_ignoring_the_shell(cli_assembly: Path) -> None:
    manifest = json.loads((cli_assembly / "manifest.json").read_text())
    stacks = [name for name, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"]

    assert stacks == [f"sglance-ci-{name}" for name in STACKS]
    stateful = Template.from_json(json.loads((cli_assembly / "sglance-ci-stateful.template.json").read_text()))
    stateful.has_resource_properties("AWS::S3::Bucket", {"BucketName": "ci-sglance-images"})
    api = Template.from_json(json.loads((cli_assembly / "sglance-ci-api.template.json").read_text()))
    api.has_resource_properties(
        "AWS::ApiGatewayV2::Stage", {"DefaultRouteSettings": {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 400}}
    )
    env = next(iter(api.find_resources("AWS::Lambda::Function").values()))["Properties"]["Environment"]["Variables"]
    assert (env["SGLANCE_AUTH_MODE"], env["SGLANCE_KEYSTONE_URL"]) == ("keystone", "https://k/v3")
    # cdk-nag ran (it writes this report) and every finding it made is acknowledged (it fails synthesis otherwise).
    report = json.loads((cli_assembly / "validation-report.json").read_text())
    assert [v for plugin in report["pluginReports"] for v in plugin["violations"]] == []


def test_cdk_app__says_which_stacks_resources_and_templates_it_produced(cli_assembly: Path) -> None:
    said = (cli_assembly.parent / "synth.stderr").read_text()

    assert f"Synthesized {len(STACKS)} stacks into {cli_assembly}" in said
    for name in STACKS:
        template = cli_assembly / f"sglance-ci-{name}.template.json"
        count = len(json.loads(template.read_text())["Resources"])
        assert f"  sglance-ci-{name}: {count} resources -> {template}" in said
    assert "AWS::ApiGatewayV2::Api" in said
    assert f"--assembly {cli_assembly}" in said
    assert "Container image (OCI layout, tag " in said


def test_cfn_lint__finds_nothing_in_the_templates(cli_assembly: Path) -> None:
    templates = sorted(str(path) for path in cli_assembly.glob("*.template.json"))
    assert len(templates) == len(STACKS)

    # W3005 (a DependsOn that is also implied) is CDK's own output.
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", "W3005", "--", *templates],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_cdk_nag__fails_synthesis_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "careless")
    s3.Bucket(stack, "Bucket")  # no TLS-only policy, no access logs
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()

    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules
