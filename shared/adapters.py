"""The composition root's adapters half: ``AwsClients`` (the one factory of AWS SDK clients, one client per service
and region, shared by every adapter) and ``Adapters``, which builds the repositories, the upload bucket, queues,
stores, the notifier, policies and the authenticator from Settings on first use. ``shared.bootstrap.Container``
adds the unit of work and the services on top. Tests replace parts through ``overrides`` (by the property's name).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from shared.config import Settings
from shared.domain.context import RequestContext

if TYPE_CHECKING:
    from shared.data.base import ImageRepository
    from shared.data.dynamodb.table import TableModels
    from shared.data.metadefs import MetadefRepository
    from shared.data.tasks import TaskRepository
    from shared.jobrunner import JobLauncher
    from shared.notifications import Notifier
    from shared.notifications.events import Events
    from shared.policy import Policies
    from shared.policy.property_protections import PropertyProtections
    from shared.queues import WorkQueue
    from shared.quota.ledger import QuotaLedger
    from shared.stores.registry import StoreSet
    from shared.upload_bucket import UploadBucket

T = TypeVar("T")


class Authenticator(Protocol):
    """Turns request headers into a context (Keystone tokens when deployed; trusted headers in dev)."""

    def authenticate(self, headers: dict[str, str], request_id: str) -> RequestContext:
        """Return the caller's context.

        Raises:
            NotAuthenticatedError: no acceptable credentials (401).
            IdentityUnavailableError: the identity service could not be asked (503).
        """
        ...


class AwsClients:
    """One boto3 client per AWS service and region, made on first use and shared (clients are thread-safe)."""

    def __init__(self, region: str, endpoint_url: str | None = None, endpoints: dict[str, str] | None = None) -> None:
        """``endpoints``: services whose endpoint is not ``endpoint_url`` (service name -> URL)."""
        self.region = region
        self.endpoint_url = endpoint_url
        self.endpoints = dict(endpoints or {})
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None = None) -> Any:
        """The client of ``service`` (in ``region``, default the settings' region)."""
        key = (service, region or self.region)
        with self._lock:
            if key not in self._clients:
                import boto3

                self._clients[key] = boto3.client(
                    service,
                    region_name=key[1],
                    endpoint_url=self.endpoints.get(service, self.endpoint_url),
                    config=self._config(service),
                )
            return self._clients[key]

    def close(self) -> None:
        """Close every client made so far (their connection pools)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def _config(self, service: str) -> Any:
        from botocore.config import Config

        if service == "s3":
            # SigV4 always; path-style addressing off AWS, where emulators need it.
            addressing = "path" if self.endpoints.get(service, self.endpoint_url) else "virtual"
            return Config(signature_version="s3v4", s3={"addressing_style": addressing}, retries={"mode": "standard"})
        if service == "events":
            # A slow bus must not hold the user's request for long: short timeouts, one retry.
            return Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})
        if service == "dynamodb":
            # What pynamodb would configure for itself: no client-side validation, three retries.
            return Config(parameter_validation=False, retries={"total_max_attempts": 4, "mode": "standard"})
        return Config(retries={"mode": "standard"})

    def secret(self, arn: str) -> str:
        """The ``SecretString`` of a Secrets Manager secret, read in the secret's own region."""
        from shared.secrets import read_secret, secret_region

        return read_secret(arn, self.client("secretsmanager", secret_region(arn, self.region)))


@dataclass
class Adapters:
    """The adapters every function may need, built on first use (cold start pays only for what it touches)."""

    settings: Settings
    overrides: dict[str, object] = field(default_factory=dict)

    def _given(self, name: str, build: Callable[[], T]) -> T:
        """The override named ``name``, else what ``build()`` makes."""
        if name in self.overrides:
            part: T = self.overrides[name]  # type: ignore[assignment]
            return part
        built: T = build()
        return built

    # -- adapters -------------------------------------------------------------------------------------

    @cached_property
    def aws(self) -> AwsClients:
        """The AWS client factory."""
        s = self.settings
        endpoints = {"s3": s.s3_endpoint_url} if s.s3_endpoint_url else {}
        return self._given("aws", lambda: AwsClients(s.aws_region, s.aws_endpoint_url, endpoints))

    @cached_property
    def table_models(self) -> TableModels:
        """The pynamodb models of the images table, on the shared DynamoDB client."""

        def build() -> TableModels:
            from shared.data.dynamodb.table import table_models
            from shared.resources import IMAGES_TABLE

            s = self.settings
            return table_models(
                IMAGES_TABLE, s.table_name, s.aws_endpoint_url, s.aws_region, self.aws.client("dynamodb")
            )

        return self._given("table_models", build)

    @cached_property
    def image_repository(self) -> ImageRepository:
        """The DynamoDB image repository."""

        def build() -> ImageRepository:
            from shared.data.dynamodb.images import DynamoImageRepository

            return DynamoImageRepository(self.table_models)

        return self._given("image_repository", build)

    @cached_property
    def metadef_repository(self) -> MetadefRepository:
        """The metadata definitions catalog, in the images table."""

        def build() -> MetadefRepository:
            from shared.data.dynamodb.metadefs import DynamoItemStore
            from shared.data.metadefs import MetadefRepository

            return MetadefRepository(DynamoItemStore(self.table_models))

        return self._given("metadef_repository", build)

    @cached_property
    def task_repository(self) -> TaskRepository:
        """Task records, in the images table."""

        def build() -> TaskRepository:
            from datetime import timedelta

            from shared.data.dynamodb.tasks import DynamoTaskRepository

            return DynamoTaskRepository(self.table_models, timedelta(hours=self.settings.task_time_to_live))

        return self._given("task_repository", build)

    @cached_property
    def quota(self) -> QuotaLedger:
        """Unified limits and usage counters (docs/quotas.md); none kept beside an overridden image repository."""

        def build() -> QuotaLedger:
            s = self.settings
            if "image_repository" in self.overrides:
                from shared.quota.ledger import NullQuotaLedger

                return NullQuotaLedger(s.default_limits, s.image_location_quota)
            from shared.data.dynamodb.quota import DynamoQuotaLedger

            return DynamoQuotaLedger(self.table_models, s.default_limits, s.image_location_quota)

        return self._given("quota", build)

    @cached_property
    def image_bucket(self) -> UploadBucket:
        """The S3 bucket every upload lands in."""

        def build() -> UploadBucket:
            from shared.upload_bucket.s3 import S3UploadBucket

            s = self.settings
            endpoint = s.s3_endpoint_url or s.aws_endpoint_url
            return S3UploadBucket(s.image_bucket, s.aws_region, endpoint, client=self.aws.client("s3"))

        return self._given("image_bucket", build)

    def _queue(self, name: str) -> WorkQueue:
        from shared.queues import WorkQueue

        return WorkQueue(name, lambda: self.aws.client("sqs"))

    @cached_property
    def import_queue(self) -> WorkQueue:
        """The queue of the import worker."""
        return self._given("import_queue", lambda: self._queue(self.settings.import_queue_name))

    @cached_property
    def store_sync_queue(self) -> WorkQueue:
        """The queue of the store_sync function."""
        return self._given("store_sync_queue", lambda: self._queue(self.settings.store_sync_queue_name))

    @cached_property
    def job_launcher(self) -> JobLauncher:
        """Starts the jobs that run work too long for a Lambda worker (settings.job_launcher)."""

        def build() -> JobLauncher:
            s = self.settings
            if s.job_launcher == "ecs":
                from shared.jobrunner.ecs import EcsJobLauncher

                assert s.job_cluster is not None and s.job_task_definition is not None  # the settings check
                return EcsJobLauncher(
                    lambda: self.aws.client("ecs"),
                    cluster=s.job_cluster,
                    task_definition=s.job_task_definition,
                    container=s.job_container_name,
                    subnets=s.job_subnets,
                    security_groups=s.job_security_groups,
                    assign_public_ip=s.job_assign_public_ip,
                )
            if s.job_launcher == "local":
                from shared.jobrunner.local import SubprocessJobLauncher

                return SubprocessJobLauncher()
            from shared.jobrunner import NoJobLauncher

            return NoJobLauncher("no job runner is configured (job_launcher=none)")

        return self._given("job_launcher", build)

    @cached_property
    def stores(self) -> StoreSet:
        """Every configured store (drivers built on first use; secrets read from Secrets Manager then)."""

        def build() -> StoreSet:
            from functools import cache

            from shared.secrets import secret_fields
            from shared.stores.registry import StoreSet

            @cache
            def secrets(arn: str) -> dict[str, str]:
                return secret_fields(self.aws.secret(arn))

            return StoreSet.for_settings(self.settings, secrets)

        return self._given("stores", build)

    @cached_property
    def notifier(self) -> Notifier:
        """Glance's notifications: the EventBridge bus, or nothing (settings.notification_driver)."""

        def build() -> Notifier:
            from shared.notifications import NullNotifier

            s = self.settings
            if s.notification_driver == "noop":
                return NullNotifier(s.default_publisher_id, s.disabled_notifications)
            from shared.notifications.eventbridge import EventBridgeNotifier

            return EventBridgeNotifier(
                s.default_publisher_id,
                s.disabled_notifications,
                bus_name=s.event_bus_name,
                source=s.notification_source,
                client=lambda: self.aws.client("events"),
            )

        return self._given("notifier", build)

    @cached_property
    def events(self) -> Events:
        """The notifier, with one method per Glance event."""
        from shared.notifications.events import Events

        return Events(self.notifier)

    @cached_property
    def policies(self) -> Policies:
        """Each caller's policy over the enforcer of the policy file."""
        from shared.policy import Policies

        return Policies.for_settings(self.settings)

    @cached_property
    def protections(self) -> PropertyProtections:
        """Glance's property protections (everything allowed when off)."""
        from shared.policy.property_protections import protections_for

        s = self.settings
        return protections_for(s.property_protection_file, s.property_protection_rule_format, s.policy_file)

    @cached_property
    def authenticator(self) -> Authenticator:
        """The authenticator of the configured auth mode."""
        if self.settings.auth_mode == "trusted-headers":
            from shared.auth.trusted_headers import TrustedHeadersAuthenticator

            return TrustedHeadersAuthenticator(self.settings)
        from shared.auth.keystone import KeystoneAuthenticator

        return KeystoneAuthenticator(self.settings, read_secret=self.aws.secret)
