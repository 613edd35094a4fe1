"""The one validated settings object; the only place that reads the environment.

Every setting is an environment variable prefixed ``SGLANCE_`` (see the README's configuration table).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from shared.stores.config import StoreConfig

    _StoreEntry = tuple[str, StoreConfig]
else:
    # The store models are imported only when stores are configured (a cold start without stores skips them).
    _StoreEntry = tuple[str, Any]

DEFAULT_DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
DEFAULT_CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")

AuthMode = Literal["keystone", "trusted-headers"]
IMPORT_METHODS = ("glance-direct", "web-download", "copy-image", "glance-download")
# Glance's [glance_download_properties] extra_properties: the remote image's properties glance-download copies.
GLANCE_DOWNLOAD_PROPERTIES = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
_STORE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Settings(BaseSettings):
    """Configuration of every function; built once per process by ``get_settings()``."""

    model_config = SettingsConfigDict(env_prefix="SGLANCE_", frozen=True, extra="ignore")

    # -- AWS ------------------------------------------------------------------------------------
    aws_region: str = "us-east-1"
    # Only set off AWS (moto, MiniStack, LocalStack); on AWS the SDK finds the regional endpoint.
    aws_endpoint_url: str | None = None
    # S3's endpoint when it is not aws_endpoint_url's (off AWS only: a Ceph RGW holding the image bucket while an
    # emulator serves the rest, as the data plane's benchmark runs).
    s3_endpoint_url: str | None = None
    table_name: str = "sglance-images"
    image_bucket: str = "sglance-images"
    upload_queue_name: str = "sglance-upload-complete"
    store_sync_queue_name: str = "sglance-store-sync"
    import_queue_name: str = "sglance-import"
    event_bus_name: str = "sglance-events"

    # -- identity -------------------------------------------------------------------------------
    auth_mode: AuthMode = "keystone"
    # Identity used in trusted-headers mode when a request carries no X-Project-Id / X-User-Id / X-Roles.
    dev_project_id: str = "0f1c1a1d3b7e4c51a0e1b3b0c0ffee01"
    dev_user_id: str = "9d6e2a4b8c1f4e3aa5b7c9d0e1f2a3b4"
    dev_roles: Annotated[tuple[str, ...], NoDecode] = ("admin", "member", "reader")
    # Set by the Lambda runtime; its presence means "deployed".
    lambda_function_name: str | None = Field(default=None, validation_alias="AWS_LAMBDA_FUNCTION_NAME")
    # Set by ECS in every task (the data plane on Fargate); its presence means "deployed" too.
    ecs_container_metadata_uri: str | None = Field(default=None, validation_alias="ECS_CONTAINER_METADATA_URI_V4")
    # Set by the Lambda runtime: "on-demand", "provisioned-concurrency" or "snap-start".
    lambda_initialization_type: str | None = Field(default=None, validation_alias="AWS_LAMBDA_INITIALIZATION_TYPE")

    @property
    def init_ahead_of_requests(self) -> bool:
        """Lambda runs this init ahead of any request (SnapStart's snapshot, provisioned concurrency): work moved
        into it is off every user's path."""
        return self.lambda_initialization_type in ("snap-start", "provisioned-concurrency")

    @property
    def deployed(self) -> bool:
        """Running on AWS: in a Lambda function or an ECS task (dev-only modes are refused there)."""
        return bool(self.lambda_function_name or self.ecs_container_metadata_uri)

    # -- keystone -------------------------------------------------------------------------------
    # auth_mode=keystone: the Identity v3 endpoint tokens are validated against (e.g. https://keystone.example/v3);
    # also the uri of the WWW-Authenticate challenge on a 401. Required in a deployed function.
    keystone_url: str | None = None
    # The service user that validates tokens (keystonemiddleware's [keystone_authtoken] username, project_name, ...).
    # Keystone's default policy lets it validate with the "service" role (or an admin or system reader role).
    keystone_service_username: str = "glance"
    keystone_service_password: SecretStr | None = None
    # On AWS: a Secrets Manager secret (ARN) holding the service password, as the plain string or as JSON
    # {"password": "..."}. Read once per container on the first token validation; takes precedence over the
    # password above.
    keystone_service_password_secret_arn: str | None = None
    keystone_service_project_name: str = "service"
    keystone_service_user_domain_name: str = "Default"
    keystone_service_project_domain_name: str = "Default"
    # Region of the identity endpoint (keystonemiddleware's region_name); informational while keystone_url is set.
    keystone_region: str | None = None
    # How long a validated token is trusted without asking Keystone again (capped by the token's own expiry).
    # A revoked token keeps working for up to this long in a warm container. 0: ask Keystone on every request.
    keystone_cache_ttl_seconds: int = Field(default=300, ge=0)
    # Connect and read timeout of one call to Keystone; on timeout the request gets a 503.
    keystone_timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("keystone_url", mode="after")
    @classmethod
    def _http_keystone_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("keystone_url must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _keystone_configured_when_deployed(self) -> Settings:
        if self.auth_mode == "keystone" and self.deployed:
            if not self.keystone_url:
                raise ValueError("auth_mode=keystone needs SGLANCE_KEYSTONE_URL in a deployed function")
            if self.keystone_service_password is None and not self.keystone_service_password_secret_arn:
                raise ValueError(
                    "auth_mode=keystone needs SGLANCE_KEYSTONE_SERVICE_PASSWORD_SECRET_ARN (or "
                    "SGLANCE_KEYSTONE_SERVICE_PASSWORD) in a deployed function"
                )
        return self

    # -- end keystone ---------------------------------------------------------------------------

    # -- API behaviour (Glance option names) ----------------------------------------------------
    public_endpoint: str | None = None
    limit_param_default: int = Field(default=25, ge=1)
    api_limit_max: int = Field(default=1000, ge=1)
    image_property_quota: int = Field(default=128, ge=0)
    image_tag_quota: int = Field(default=128, ge=0)
    image_member_quota: int = Field(default=128, ge=0)
    disk_formats: Annotated[tuple[str, ...], NoDecode] = DEFAULT_DISK_FORMATS
    container_formats: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CONTAINER_FORMATS
    # Upper bound on index entries one list request may examine when filters discard candidates.
    list_scan_budget: int = Field(default=2000, ge=1)

    # Glance's enabled_import_methods. glance-download is on by default here (Glance's default leaves it off); it
    # needs auth_mode=keystone (the caller's token and catalog) and the remote endpoints allowed by the URL policy.
    enabled_import_methods: Annotated[tuple[str, ...], NoDecode] = IMPORT_METHODS
    # Property name prefixes glance-download copies from the remote image (Glance's extra_properties).
    glance_download_properties: Annotated[tuple[str, ...], NoDecode] = GLANCE_DOWNLOAD_PROPERTIES

    # -- image data -----------------------------------------------------------------------------
    # Largest image accepted, in bytes (Glance's image_size_cap, 1 TiB).
    image_size_cap: int = Field(default=1024**4, ge=1)
    # Secure hash for os_hash_value (Glance's hashing_algorithm).
    hashing_algorithm: Literal["sha256", "sha384", "sha512"] = "sha512"
    # Lifetime of each presigned URL, and of an upload session (after which it may be replaced).
    presign_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    upload_session_ttl_seconds: int = Field(default=86400, ge=300)
    # Uploads of at least this many bytes are multipart; parts are at least this large (server-chosen).
    multipart_threshold: int = Field(default=100 * 1024**2, ge=5 * 1024**2)
    multipart_part_size: int = Field(default=64 * 1024**2, ge=5 * 1024**2)
    multipart_max_parts: int = Field(default=1000, ge=1, le=10000)
    # Glance accepts any content declared raw; we refuse a recognised format declared as raw unless this is set.
    allow_raw_format_mismatch: bool = False
    # Glance's [image_format] require_image_format_match: refuse bytes that are not the declared disk_format. False
    # accepts them without a virtual size (safety checks still run); Tempest's coverage profile needs it.
    require_image_format_match: bool = True
    # GET /file: "redirect" to a short-lived presigned GET (behind API Gateway), or "stream" through the API.
    data_delivery: Literal["redirect", "stream"] = "redirect"
    # Largest request body the API tier accepts; larger PUT /file bodies get a 413 naming the presigned upload.
    # A synchronous Lambda takes 6 MB, base64-encoded for binary bodies, so about 4.5 MB of data. 0: no limit
    # (the API served locally).
    api_body_limit: int = Field(default=4_400_000, ge=0)
    # A PUT /file session is finalised by the API itself; the S3 event waits this long before taking over.
    proxy_finalize_grace_seconds: int = Field(default=300, ge=0)
    # How often a worker (finaliser, import worker, store_sync, task records) reads and writes an image or task again
    # after its conditional write lost a race with another writer, before giving up (409); the API never retries.
    concurrent_write_attempts: int = Field(default=8, ge=1, le=50)

    # -- owners, deadlines and the job runner (docs/operators.md) ---------------------------------
    # Every in-flight image (uploading, importing) has an owner and a deadline. A writer streaming through the service
    # (PUT /file, PUT /stage) holds its image this long without progress; it renews the lease as bytes arrive.
    stream_lease_seconds: int = Field(default=300, ge=30, le=86400)
    # A worker, a job or a queued import holds its image this long without progress (renewed as it works); longer
    # than the work queues' visibility timeout, so a redelivered job finds its image still waiting.
    work_lease_seconds: int = Field(default=1800, ge=60, le=7 * 86400)
    # The sweeper (functions/sweeper) runs this often and returns at most this many overdue images per run to queued.
    sweep_interval_seconds: int = Field(default=300, ge=60, le=86400)
    sweep_page_size: int = Field(default=100, ge=1, le=1000)
    # A Lambda worker keeps this much of its remaining time to hand the work to a job and record that it did.
    worker_deadline_margin_seconds: float = Field(default=15.0, ge=1.0, le=600.0)
    # What a worker can hash and move per second (to see up front that a known size will not fit its remaining time).
    worker_bytes_per_second: int = Field(default=64 * 1024**2, ge=1024**2)
    # Who runs the work that does not fit a Lambda: "ecs" (RunTask of the job task definition), "local" (a
    # subprocess, the local stack) or "none" (such work fails with the reason on the image).
    job_launcher: Literal["ecs", "local", "none"] = "none"
    # A job's own deadline: past it the work fails for good (queued with the reason, or a failed store copy).
    job_max_seconds: int = Field(default=12 * 3600, ge=60)
    # The ECS job: cluster, task definition (ARN or family[:revision]), container name, awsvpc subnets and security
    # groups (comma-separated), public IP (only for subnets without a NAT route to S3, DynamoDB and SQS).
    job_cluster: str | None = None
    job_task_definition: str | None = None
    job_container_name: str = "data-plane"
    job_subnets: Annotated[tuple[str, ...], NoDecode] = ()
    job_security_groups: Annotated[tuple[str, ...], NoDecode] = ()
    job_assign_public_ip: bool = False
    # The job, as JSON, in the environment of a job task (set by the ECS launcher; argv takes precedence).
    job: str | None = None

    @model_validator(mode="after")
    def _ecs_jobs_configured(self) -> Settings:
        if self.job_launcher == "ecs" and not (self.job_cluster and self.job_task_definition and self.job_subnets):
            raise ValueError(
                "job_launcher=ecs needs SGLANCE_JOB_CLUSTER, SGLANCE_JOB_TASK_DEFINITION and SGLANCE_JOB_SUBNETS"
            )
        return self

    # -- end owners, deadlines and the job runner ---------------------------------------------------

    # -- stores (docs/stores.md) ------------------------------------------------------------------
    # The image bucket's store id: every upload lands there, and it serves downloads unless ?prefer= says otherwise.
    primary_store_id: str = "s3"
    primary_store_weight: int = 100
    # The other stores images are replicated to (Glance's enabled_backends), as JSON {id: {"type": ..., ...}}.
    # Kept as (id, config) pairs so the settings stay hashable; read them through ``store_configs``.
    stores: Annotated[tuple[_StoreEntry, ...], NoDecode] = ()
    # Replication policy: stores every image is copied to when it becomes active ("*": every other store).
    replicate_to: Annotated[tuple[str, ...], NoDecode] = ()
    # store_sync: deliveries of one copy job before it goes to the DLQ (the queue's maxReceiveCount), and the
    # backoff between them (doubling from base, capped).
    store_sync_max_attempts: int = Field(default=5, ge=1, le=100)
    store_sync_backoff_base_seconds: int = Field(default=30, ge=0, le=43200)
    store_sync_backoff_max_seconds: int = Field(default=900, ge=0, le=43200)

    @field_validator("stores", mode="before")
    @classmethod
    def _parse_stores(cls, value: object) -> object:
        """JSON text (the environment), a mapping, or (id, config) pairs -> (id, validated config) pairs."""
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if isinstance(value, dict):
            value = tuple(value.items())
        if not isinstance(value, (tuple, list)):
            raise ValueError("stores must be a JSON object {id: configuration}")
        if not value:
            return ()
        from pydantic import TypeAdapter

        from shared.stores.config import StoreConfig

        adapter: TypeAdapter[StoreConfig] = TypeAdapter(StoreConfig)
        return tuple((str(store_id), adapter.validate_python(config)) for store_id, config in value)

    @field_validator("stores", mode="after")
    @classmethod
    def _valid_store_ids(cls, value: tuple[_StoreEntry, ...]) -> tuple[_StoreEntry, ...]:
        ids = [store_id for store_id, _ in value]
        if len(set(ids)) != len(ids):
            raise ValueError("store ids must be unique")
        for store_id in ids:
            if not _STORE_ID.fullmatch(store_id) or store_id.startswith("os_glance"):
                raise ValueError(f"invalid store id {store_id!r}: letters, digits, '_' and '-', not os_glance*")
        return value

    @property
    def store_configs(self) -> dict[str, StoreConfig]:
        """The replication stores by id (the primary store excluded)."""
        return dict(self.stores)

    # Glance's show_multiple_locations: every image body lists its complete copies as ``locations`` (url and store),
    # which tells readers where the bytes are kept (bucket and key names). Off by default, as in Glance.
    show_multiple_locations: bool = False

    @property
    def store_weights(self) -> dict[str, int]:
        """Every store's weight by id, the primary's included (Glance orders an image's stores by it)."""
        return {self.primary_store_id: self.primary_store_weight, **{sid: c.weight for sid, c in self.stores}}

    # -- end stores -------------------------------------------------------------------------------

    # -- web-download (import) -------------------------------------------------------------------
    # The URL policy of shared/net/ssrf.py (Glance's [import_filtering_opts]). Every address a URL's host resolves
    # to must be public unicast, unless the host is in allowed_hosts; cloud metadata addresses are always refused.
    web_download_allowed_schemes: Annotated[tuple[str, ...], NoDecode] = ("http", "https")
    # Empty: any port.
    web_download_allowed_ports: Annotated[tuple[int, ...], NoDecode] = (80, 443)
    # Host names or IP literals (as written in the URL) fetched even if they resolve to non-public addresses.
    web_download_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    # Never fetched: names (".example.com" covers subdomains too), IP addresses or CIDR networks.
    web_download_disallowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    web_download_max_redirects: int = Field(default=5, ge=0, le=20)
    # A web-download's bytes count toward image_stage_total as they arrive: recorded on the image every this many
    # bytes (one transaction each); a record that would pass the limit stops the download.
    web_download_staging_step: int = Field(default=64 * 1024**2, ge=1024**2)
    web_download_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    # Longest silence between two reads of the body, not a limit on the whole download.
    web_download_read_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("web_download_allowed_schemes", mode="after")
    @classmethod
    def _only_http_schemes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or set(value) - {"http", "https"}:
            raise ValueError("web_download_allowed_schemes must be a non-empty subset of http, https")
        return value

    @field_validator("web_download_allowed_ports", mode="after")
    @classmethod
    def _valid_ports(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 < port < 65536 for port in value):
            raise ValueError("web_download_allowed_ports must be TCP ports (1-65535)")
        return value

    # -- end web-download (import) ---------------------------------------------------------------

    # -- policy ---------------------------------------------------------------------------------
    # oslo.policy rules (YAML or JSON) that override Glance's secure-RBAC defaults, e.g. "policy.yaml" shipped in
    # the function package (relative paths resolve against the working directory, the package root on Lambda) or
    # an absolute path on a layer (/opt/...) or a mounted file system. None or a missing file: defaults only.
    policy_file: str | None = None
    # Glance's property protections (INI: one [regex] section per property pattern, create/read/update/delete =
    # roles or a policy name, "@" everyone, "!" nobody). None: off. Set but missing or malformed: refuse to serve.
    property_protection_file: str | None = None
    property_protection_rule_format: Literal["roles", "policies"] = "roles"
    # -- end policy -----------------------------------------------------------------------------

    # -- notifications, tasks, quotas (docs/notifications.md, docs/quotas.md) ---------------------------
    # Notifications go to the EventBridge bus ``event_bus_name`` ("eventbridge") or nowhere ("noop").
    notification_driver: Literal["eventbridge", "noop"] = "eventbridge"
    # Glance's default_publisher_id and disabled_notifications (exact event types or group prefixes).
    default_publisher_id: str = "image.localhost"
    disabled_notifications: Annotated[tuple[str, ...], NoDecode] = ()
    # The ``source`` of every event put on the bus.
    notification_source: str = "openstack.glance"
    # A queue a bus rule copies every notification to (consumers, tests); empty: no rule, no queue.
    notification_queue_name: str | None = "sglance-notifications"
    # Hours a finished task is kept (Glance's [task] task_time_to_live); DynamoDB TTL removes it after.
    task_time_to_live: int = Field(default=48, ge=1)
    # Default unified limits of every project (-1: unlimited); sizes in MiB. Per-project overrides: docs/quotas.md.
    limit_image_size_total: int = Field(default=-1, ge=-1)
    limit_image_stage_total: int = Field(default=-1, ge=-1)
    limit_image_count_total: int = Field(default=-1, ge=-1)
    limit_image_count_uploading: int = Field(default=-1, ge=-1)
    # Glance's image_location_quota: most locations (store copies) one image may have (413).
    image_location_quota: int = Field(default=10, ge=1)

    @property
    def default_limits(self) -> dict[str, int]:
        """The unified limits of a project without overrides, by Glance's names (-1: unlimited)."""
        return {
            "image_size_total": self.limit_image_size_total,
            "image_stage_total": self.limit_image_stage_total,
            "image_count_total": self.limit_image_count_total,
            "image_count_uploading": self.limit_image_count_uploading,
        }

    @field_validator("disabled_notifications", mode="before")
    @classmethod
    def _split_disabled(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    # -- end notifications, tasks, quotas --------------------------------------------------------

    # -- data plane (docs/uploads.md) --------------------------------------------------------------
    # The streaming container (functions/data_plane) that serves PUT /file, PUT /stage and GET /file behind the front
    # door, with no body limit. Where it listens in its task (the load balancer's target port).
    data_plane_host: str = "0.0.0.0"
    data_plane_port: int = Field(default=8080, ge=1, le=65535)
    # Transfers (uploads and downloads) one task streams at once; each holds a thread and up to two parts of memory.
    data_plane_max_transfers: int = Field(default=32, ge=1, le=1024)
    # Idle keep-alive of client connections: longer than the load balancer's idle timeout (60 s by default), so the
    # balancer, not the task, closes idle connections (AWS's advice for ALB targets).
    data_plane_keep_alive_seconds: int = Field(default=75, ge=1)
    # On SIGTERM (a deployment, a scale-in) transfers under way get this long to finish; ECS's stopTimeout must be
    # longer (at most 120 s on Fargate).
    data_plane_shutdown_grace_seconds: int = Field(default=100, ge=0, le=115)

    def for_data_plane(self) -> Settings:
        """These settings as the data plane runs them: no API body limit (it takes any size up to image_size_cap)
        and downloads streamed (it is where the bytes flow; only the API function redirects)."""
        return self.model_copy(update={"api_body_limit": 0, "data_delivery": "stream"})

    # -- end data plane ---------------------------------------------------------------------------

    # -- observability --------------------------------------------------------------------------
    log_level: str = "INFO"
    service_name: str = "serverless-glance"

    @field_validator(
        "disk_formats",
        "container_formats",
        "dev_roles",
        "enabled_import_methods",
        "glance_download_properties",
        "replicate_to",
        "web_download_allowed_schemes",
        "web_download_allowed_ports",
        "web_download_allowed_hosts",
        "web_download_disallowed_hosts",
        "job_subnets",
        "job_security_groups",
        mode="before",
    )
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _refuse_dev_auth_when_deployed(self) -> Settings:
        if self.auth_mode == "trusted-headers" and self.deployed:
            raise ValueError(
                "SGLANCE_AUTH_MODE=trusted-headers is a local development mode and cannot run in a deployed "
                "function or task (AWS_LAMBDA_FUNCTION_NAME or ECS_CONTAINER_METADATA_URI_V4 is set); "
                "use auth_mode=keystone"
            )
        unknown = set(self.enabled_import_methods) - set(IMPORT_METHODS)
        if unknown:
            raise ValueError(f"unsupported import methods: {', '.join(sorted(unknown))}")
        if self.primary_store_id in self.store_configs:
            raise ValueError(f"store id {self.primary_store_id!r} is the primary store's; choose another id")
        if not _STORE_ID.fullmatch(self.primary_store_id):
            raise ValueError("primary_store_id: letters, digits, '_' and '-'")
        targets = set(self.replicate_to) - {"*"}
        unknown_targets = targets - set(self.store_configs)
        if unknown_targets:
            raise ValueError(f"replicate_to names unknown stores: {', '.join(sorted(unknown_targets))}")
        if self.primary_store_id in self.replicate_to:
            raise ValueError("replicate_to cannot name the primary store (every image is there already)")
        if self.limit_param_default > self.api_limit_max:
            raise ValueError("limit_param_default must not exceed api_limit_max")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
