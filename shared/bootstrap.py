"""The composition root: builds every collaborator of every function from Settings, once, on first use.

``Container`` is ``Adapters`` (``shared/adapters.py``: AWS clients, repositories, the upload bucket, queues, stores,
the notifier, policies, the authenticator) plus the unit of work and the services wired from them. Nothing is built
before it is needed, so a cold start pays only for what the first request touches. Tests replace parts through
``overrides`` (by the property's name).
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from shared.adapters import Adapters, AwsClients

if TYPE_CHECKING:
    from shared.services.copies import Copies
    from shared.services.downloads import Downloads
    from shared.services.finalize import UploadFinalizer
    from shared.services.images import ImageService
    from shared.services.import_worker import ImportWorker
    from shared.services.imports import Imports
    from shared.services.locations import Locations
    from shared.services.metadefs import MetadefService
    from shared.services.quotas import Quotas
    from shared.services.replication import Replicator, StoreSync
    from shared.services.staging import Staging
    from shared.services.streamed_uploads import StreamedUploads
    from shared.services.sweeper import Sweeper
    from shared.services.tasks import TaskService
    from shared.services.unit_of_work import ImageUnitOfWork, TaskUnitOfWork
    from shared.services.upload_sessions import UploadSessions
    from shared.services.uploads import PresignedUploads

__all__ = ["AwsClients", "Container"]


class Container(Adapters):
    """Everything the functions need, built on first use (cold start pays only for what it touches)."""

    def warm(self) -> None:
        """Init-time work the first image request would otherwise pay (Lambda runs init before the first event, and
        SnapStart keeps it): the policy file parsed into the process-wide enforcer, and the modules of the image
        path imported (the DynamoDB repository with pynamodb and boto3, the auth mode's authenticator).

        Makes no client, connection or credential: those would be shared by every SnapStart-restored environment.

        Raises:
            PolicyFileError: the policy file exists but cannot be used.
        """
        import importlib

        from shared.policy.enforcer import enforcer_for

        enforcer_for(self.settings.policy_file).load()
        modules = ["boto3", "shared.data.dynamodb.images", "shared.services.images", "shared.services.unit_of_work"]
        if self.settings.auth_mode == "trusted-headers":
            modules.append("shared.auth.trusted_headers")
        else:
            modules += ["shared.auth.keystone", "keystoneauth1.session", "keystoneauth1.identity.v3"]
            modules += ["keystoneauth1.adapter", "keystoneauth1.exceptions"]
        for module in modules:
            importlib.import_module(module)

    # -- the unit of work and the services --------------------------------------------------------------

    @cached_property
    def image_uow(self) -> ImageUnitOfWork:
        """Loads and writes images, with their quota counters and events."""
        from shared.services.unit_of_work import ImageUnitOfWork

        s = self.settings
        return ImageUnitOfWork(self.image_repository, self.quota, self.events, s.concurrent_write_attempts)

    @cached_property
    def task_uow(self) -> TaskUnitOfWork:
        """Loads and writes task records, with their events."""
        from shared.services.unit_of_work import TaskUnitOfWork

        return TaskUnitOfWork(self.task_repository, self.events, self.settings.concurrent_write_attempts)

    @cached_property
    def tasks(self) -> TaskService:
        """Creates, reads and moves task records."""
        from datetime import timedelta

        from shared.services.tasks import TaskService

        return TaskService(self.task_uow, timedelta(hours=self.settings.task_time_to_live))

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
            self.image_uow, self.stores, self.replicator, self.settings, self.tasks, self.events, self.job_launcher
        )

    @cached_property
    def finalizer(self) -> UploadFinalizer:
        """Verifies uploaded bytes and records the outcome on the image (and queues its store copies)."""
        from shared.services.finalize import UploadFinalizer

        return UploadFinalizer(
            self.image_uow, self.image_bucket, self.settings, self.replicator, self.events, self.job_launcher
        )

    @cached_property
    def import_worker(self) -> ImportWorker:
        """Finishes queued imports."""
        from shared.services.import_worker import ImportWorker

        return ImportWorker(self.image_uow, self.image_bucket, self.finalizer, self.settings, self.stores, self.tasks)

    @cached_property
    def images(self) -> ImageService:
        """Reads, lists, creates, writes and deletes images."""
        from shared.services.images import ImageService

        return ImageService(self.image_uow, self.replicator)

    @cached_property
    def upload_sessions(self) -> UploadSessions:
        """Opens and discards upload sessions."""
        from shared.services.upload_sessions import UploadSessions

        return UploadSessions(self.image_uow, self.image_bucket, self.settings, self.quota, self.replicator, self.tasks)

    @cached_property
    def uploads(self) -> PresignedUploads:
        """Presigned direct uploads."""
        from shared.services.uploads import PresignedUploads

        return PresignedUploads(self.upload_sessions, self.image_uow, self.image_bucket, self.settings, self.events)

    @cached_property
    def streamed_uploads(self) -> StreamedUploads:
        """PUT /file: bytes streamed through the service."""
        from shared.services.streamed_uploads import StreamedUploads

        return StreamedUploads(
            self.upload_sessions, self.image_uow, self.image_bucket, self.finalizer, self.settings, self.events
        )

    @cached_property
    def staging(self) -> Staging:
        """PUT /stage: the bytes of a glance-direct import."""
        from shared.services.staging import Staging

        return Staging(self.upload_sessions, self.image_uow, self.image_bucket, self.settings)

    @cached_property
    def imports(self) -> Imports:
        """Starts glance-direct and web-download imports (and the legacy import task)."""
        from shared.services.imports import Imports

        return Imports(
            self.upload_sessions, self.image_uow, self.tasks, self.replicator, self.import_queue, self.settings
        )

    @cached_property
    def copies(self) -> Copies:
        """Starts copy-image requests."""
        from shared.services.copies import Copies

        return Copies(self.image_uow, self.imports, self.tasks, self.replicator)

    @cached_property
    def downloads(self) -> Downloads:
        """Serves image data."""
        from shared.services.downloads import Downloads

        return Downloads(self.image_bucket, self.stores, self.settings, self.events)

    @cached_property
    def metadefs(self) -> MetadefService:
        """The metadata definitions catalog's use cases."""
        from shared.services.metadefs import MetadefService

        return MetadefService(self.metadef_repository, self.events)

    @cached_property
    def sweeper(self) -> Sweeper:
        """Returns abandoned in-flight images to queued and fails their tasks."""
        from shared.services.sweeper import Sweeper

        s = self.settings
        return Sweeper(
            self.image_uow, self.upload_sessions, self.tasks, self.replicator, s.primary_store_id, s.sweep_page_size
        )

    @cached_property
    def quotas(self) -> Quotas:
        """Quota usage and per-project limits."""
        from shared.services.quotas import Quotas

        return Quotas(self.quota)

    @cached_property
    def locations(self) -> Locations:
        """Store discovery, store copies and service-added locations."""
        from shared.services.locations import Locations

        return Locations(self.image_uow, self.upload_sessions, self.replicator, self.import_queue, self.settings)
