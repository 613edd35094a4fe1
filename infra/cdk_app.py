"""The CDK app: ``python infra/cdk_app.py`` from the repository root, or ``cdk synth`` / ``cdk deploy``.

Configuration (``infra/config.py``, docs/operators.md) comes from CDK context only: ``-c config=<file.json>``
and per-field overrides (``-c stage=qa``). The stacks, in deployment order:

- ``sglance-<stage>-stateful``: the images table, the image bucket (+ access logs), the work queues and DLQs;
- ``sglance-<stage>-secrets``: Keystone service credentials, the stores' keys (Secrets Manager);
- ``sglance-<stage>-notifications``: the EventBridge bus;
- ``sglance-<stage>-registry``: the ECR repository of the data plane's container image;
- ``sglance-<stage>-dataplane``: the network, the ECS cluster and job task definition, and (``data_plane`` on) the
  streaming service behind its internal load balancer;
- ``sglance-<stage>-api``: the HTTP API and the API function;
- ``sglance-<stage>-workers``: upload_complete, import_worker, store_sync, with DLQ alarms;
- ``sglance-<stage>-frontdoor`` (``data_plane`` on): the CloudFront distribution, the one endpoint;
- ``sglance-<stage>-monitoring``: the dashboard.

Lambda code is built without Docker by ``infra/packaging.py`` when the app runs, and the container image's OCI
layout from the same files by ``infra/image.py`` (pushed by ``python -m infra.image push``).
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

# `python infra/cdk_app.py` puts infra/ first on sys.path, not the repository root that holds `shared`.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aws_cdk import App, Aws, Environment, Stack, Tags, Validations, cx_api  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.config import OperatorConfig, check_snapstart_region, function_environment, load_config  # noqa: E402
from infra.image import BuiltImage, build_image  # noqa: E402
from infra.packaging import CONFIG_DIR, DEFAULT_BUILD_DIR, build_package  # noqa: E402
from infra.stacks.api import ApiStack  # noqa: E402
from infra.stacks.dataplane import DataPlaneStack, RegistryStack  # noqa: E402
from infra.stacks.frontdoor import FrontDoorStack  # noqa: E402
from infra.stacks.function import FunctionCode  # noqa: E402
from infra.stacks.monitoring import MonitoringStack  # noqa: E402
from infra.stacks.notifications import NotificationsStack  # noqa: E402
from infra.stacks.props import ServiceProps  # noqa: E402
from infra.stacks.secrets import SecretsStack  # noqa: E402
from infra.stacks.stateful import StatefulStack  # noqa: E402
from infra.stacks.workers import WorkersStack  # noqa: E402
from shared.resources import resources_for  # noqa: E402

DEFAULT_OUTDIR = "cdk.out"
DEFAULT_STAGE = OperatorConfig.model_fields["stage"].default


@dataclass(frozen=True)
class Deployment:
    """The stacks of one deployment."""

    config: OperatorConfig
    stateful: StatefulStack
    secrets: SecretsStack
    notifications: NotificationsStack
    registry: RegistryStack
    dataplane: DataPlaneStack
    api: ApiStack
    workers: WorkersStack
    frontdoor: FrontDoorStack | None
    monitoring: MonitoringStack
    image: BuiltImage

    @property
    def stacks(self) -> tuple[Stack, ...]:
        """Every stack, in deployment order."""
        middle: tuple[Stack, ...] = (self.registry, self.dataplane, self.api, self.workers)
        edge: tuple[Stack, ...] = (self.frontdoor,) if self.frontdoor is not None else ()
        return (self.stateful, self.secrets, self.notifications, *middle, *edge, self.monitoring)


def read_config(app: App) -> OperatorConfig:
    """The operator configuration from the app's context (file names relative to the working directory)."""
    return load_config(app.node.try_get_context, Path.cwd())


