"""One Lambda function as every stack deploys it: its own role, log group, the dependency layer, tracing, JSON logs.

Every function gets a role of its own that starts empty: only its log group, X-Ray (which CDK adds for active
tracing) and what the stack grants it afterwards. No managed policy, so nothing is granted that no one reviewed.

A function invoked synchronously (the API) can be published: every deployment that changes it publishes a version
(``current_version``; the previous one is deleted once the alias moves) and an alias points at the newest, so
callers invoke the alias. With SnapStart, Lambda initialises each published version once and starts new execution
environments from its snapshot (the hooks in ``shared/snapstart.py`` refresh what must not be shared).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import LambdaSizing

# The interpreter every test runs on (pyproject: requires-python >=3.13,<3.14); the layer's wheels are for it
# (infra/packaging.py). Lambda supports python3.13 to 2029 and offers SnapStart on it (Python 3.12 and newer).
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
_LOG_LEVELS = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
}


@dataclass(frozen=True)
class FunctionCode:
    """Where a stack's functions come from: the built code folder and dependency layer folder, and the options."""

    code_dir: str
    layer_dir: str
    architecture: str
    log_level: str
    log_retention_days: int


@dataclass(frozen=True)
class Publication:
    """How a synchronously invoked function is published: versions behind ``alias``, with SnapStart or not."""

    alias: str
    snapstart: bool


@dataclass(frozen=True)
class StackCode:
    """The code, dependency layer and environment one stack's functions share."""

    code: lambda_.Code
    layer: lambda_.ILayerVersion
    options: FunctionCode
    environment: Mapping[str, str]


class GlanceFunction(Construct):
    """A function of the image service with its own role and log group."""

    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup
    # The alias callers invoke (published functions only).
    alias: lambda_.Alias | None

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function_name: str,
        handler: str,
        description: str,
        package: StackCode,
        sizing: LambdaSizing,
        publication: Publication | None = None,
    ) -> None:
        """``publication``: publish versions behind an alias (with SnapStart or not); None: invoked unqualified."""
        super().__init__(scope, construct_id)
        snapstart = publication is not None and publication.snapstart
        code, layer, options = package.code, package.layer, package.options
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=_retention(options.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{function_name}: its log group and what its stack grants, nothing else",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=function_name,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURES[options.architecture],
            handler=handler,
            code=code,
            layers=[layer],
            memory_size=sizing.memory_mb,
            timeout=Duration.seconds(sizing.timeout_s),
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=_LOG_LEVELS[options.log_level],
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            tracing=lambda_.Tracing.ACTIVE,
            environment=dict(package.environment),
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snapstart else None,
            # Only the newest version stays: with SnapStart every kept version's snapshot is billed while cached.
            current_version_options=lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY),
        )
        self.alias = None
        if publication is not None:
            self.alias = lambda_.Alias(
                self, "Alias", alias_name=publication.alias, version=self.function.current_version
            )
        Validations.of(self.role).acknowledge(
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "Only X-Ray's xray:PutTraceSegments and xray:PutTelemetryRecords, added by active tracing, "
                    "take Resource '*' (X-Ray has no resource-level permissions); tests/infra holds that no other "
                    "statement of a function role does."
                ),
            )
        )
        Validations.of(self).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason=(
                    "Python 3.13 is the interpreter the code is developed and tested on (pyproject requires "
                    ">=3.13,<3.14) and the one the dependency layer's wheels are built for (supported by Lambda to "
                    "2029, with SnapStart); the runtime moves with the project, not ahead of its tests."
                ),
            )
        )


def stack_code(scope: Construct, options: FunctionCode, environment: Mapping[str, str]) -> StackCode:
    """The function code asset and the layer holding every runtime dependency, for the functions' architecture."""
    layer = lambda_.LayerVersion(
        scope,
        "Dependencies",
        code=lambda_.Code.from_asset(options.layer_dir),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURES[options.architecture]],
        description="Serverless Glance runtime dependencies (pyproject [project.dependencies])",
    )
    return StackCode(
        code=lambda_.Code.from_asset(options.code_dir), layer=layer, options=options, environment=environment
    )


RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def _retention(days: int) -> logs.RetentionDays:
    return RETENTION[days]
