"""The composition root: builds repositories and authenticators from Settings, once, lazily."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from shared.config import Settings
from shared.data.base import ImageRepository
from shared.domain.context import RequestContext

if TYPE_CHECKING:
    from shared.data.tasks import TaskRepository
    from shared.notifications import Notifier
    from shared.notifications.events import Events
    from shared.queues import WorkQueue
    from shared.quota import QuotaLedger
    from shared.services.finalize import UploadFinalizer
    from shared.services.imports import ImportWorker
    from shared.services.replication import Replicator, StoreSync
    from shared.services.tasks import TaskService
    from shared.stores.registry import StoreSet
    from shared.stores.s3 import ImageBucket


class Authenticator(Protocol):
    """Turns request headers into a context (Keystone tokens when deployed; trusted headers in dev)."""

    def authenticate(self, headers: dict[str, str], request_id: str) -> RequestContext:
        """Return the caller's context.

        Raises:
            NotAuthenticatedError: no acceptable credentials (401).
            IdentityUnavailableError: the identity service could not be asked (503).
        """
        ...


@dataclass
class Container:
    """Everything the API function needs, built on first use (cold start pays only for what it touches)."""

    settings: Settings
    overrides: dict[str, object] = field(default_factory=dict)

    @cached_property
    def image_repository(self) -> ImageRepository:
        """The DynamoDB image repository named by the settings."""
        if "image_repository" in self.overrides:
            return self.overrides["image_repository"]  # type: ignore[return-value]
        from shared.data.dynamodb import DynamoImageRepository
        from shared.resources import IMAGES_TABLE

        s = self.settings
        return DynamoImageRepository(IMAGES_TABLE, s.table_name, s.aws_region, s.aws_endpoint_url, quota=self.quota)

    @cached_property
    def quota(self) -> QuotaLedger:
        """Unified limits and usage counters (docs/quotas.md)."""
        if "quota" in self.overrides:
            return self.overrides["quota"]  # type: ignore[return-value]
        from shared.quota import QuotaLedger

        s = self.settings
        return QuotaLedger(
            s.table_name, s.default_limits, s.aws_region, s.aws_endpoint_url, max_locations=s.image_location_quota
        )

    @cached_property
    def image_bucket(self) -> ImageBucket:
        """The S3 bucket holding image bytes."""
        if "image_bucket" in self.overrides:
            return self.overrides["image_bucket"]  # type: ignore[return-value]
        from shared.stores.s3 import ImageBucket

        s = self.settings
        return ImageBucket(s.image_bucket, s.aws_region, s.aws_endpoint_url)

    @cached_property
    def import_queue(self) -> WorkQueue:
        """The queue of the import worker."""
        if "import_queue" in self.overrides:
            return self.overrides["import_queue"]  # type: ignore[return-value]
        from shared.queues import WorkQueue

        s = self.settings
        return WorkQueue(s.import_queue_name, s.aws_region, s.aws_endpoint_url)

    @cached_property
    def store_sync_queue(self) -> WorkQueue:
        """The queue of the store_sync function."""
        if "store_sync_queue" in self.overrides:
            return self.overrides["store_sync_queue"]  # type: ignore[return-value]
        from shared.queues import WorkQueue

        s = self.settings
        return WorkQueue(s.store_sync_queue_name, s.aws_region, s.aws_endpoint_url)

    @cached_property
    def stores(self) -> StoreSet:
        """Every configured store (drivers built on first use; secrets read from Secrets Manager then)."""
        if "stores" in self.overrides:
            return self.overrides["stores"]  # type: ignore[return-value]
        from functools import cache

        from shared.secrets import read_secret, secret_fields
        from shared.stores.registry import StoreSet

        s = self.settings

        @cache
        def secrets(arn: str) -> dict[str, str]:
            return secret_fields(read_secret(arn, default_region=s.aws_region, endpoint_url=s.aws_endpoint_url))

        return StoreSet.for_settings(s, secrets)

    @cached_property
    def replicator(self) -> Replicator:
        """Plans store copies and queues store_sync jobs."""
        from shared.services.replication import Replicator

        return Replicator(self.stores, self.store_sync_queue, self.settings)

    @cached_property
    def store_sync(self) -> StoreSync:
        """Runs store_sync jobs."""
        from shared.services.replication import StoreSync

        return StoreSync(
            self.image_repository, self.stores, self.replicator, self.settings, tasks=self.tasks, events=self.events
        )

    @cached_property
    def finalizer(self) -> UploadFinalizer:
        """Verifies uploaded bytes and records the outcome on the image (and queues its store copies)."""
        from shared.services.finalize import UploadFinalizer

        return UploadFinalizer(
            self.image_repository, self.image_bucket, self.settings, self.replicator, events=self.events
        )

    @cached_property
    def import_worker(self) -> ImportWorker:
        """Finishes queued imports."""
        from shared.services.imports import ImportWorker

        return ImportWorker(
            self.image_repository, self.image_bucket, self.finalizer, self.settings, self.stores, tasks=self.tasks
        )

    @cached_property
    def notifier(self) -> Notifier:
        """Glance's notifications: the EventBridge bus, or nothing (settings.notification_driver)."""
        if "notifier" in self.overrides:
            return self.overrides["notifier"]  # type: ignore[return-value]
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
            region=s.aws_region,
            endpoint_url=s.aws_endpoint_url,
        )

    @cached_property
    def task_repository(self) -> TaskRepository:
        """Task records, in the images table."""
        if "task_repository" in self.overrides:
            return self.overrides["task_repository"]  # type: ignore[return-value]
        from datetime import timedelta

        from shared.data.tasks import DynamoTaskRepository

        s = self.settings
        ttl = timedelta(hours=s.task_time_to_live)
        return DynamoTaskRepository(s.table_name, s.aws_region, s.aws_endpoint_url, ttl)

    @cached_property
    def tasks(self) -> TaskService:
        """Creates and moves task records (and sends their events)."""
        from datetime import timedelta

        from shared.services.tasks import TaskService

        return TaskService(self.task_repository, self.events, timedelta(hours=self.settings.task_time_to_live))

    @cached_property
    def events(self) -> Events:
        """The notifier, with one method per Glance event."""
        from shared.notifications.events import Events

        return Events(self.notifier)

    @cached_property
    def authenticator(self) -> Authenticator:
        """The authenticator of the configured auth mode."""
        if self.settings.auth_mode == "trusted-headers":
            from shared.auth.trusted_headers import TrustedHeadersAuthenticator

            return TrustedHeadersAuthenticator(self.settings)
        from shared.auth.keystone import KeystoneAuthenticator

        return KeystoneAuthenticator(self.settings)