def add_deployment(app: App, config: OperatorConfig, *, build_dir: Path = DEFAULT_BUILD_DIR) -> Deployment:
    """Every stack of one deployment, wired together; builds the Lambda code for ``config.architecture``."""
    # Set by the cdk CLI from the operator's profile; unset (environment-agnostic templates) under plain python.
    env = Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    check_snapstart_region(config, env.region)
    prefix = f"sglance-{config.stage}"
    settings = config.runtime_settings()
    policy_files = {
        name: path
        for name, path in (
            ("policy.yaml", config.policy_file),
            ("property-protections.ini", config.property_protection_file),
        )
        if path is not None
    }
    package = build_package(config.architecture, build_dir=build_dir, policy_files=policy_files)
    code = FunctionCode(
        code_dir=str(package.code_dir),
        layer_dir=str(package.layer_dir),
        architecture=config.architecture,
        log_level=config.log_level,
        log_retention_days=config.log_retention_days,
    )

    stateful = StatefulStack(
        app,
        f"{prefix}-stateful",
        resources=resources_for(settings),
        env=env,
        description=f"Serverless Glance ({config.stage}): images table, image bucket, work queues",
        termination_protection=True,
    )
    secrets = SecretsStack(
        app, f"{prefix}-secrets", config=config, env=env, description=f"Serverless Glance ({config.stage}): secrets"
    )
    notifications = NotificationsStack(
        app,
        f"{prefix}-notifications",
        event_bus_name=settings.event_bus_name,
        env=env,
        description=f"Serverless Glance ({config.stage}): image events bus",
    )
    policy_paths = {}
    if config.policy_file is not None:
        policy_paths["policy_file"] = f"{CONFIG_DIR}/policy.yaml"
    if config.property_protection_file is not None:
        policy_paths["property_protection_file"] = f"{CONFIG_DIR}/property-protections.ini"
    environment = function_environment(
        config,
        region=Aws.REGION,
        keystone_secret_arn=secrets.keystone_service.secret_arn,
        store_secret_arns={store_id: secret.secret_arn for store_id, secret in secrets.stores.items()},
        policy_paths=policy_paths,
    )
    props = ServiceProps(config, code, environment, stateful, secrets, notifications)
    image = build_image(config.architecture, package=package, base=config.container_base_image)
    registry = RegistryStack(
        app,
        f"{prefix}-registry",
        config=config,
        env=env,
        description=f"Serverless Glance ({config.stage}): the data plane's image repository",
    )
    dataplane = DataPlaneStack(
        app,
        f"{prefix}-dataplane",
        props=props,
        repository=registry.repository,
        image=image,
        env=env,
        description=f"Serverless Glance ({config.stage}): network, ECS cluster, jobs and the streaming data plane",
    )
    api = ApiStack(
        app,
        f"{prefix}-api",
        props=props,
        env=env,
        description=f"Serverless Glance ({config.stage}): HTTP API and API function",
    )
    workers = WorkersStack(
        app,
        f"{prefix}-workers",
        props=props,
        jobs=dataplane.jobs,
        env=env,
        description=f"Serverless Glance ({config.stage}): queue workers",
    )
    frontdoor = None
    if dataplane.load_balancer is not None:
        frontdoor = FrontDoorStack(
            app,
            f"{prefix}-frontdoor",
            config=config,
            http_api_id=api.http_api.api_id,
            load_balancer=dataplane.load_balancer,
            logs_bucket=dataplane.logs_bucket,
            env=env,
            description=f"Serverless Glance ({config.stage}): CloudFront front door, the one endpoint",
        )
    monitoring = MonitoringStack(
        app,
        f"{prefix}-monitoring",
        stage=config.stage,
        stateful=stateful,
        api=api,
        workers=workers,
        env=env,
        description=f"Serverless Glance ({config.stage}): dashboard",
    )
    Tags.of(app).add("project", "serverless-glance")
    Tags.of(app).add("stage", config.stage)
    return Deployment(
        config, stateful, secrets, notifications, registry, dataplane, api, workers, frontdoor, monitoring, image
    )


def build_app(outdir: str | None = None, *, nag: bool = True) -> App:
    """The app with every stack, checked by cdk-nag's AwsSolutions rules when ``nag`` (synth fails on findings)."""
    return _build(outdir, nag=nag)[0]


def _build(outdir: str | None, *, nag: bool) -> tuple[App, Deployment]:
    app = App(outdir=outdir or os.environ.get("CDK_OUTDIR", DEFAULT_OUTDIR))
    deployment = add_deployment(app, read_config(app))
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, deployment


def describe_assembly(assembly: cx_api.CloudAssembly) -> str:
    """What a synthesis produced, for the operator: each stack, its resources by type, its template's path."""
    stacks = _in_deployment_order(assembly.stacks)
    lines = [f"Synthesized {len(stacks)} stacks into {_shown(Path(assembly.directory))} (cdk-nag AwsSolutions passed):"]
    for stack in stacks:
        resources = stack.template.get("Resources", {})
        by_type = Counter(body["Type"] for body in resources.values())
        lines.append(f"  {stack.stack_name}: {len(resources)} resources -> {_shown(Path(stack.template_full_path))}")
        lines.append("    " + ", ".join(f"{count} {kind}" for kind, count in sorted(by_type.items())))
    lines.append(
        "Deploy: npx aws-cdk@2 deploy --all -c config=<file> (docs/operators.md), or to an emulator: "
        f"python -m infra.emulator --endpoint <url> --assembly {_shown(Path(assembly.directory))}"
    )
    return "\n".join(lines)


def _in_deployment_order(stacks: list[cx_api.CloudFormationStackArtifact]) -> list[cx_api.CloudFormationStackArtifact]:
    ordered: list[cx_api.CloudFormationStackArtifact] = []
    names = {stack.id for stack in stacks}
    while len(ordered) < len(stacks):
        done = {stack.id for stack in ordered}
        for stack in stacks:
            needs = {d.id for d in stack.dependencies if d.id in names}
            if stack.id not in done and needs <= done:
                ordered.append(stack)
                break
        else:
            return stacks
    return ordered


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main() -> None:
    """Synthesize the cloud assembly and say what it holds (on stderr: the cdk CLI owns stdout)."""
    app, deployment = _build(None, nag=True)
    assembly = app.synth()
    print(describe_assembly(assembly), file=sys.stderr)
    image = deployment.image
    print(
        f"Container image (OCI layout, tag {image.tag}): {_shown(image.layout)}; push it after deploying "
        f"{deployment.registry.stack_name}: python -m infra.image push --ecr --layout {_shown(image.layout)} "
        "--repository <ImageRepositoryUri>",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
