"""Operator configuration of one deployment, in one typed place.

An operator writes a JSON file (``-c config=deploy/prod.json``) and may override any top-level field with its
own context key (``cdk deploy -c stage=qa -c keystone_url=https://...``). ``OperatorConfig`` validates it all
before a construct exists, and ``function_environment`` maps it to the functions' ``SGLANCE_*`` variables, which
``shared.config.Settings`` validates again inside Lambda. docs/operators.md documents every field.

``SGLANCE_*`` environment variables of the operator's shell are ignored on purpose: the same configuration must
give the same template, whatever the shell holds (for instance the local stack's settings).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource

from shared.config import Settings
from shared.stores.config import StoreConfig

# A stage ends up in stack names ([A-Za-z][-A-Za-z0-9]*, 128 chars), secret names and tags; keep it short and plain.
STAGE_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,19}")
# Settings an operator may not set through ``settings``: they are modelled fields here, or resource names and
# runtime facts the stacks own. Anything else in Settings is accepted and validated by Settings itself.
_OWNED_SETTINGS = frozenset(
    {
        "aws_region",
        "aws_endpoint_url",
        "table_name",
        "image_bucket",
        "upload_queue_name",
        "store_sync_queue_name",
        "import_queue_name",
        "event_bus_name",
        "auth_mode",
        "dev_project_id",
        "dev_user_id",
        "dev_roles",
        "lambda_function_name",
        "keystone_url",
        "keystone_service_password",
        "keystone_service_password_secret_arn",
        "stores",
        "replicate_to",
        "policy_file",
        "property_protection_file",
        "public_endpoint",
        "store_sync_max_attempts",
        "job_launcher",
        "job_cluster",
        "job_task_definition",
        "job_container_name",
        "job_subnets",
        "job_security_groups",
        "job_assign_public_ip",
        "job",
    }
)
# Hosts an emulator deployment may name as its AWS endpoint (MiniStack, LocalStack); never a real AWS endpoint.
_EMULATOR_HOSTS = ("localhost", "localhost.localstack.cloud", "localstack", "host.docker.internal")


class ConfigError(ValueError):
    """The operator configuration is malformed (the message names the field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Quotas(_Strict):
    """Glance's per-image quotas and the size cap (``image_*_quota``, ``image_size_cap``)."""

    image_size_cap: int = Field(default=1024**4, ge=1)
    image_property_quota: int = Field(default=128, ge=0)
    image_tag_quota: int = Field(default=128, ge=0)
    image_member_quota: int = Field(default=128, ge=0)


class LambdaSizing(_Strict):
    """Memory (and so CPU) and timeout of one function."""

    memory_mb: int = Field(ge=128, le=10240)
    timeout_s: int = Field(ge=1, le=900)


# Fargate's CPU units and the memory (MiB) each allows (the ECS developer guide's task size table).
_FARGATE_MEMORY = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}


class TaskSizing(_Strict):
    """CPU units and memory of one Fargate task (a combination Fargate offers)."""

    cpu: int
    memory_mib: int

    @model_validator(mode="after")
    def _fargate_combination(self) -> TaskSizing:
        if self.cpu not in _FARGATE_MEMORY:
            raise ValueError(f"cpu must be one of {sorted(_FARGATE_MEMORY)} (Fargate CPU units)")
        if self.memory_mib not in _FARGATE_MEMORY[self.cpu]:
            allowed = _FARGATE_MEMORY[self.cpu]
            raise ValueError(
                f"memory_mib {self.memory_mib} is not offered with cpu {self.cpu}: "
                f"{allowed.start}-{allowed.stop - 1} MiB in steps of {allowed.step}"
            )
        return self


class JobRunner(_Strict):
    """The ECS job the workers hand the work that does not fit a Lambda to (docs/operators.md, "The job runner"):
    the cluster, the job task definition (the data plane's container image) and its two roles, and its network."""

    cluster_arn: str
    # The task definition's ARN (``.../task-definition/family:revision``, or ``family:*`` for every revision).
    task_definition_arn: str
    task_role_arn: str
    execution_role_arn: str
    container_name: str = "data-plane"
    subnets: tuple[str, ...] = Field(min_length=1)
    security_groups: tuple[str, ...] = ()
    assign_public_ip: bool = False


