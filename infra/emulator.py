"""Deploy a synthesized cloud assembly (``cdk.out``) to a local emulator's CloudFormation, as ``cdk deploy`` would.

``cdk deploy`` needs a bootstrapped account (roles, an assets bucket, an SSM version parameter) and talks to AWS
through the CDK CLI. On MiniStack or LocalStack, this module does the same steps with boto3 against the emulator's
endpoint: it creates the bootstrap bucket and version parameter, uploads each file asset (zipping folders as the
CLI does), then creates every stack from its synthesized template, in dependency order, and waits for it. A stack
that already exists is updated in place (nothing to update is not an error), as ``cdk deploy`` does on a second
run; one left in ``ROLLBACK_COMPLETE`` by a failed first creation (which CloudFormation cannot update) is deleted
and created again.

It refuses any endpoint that is not loopback or an emulator host name (``infra.config``), so it can never touch a
real account::

    python -m infra.emulator --endpoint http://127.0.0.1:4566 --assembly cdk.out
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from infra.config import ConfigError, OperatorConfig

BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION = "30"
STACK_TIMEOUT_S = 600.0
_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
_FAILED = {
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "ROLLBACK_IN_PROGRESS",
    "UPDATE_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_IN_PROGRESS",
}
# A stack that exists but cannot be updated: a first creation that failed and rolled back.
_RECREATE = {"ROLLBACK_COMPLETE"}
_CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]


class DeployError(RuntimeError):
    """A stack did not reach CREATE_COMPLETE or UPDATE_COMPLETE (the message holds its failed events)."""


@dataclass
class Deployed:
    """The outputs of every deployed stack: stack name -> output key -> value."""

    outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    def output(self, key: str) -> str:
        """The one output named ``key`` across all stacks."""
        found = [values[key] for values in self.outputs.values() if key in values]
        if len(found) != 1:
            raise KeyError(f"output {key!r} found {len(found)} times")
        return found[0]


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if it names a local emulator; raises ``ConfigError`` otherwise."""
    try:
        OperatorConfig(emulator_endpoint_url=endpoint)
    except (ConfigError, ValueError) as exc:
        raise ConfigError(f"refusing to deploy to {endpoint!r}: not a local emulator ({exc})") from None
    return endpoint


def deploy_assembly(assembly: Path, endpoint: str, region: str = "us-east-1") -> Deployed:
    """Deploy every stack of ``assembly`` to the emulator at ``endpoint``; returns their outputs."""
    check_endpoint(endpoint)
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=region,
    )
    clients = {name: session.client(name, endpoint_url=endpoint) for name in ("s3", "ssm", "cloudformation", "sts")}
    try:
        account = clients["sts"].get_caller_identity()["Account"]
        bucket = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{account}-{region}"
        _bootstrap(clients["s3"], clients["ssm"], bucket, region)
        manifest = json.loads((assembly / "manifest.json").read_text())
        deployed = Deployed()
        for name, artifact in _stacks_in_order(manifest["artifacts"]):
            _publish_assets(clients["s3"], assembly, manifest["artifacts"], artifact, bucket)
            template = (assembly / artifact["properties"]["templateFile"]).read_text()
            deployed.outputs[name] = _deploy_stack(clients["cloudformation"], name, template)
        return deployed
    finally:
        for client in clients.values():
            client.close()


def _bootstrap(s3: Any, ssm: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        options = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **options)
    ssm.put_parameter(
        Name=f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version", Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
    )


def _stacks_in_order(artifacts: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    stacks = {name: a for name, a in artifacts.items() if a["type"] == "aws:cloudformation:stack"}
    done: set[str] = set()
    while len(done) < len(stacks):
        ready = [
            name
            for name, artifact in stacks.items()
            if name not in done and all(d in done or d not in stacks for d in artifact.get("dependencies", []))
        ]
        if not ready:
            raise DeployError(f"stack dependencies form a cycle among {sorted(set(stacks) - done)}")
        for name in ready:
            done.add(name)
            yield name, stacks[name]


def _publish_assets(s3: Any, assembly: Path, artifacts: dict[str, Any], stack: dict[str, Any], bucket: str) -> None:
    for dependency in stack.get("dependencies", []):
        if artifacts.get(dependency, {}).get("type") != "cdk:asset-manifest":
            continue
        asset_manifest = json.loads((assembly / artifacts[dependency]["properties"]["file"]).read_text())
        for asset in asset_manifest.get("files", {}).values():
            source = assembly / asset["source"]["path"]
            for destination in asset["destinations"].values():
                key = destination["objectKey"]
                if _exists(s3, bucket, key):
                    continue
                body = _zip_folder(source) if asset["source"].get("packaging") == "zip" else source.read_bytes()
                s3.put_object(Bucket=bucket, Key=key, Body=body)


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return False
    return True


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def _deploy_stack(cloudformation: Any, name: str, template: str) -> dict[str, str]:
    """Create the stack, or update it in place if it exists; its outputs once it is complete."""
    status = _status(cloudformation, name)
    if status in _RECREATE:
        cloudformation.delete_stack(StackName=name)
        _wait(
            cloudformation,
            name,
            until=lambda s: s in {None, "DELETE_COMPLETE"},
            failed={"DELETE_FAILED"},
            what="deleted",
        )
        status = None
    if status is None:
        cloudformation.create_stack(StackName=name, TemplateBody=template, Capabilities=_CAPABILITIES)
    else:
        try:
            cloudformation.update_stack(StackName=name, TemplateBody=template, Capabilities=_CAPABILITIES)
        except cloudformation.exceptions.ClientError as exc:
            # CloudFormation refuses an update that changes nothing; for a deploy that is success.
            if "No updates are to be performed" not in str(exc):
                raise
    _wait(cloudformation, name, until=lambda s: s in _DONE, failed=_FAILED, what="complete")
    stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _status(cloudformation: Any, name: str) -> str | None:
    """The stack's status; None if there is no such stack."""
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        # CloudFormation answers a plain ValidationError for a missing stack; only its message tells them apart.
        if "does not exist" in str(exc):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def _wait(cloudformation: Any, name: str, *, until: Callable[[str | None], bool], failed: set[str], what: str) -> None:
    deadline = time.monotonic() + STACK_TIMEOUT_S
    while time.monotonic() < deadline:
        status = _status(cloudformation, name)
        if until(status):
            return
        if status in failed:
            raise DeployError(f"{name}: {status}\n{_failures(cloudformation, name)}")
        time.sleep(0.5)
    raise DeployError(f"{name}: not {what} after {STACK_TIMEOUT_S:.0f} s")


def _failures(cloudformation: Any, name: str) -> str:
    events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    return "\n".join(
        f"  {e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason', '')}"
        for e in events
        if e["ResourceStatus"].endswith("FAILED")
    )


def main() -> None:
    """Command line: deploy an assembly to an emulator and print the outputs as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True, help="the emulator's endpoint, e.g. http://127.0.0.1:4566")
    parser.add_argument("--assembly", type=Path, default=Path("cdk.out"), help="the synthesized cloud assembly")
    parser.add_argument("--region", default="us-east-1")
    args = parser.parse_args()
    print(json.dumps(deploy_assembly(args.assembly, args.endpoint, args.region).outputs, indent=2))


if __name__ == "__main__":
    main()