class OperatorConfig(_Strict):
    """Everything an operator chooses about one deployment."""

    stage: str = "dev"

    # -- resource names (Settings defaults; S3 bucket names are global, so production sets image_bucket) --------
    table_name: str | None = None
    image_bucket: str | None = None
    upload_queue_name: str | None = None
    store_sync_queue_name: str | None = None
    import_queue_name: str | None = None
    event_bus_name: str | None = None

    # -- identity ------------------------------------------------------------------------------------------------
    # Only keystone can be deployed: trusted-headers is a local development mode that Settings refuses in Lambda.
    auth_mode: Literal["keystone"] = "keystone"
    keystone_url: str = "https://keystone.invalid/v3"
    keystone_service_username: str = "glance"
    keystone_service_project_name: str = "service"
    keystone_service_user_domain_name: str = "Default"
    keystone_service_project_domain_name: str = "Default"
    keystone_region: str | None = None
    keystone_cache_ttl_seconds: int = Field(default=300, ge=0)

    # -- stores to replicate to (SGLANCE_STORES without credentials; docs/stores.md) ------------------------------
    # A store without ``secret_arn`` gets a Secrets Manager secret from the secrets stack, to be filled after deploy.
    stores: dict[str, dict[str, Any]] = Field(default_factory=dict)
    replicate_to: tuple[str, ...] = ()
    store_sync_max_attempts: int = Field(default=5, ge=1, le=100)

    # -- quotas and policy ---------------------------------------------------------------------------------------
    quotas: Quotas = Quotas()
    # Local paths (relative to the config file's folder) of oslo.policy rules and property protections, shipped in
    # the function package under config/.
    policy_file: Path | None = None
    property_protection_file: Path | None = None
    # Any other Settings field by name (e.g. {"hashing_algorithm": "sha256"}); validated by Settings.
    settings: dict[str, Any] = Field(default_factory=dict)

    # -- API edge ------------------------------------------------------------------------------------------------
    # A custom domain (both or neither); with one, the default execute-api endpoint is switched off.
    domain_name: str | None = None
    certificate_arn: str | None = None
    throttle_rate_limit: float = Field(default=200.0, gt=0)
    throttle_burst_limit: int = Field(default=400, ge=1)

    # -- functions -----------------------------------------------------------------------------------------------
    # arm64 (Graviton): about 20 % cheaper per GB-second, and every dependency ships aarch64 wheels.
    architecture: Literal["arm64", "x86_64"] = "arm64"
    # Lambda SnapStart on the API function (published versions behind the alias API Gateway invokes): init runs
    # once per published version, restores start from its snapshot. Off: the alias invokes plain versions that
    # initialise at their first cold start (docs/operators.md, "SnapStart"). Refused where AWS does not offer it.
    api_snapstart: bool = True
    api: LambdaSizing = LambdaSizing(memory_mb=1024, timeout_s=29)
    upload_complete: LambdaSizing = LambdaSizing(memory_mb=1769, timeout_s=150)
    import_worker: LambdaSizing = LambdaSizing(memory_mb=1769, timeout_s=150)
    store_sync: LambdaSizing = LambdaSizing(memory_mb=1769, timeout_s=150)
    # The scheduled sweep (functions/sweeper): one page of overdue images per run.
    sweeper: LambdaSizing = LambdaSizing(memory_mb=512, timeout_s=120)
    # The ECS job runner of the work too long for a Lambda worker; None: such work fails with the reason on the image.
    jobs: JobRunner | None = None
    log_retention_days: Literal[1, 7, 14, 30, 90, 180, 365, 731, 1827, 3653] = 90
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Messages in a DLQ at which its alarm fires.
    dlq_alarm_threshold: int = Field(default=1, ge=1)
    # An SNS topic the alarms notify (optional).
    alarm_topic_arn: str | None = None

    # -- data plane and jobs (ECS Fargate, infra/stacks/dataplane.py; docs/operators.md, "Data plane") ------------
    # On: a Fargate service behind a load balancer streams PUT/GET /file and PUT /stage, and a CloudFront front door
    # sends those paths there and everything else to API Gateway (the one endpoint for clients). Off: no service, no
    # load balancer, no front door; clients upload through presigned URLs only and the data plane costs nothing.
    data_plane: bool = True
    data_plane_task: TaskSizing = TaskSizing(cpu=1024, memory_mib=2048)
    data_plane_desired_count: int = Field(default=1, ge=1, le=100)
    # What runs as an ECS task when a worker's deadline is too short (RunTask of the job task definition, on or off).
    job_task: TaskSizing = TaskSizing(cpu=1024, memory_mib=2048)
    # The image the container's interpreter comes from (infra/image.py): a CPython 3.13 on glibc >= 2.34.
    container_base_image: str = "public.ecr.aws/docker/library/python:3.13-slim-bookworm"

    # -- emulators only ------------------------------------------------------------------------------------------
    # The AWS endpoint of a MiniStack or LocalStack deployment (loopback or the emulator's own host names only, so
    # it can never redirect a real deployment). Unset on AWS.
    emulator_endpoint_url: str | None = None

    @field_validator("stage")
    @classmethod
    def _plain_stage(cls, value: str) -> str:
        if not STAGE_PATTERN.fullmatch(value):
            raise ValueError(f"must match {STAGE_PATTERN.pattern}")
        return value

    @field_validator("keystone_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an https:// URL (http:// only for tests)")
        return value.rstrip("/")

    @field_validator("emulator_endpoint_url")
    @classmethod
    def _emulator_only(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host = urlsplit(value).hostname or ""
        if host in _EMULATOR_HOSTS or _is_loopback(host):
            return value.rstrip("/")
        raise ValueError(f"must point at a local emulator ({', '.join(_EMULATOR_HOSTS)} or a loopback address)")

    @field_validator("settings")
    @classmethod
    def _only_free_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        owned = sorted(set(value) & _OWNED_SETTINGS)
        if owned:
            raise ValueError(f"set {', '.join(owned)} through their own fields, not 'settings'")
        unknown = sorted(set(value) - set(Settings.model_fields))
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> OperatorConfig:
        if (self.domain_name is None) != (self.certificate_arn is None):
            raise ValueError("domain_name and certificate_arn go together")
        if self.data_plane and self.certificate_arn and self.certificate_arn.split(":")[3:4] != ["us-east-1"]:
            raise ValueError(
                "with the data plane on, the custom domain is the CloudFront front door's, and CloudFront takes "
                "ACM certificates from us-east-1 only: give certificate_arn of a us-east-1 certificate"
            )
        # The whole runtime configuration must be valid now, not at the first cold start.
        try:
            settings = self.runtime_settings()
        except ValidationError as exc:
            raise ValueError(f"the functions' settings would be invalid: {exc}") from None
        for store_id, store in settings.store_configs.items():
            inline = sorted(
                name
                for name, value in store
                if value is not None and (isinstance(value, SecretStr) or name in _INLINE_CREDENTIALS)
            )
            if inline:
                raise ValueError(f"store {store_id}: {', '.join(inline)} belong in Secrets Manager (secret_arn)")
            if store.type in _NOT_DEPLOYABLE and self.emulator_endpoint_url is None:
                raise ValueError(f"store {store_id}: {_NOT_DEPLOYABLE[store.type]}")
        return self

    @property
    def store_configs(self) -> dict[str, StoreConfig]:
        """The replication stores, validated as the functions will read them."""
        return self.runtime_settings().store_configs

    def runtime_settings(self, secret_arns: dict[str, str] | None = None) -> Settings:
        """The ``Settings`` every function will hold (without the deployed-function checks)."""
        stores = {
            store_id: {
                **config,
                **({"secret_arn": secret_arns[store_id]} if secret_arns and store_id in secret_arns else {}),
            }
            for store_id, config in self.stores.items()
        }
        values: dict[str, Any] = {
            **self.settings,
            **{name: value for name in _NAME_FIELDS if (value := getattr(self, name)) is not None},
            **self.quotas.model_dump(),
            "auth_mode": self.auth_mode,
            "keystone_url": self.keystone_url,
            **{name: getattr(self, name) for name in _KEYSTONE_FIELDS},
            "stores": stores,
            "replicate_to": self.replicate_to,
            "store_sync_max_attempts": self.store_sync_max_attempts,
            "log_level": self.log_level,
            **self._job_settings(),
        }
        return _PlainSettings(**values)

    def _job_settings(self) -> dict[str, Any]:
        jobs = self.jobs
        if jobs is None:
            return {"job_launcher": "none"}
        return {
            "job_launcher": "ecs",
            "job_cluster": jobs.cluster_arn,
            "job_task_definition": jobs.task_definition_arn,
            "job_container_name": jobs.container_name,
            "job_subnets": jobs.subnets,
            "job_security_groups": jobs.security_groups,
            "job_assign_public_ip": jobs.assign_public_ip,
        }


_KEYSTONE_FIELDS = (
    "keystone_service_username",
    "keystone_service_project_name",
    "keystone_service_user_domain_name",
    "keystone_service_project_domain_name",
    "keystone_region",
    "keystone_cache_ttl_seconds",
)
# Store fields that hold credentials besides the SecretStr ones: inline for local development only.
_INLINE_CREDENTIALS = frozenset({"access_key_id"})
# Store types the stacks cannot serve from Lambda yet (an emulator runs the handlers on its host, where they can).
_NOT_DEPLOYABLE = {
    "file": "file stores need a file system mounted into the functions (EFS), which the stacks do not create",
    "rbd": "rbd stores need librados/librbd (python3-rbd), which the Lambda layer does not include",
}
_NAME_FIELDS = (
    "table_name",
    "image_bucket",
    "upload_queue_name",
    "store_sync_queue_name",
    "import_queue_name",
    "event_bus_name",
)


class _PlainSettings(Settings):
    """``Settings`` from constructor arguments only, so the environment of whoever runs ``cdk`` cannot leak in."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


# Commercial Regions where the SnapStart page of the Lambda developer guide says SnapStart is not offered (it lists
# every commercial Region but these): Asia Pacific (New Zealand) and Asia Pacific (Taipei).
SNAPSTART_UNAVAILABLE_REGIONS = frozenset({"ap-southeast-6", "ap-east-2"})


def check_snapstart_region(config: OperatorConfig, region: str | None) -> None:
    """Refuse SnapStart in a Region that does not offer it (``region`` None: environment-agnostic, unchecked).

    Raises:
        ConfigError: ``api_snapstart`` is on and ``region`` is one without SnapStart.
    """
    if config.api_snapstart and region in SNAPSTART_UNAVAILABLE_REGIONS:
        raise ConfigError(
            f"api_snapstart: Lambda SnapStart is not available in {region}; deploy with -c api_snapstart=false "
            "(the API function then starts without a snapshot; docs/operators.md)"
        )


def load_config(get_context: Callable[[str], Any], base_dir: Path) -> OperatorConfig:
    """The configuration from CDK context: the file named by ``config`` (if any), then top-level overrides.

    Raises:
        ConfigError: the file is missing or malformed, or a value is invalid.
    """
    values: dict[str, Any] = {}
    folder = base_dir
    file_name = get_context("config")
    if file_name is not None:
        if not isinstance(file_name, str) or not file_name:
            raise ConfigError(f"context 'config' must be a file name, got {file_name!r}")
        path = (base_dir / file_name).resolve()
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"context 'config': cannot read {path}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"context 'config': {path} must hold a JSON object")
        values.update(loaded)
        folder = path.parent
    for name in OperatorConfig.model_fields:
        override = get_context(name)
        if override is not None:
            values[name] = _decode_override(name, override)
    for name in ("policy_file", "property_protection_file"):
        if isinstance(values.get(name), str):
            values[name] = (folder / values[name]).resolve()
    try:
        return OperatorConfig(**values)
    except ValidationError as exc:
        raise ConfigError(f"invalid operator configuration (context): {exc}") from None


def _decode_override(name: str, value: Any) -> Any:
    # `cdk -c key=value` always gives strings; structured fields take JSON there.
    if isinstance(value, str) and OperatorConfig.model_fields[name].annotation not in (str, str | None):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, str) and not value:
        raise ConfigError(f"context {name!r} must not be empty")
    return value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_environment(settings: Settings, names: Iterable[str]) -> dict[str, str]:
    """``SGLANCE_*`` variables that make ``Settings()`` inside a function read these fields back as they are here."""
    env: dict[str, str] = {}
    for name in names:
        value = getattr(settings, name)
        if value is None:
            continue
        env[f"SGLANCE_{name.upper()}"] = _env_value(name, value)
    return env


def _env_value(name: str, value: Any) -> str:
    if name == "stores":
        return json.dumps({store_id: config.model_dump(mode="json", exclude_none=True) for store_id, config in value})
    if isinstance(value, tuple) and _is_csv_field(name):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, SecretStr):
        raise ConfigError(f"{name} is a secret: it goes to Secrets Manager, never into the environment")
    if isinstance(value, tuple | list | dict):
        return json.dumps(value)
    return str(value)


def _is_csv_field(name: str) -> bool:
    return any(
        marker is NoDecode or isinstance(marker, type(NoDecode)) for marker in Settings.model_fields[name].metadata
    )


# Fields every function's environment carries (besides the operator's ``settings``); the rest keep their defaults.
ENVIRONMENT_FIELDS = (
    *_NAME_FIELDS,
    "auth_mode",
    "keystone_url",
    *_KEYSTONE_FIELDS,
    "stores",
    "replicate_to",
    "store_sync_max_attempts",
    "image_size_cap",
    "image_property_quota",
    "image_tag_quota",
    "image_member_quota",
    "log_level",
    "service_name",
    "job_launcher",
)
# The job runner's fields, carried when one is configured.
_JOB_FIELDS = (
    "job_cluster",
    "job_task_definition",
    "job_container_name",
    "job_subnets",
    "job_security_groups",
    "job_assign_public_ip",
)


def function_environment(
    config: OperatorConfig,
    *,
    region: str,
    keystone_secret_arn: str,
    store_secret_arns: dict[str, str],
    policy_paths: dict[str, str],
) -> dict[str, str]:
    """The environment of every function: the same settings everywhere, so every function reads the same world.

    Args:
        config: the operator's configuration.
        region: the deployment's region (a CloudFormation token on AWS).
        keystone_secret_arn: the secret holding the Keystone service password.
        store_secret_arns: store id -> secret holding its credentials (every configured store).
        policy_paths: ``policy_file`` / ``property_protection_file`` -> path inside the function package.
    """
    settings = config.runtime_settings(store_secret_arns)
    names = [name for name in ENVIRONMENT_FIELDS if name not in {"stores", "replicate_to"} or getattr(settings, name)]
    if config.jobs is not None:
        names.extend(_JOB_FIELDS)
    env = settings_environment(settings, [*names, *config.settings])
    env["SGLANCE_AWS_REGION"] = region
    env["SGLANCE_KEYSTONE_SERVICE_PASSWORD_SECRET_ARN"] = keystone_secret_arn
    for name, path in policy_paths.items():
        env[f"SGLANCE_{name.upper()}"] = path
    if config.domain_name:
        env["SGLANCE_PUBLIC_ENDPOINT"] = f"https://{config.domain_name}"
    if config.emulator_endpoint_url:
        env["SGLANCE_AWS_ENDPOINT_URL"] = config.emulator_endpoint_url
    # Powertools reads its own variables for what Settings does not configure (metrics namespace, tracer name).
    env["POWERTOOLS_SERVICE_NAME"] = settings.service_name
    env["POWERTOOLS_METRICS_NAMESPACE"] = "ServerlessGlance"
    return env
