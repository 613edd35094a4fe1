"""Interoperable image import (``POST /v2/images/{id}/import``) and the legacy ``import`` task (``POST /v2/tasks``).

``read_import_request`` checks the body as Glance does (400); ``Imports.stores`` picks the target stores as
Glance's get_stores_from_request does (409 for an unknown store); ``Imports.start`` begins a glance-direct,
web-download or glance-download import: the image goes to ``importing``, a task records the import, and the import
worker finishes it from the queue. copy-image is ``shared/services/copies.py``.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared.domain.errors import ConflictError, GlanceError, InvalidInputError
from shared.domain.image import utcnow
from shared.domain.status import ImageStatus
from shared.domain.upload import UploadMethod, UploadPlan
from shared.jobs import ImportJob
from shared.services.leases import QUEUE_HOLDER
from shared.services.tasks import API_IMAGE_IMPORT, LEGACY_IMPORT, TaskService

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.domain.task import Task
    from shared.queues import WorkQueue
    from shared.services.replication import Replicator
    from shared.services.unit_of_work import ImageUnitOfWork
    from shared.services.upload_sessions import UploadSessions


@dataclass(frozen=True)
class ImportRequest:
    """A checked import body (kept whole: the task records it) and the ``X-Image-Meta-Store`` header."""

    body: dict[str, Any]
    header_store: str = ""

    @property
    def method(self) -> str:
        """The import method's name."""
        name: str = self.body["method"]["name"]
        return name

    @property
    def uri(self) -> str | None:
        """web-download's URL, if the body names one."""
        uri = self.body["method"].get("uri")
        return uri if isinstance(uri, str) and uri else None

    def remote(self, name: str) -> str | None:
        """A glance-download parameter (``glance_region``, ``glance_image_id``, ``glance_service_interface``)."""
        value = self.body["method"].get(name)
        return value if isinstance(value, str) else None

    @property
    def all_stores(self) -> bool:
        """Whether every store is a target (copy-image, multi-store imports)."""
        return bool(self.body.get("all_stores", False))

    @property
    def all_stores_must_succeed(self) -> bool:
        """Whether a failed copy rolls back the others."""
        return bool(self.body.get("all_stores_must_succeed", True))


def read_import_request(body: Any, store_header: str | None = None) -> ImportRequest:
    """The import body, validated as Glance does (400 for a malformed body)."""
    if not isinstance(body, dict) or not isinstance(body.get("method"), dict):
        raise InvalidInputError("Import request requires a 'method' field.")
    name = body["method"].get("name")
    if not isinstance(name, str):
        raise InvalidInputError("Import request requires a 'name' field.")
    for flag in ("all_stores_must_succeed", "all_stores"):
        if flag in body and not isinstance(body[flag], bool):
            raise InvalidInputError(f"'{flag}' must be boolean value only")
    if name == "glance-download":
        _check_glance_download(body["method"])
    return ImportRequest(body, (store_header or "").strip())


def _check_glance_download(method: dict[str, Any]) -> None:
    """glance-download's parameters as Glance checks them (400); the interface defaults to public."""
    for name in ("glance_region", "glance_image_id"):
        if not isinstance(method.get(name), str) or not method[name]:
            raise InvalidInputError(f"'{name}' needs to be set for glance-download import method")
    try:
        uuid.UUID(method["glance_image_id"])
    except ValueError:
        raise InvalidInputError(f"Remote image id does not look like a UUID: {method['glance_image_id']}") from None
    interface = method.setdefault("glance_service_interface", "public")
    if not isinstance(interface, str):
        raise InvalidInputError("'glance_service_interface' must be a string")


@dataclass
class Imports:
    """Starts glance-direct and web-download imports; every image passed in was loaded for a change and
    authorised."""

    sessions: UploadSessions
    uow: ImageUnitOfWork
    tasks: TaskService
    replicator: Replicator
    queue: WorkQueue
    settings: Settings

    def require_method(self, method: str) -> None:
        """400 for an import method this service does not offer."""
        if method not in self.settings.enabled_import_methods:
            raise InvalidInputError(f"Unknown import method name '{method}'.")

    def check_url(self, uri: str) -> None:
        """400 for a URL the web-download policy refuses (scheme, port, host, every address it resolves to)."""
        from shared.net.ssrf import UrlPolicy, validate_url

        validate_url(uri, UrlPolicy.from_settings(self.settings))

    def stores(self, request: ImportRequest) -> list[str]:
        """The import's target stores, as Glance's get_stores_from_request picks them (unknown store: 409)."""
        header = request.header_store
        body = request.body
        if request.all_stores:
            if "stores" in body or header:
                raise InvalidInputError(
                    "All_stores parameter can't be used with x-image-meta-store header or stores parameter"
                )
            return self.replicator.stores.ids
        if "stores" in body:
            if header:
                raise InvalidInputError("Stores parameter and x-image-meta-store header can't be both specified")
            stores = body["stores"]
            if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores):
                raise InvalidInputError("'stores' must be a list of store identifiers")
        else:
            stores = [header or self.replicator.stores.primary_id]
        try:
            return self.replicator.check_stores(stores)
        except InvalidInputError as exc:
            raise ConflictError(detail=exc.message) from None

    def start(
        self,
        ctx: RequestContext,
        image: Image,
        request: ImportRequest,
        stores: list[str],
        task_id: str | None = None,
    ) -> Image:
        """Begin the import: the image goes to ``importing`` and the import worker is sent the job. Every import
        records an api_image_import task, except a legacy task's, which passes its own ``task_id``."""
        if image.status is ImageStatus.ACTIVE:
            raise ConflictError(detail="Image with status active cannot be target for import")
        if request.method == "web-download":
            uri = request.uri
            if uri is None:
                raise InvalidInputError("web-download requires 'uri' in the method.")
            self._check_url_or_record(ctx, image, request, stores, uri, task_id)
            plan = UploadPlan(UploadMethod.WEB, self.settings.multipart_part_size, 1)
            image.start_import(request.method, self.sessions.new(image.id, plan, None))
        elif request.method == "glance-download":
            # The bytes land in the upload bucket as a web-download's do, then are verified and recorded.
            plan = UploadPlan(UploadMethod.WEB, self.settings.multipart_part_size, 1)
            image.start_import(request.method, self.sessions.new(image.id, plan, None))
        else:
            image.start_import(request.method)
        assert image.upload is not None
        # The queue holds the image until a worker takes the job (and renews the lease as it works).
        image.hold(QUEUE_HOLDER, utcnow() + timedelta(seconds=self.settings.work_lease_seconds))
        image.upload.targets = tuple(s for s in stores if s != self.replicator.stores.primary_id)
        image.upload.all_stores_must_succeed = request.all_stores_must_succeed
        # A legacy POST /v2/tasks import passes its own task; every other import records a new one.
        task = task_id or self.import_task(ctx, image.id, request, stores).id
        image.upload.task_id = task
        try:
            saved = self.uow.commit(image, ctx.request_id)
        except GlanceError as exc:
            self.tasks.fail(task, f"The import could not start: {exc.message}", ctx.request_id)
            raise
        remote = request.method == "glance-download"
        self.queue.send(
            ImportJob(
                method=request.method,
                image_id=saved.id,
                session_id=image.upload.id,
                request_id=ctx.request_id,
                task_id=task,
                uri=request.uri if request.method == "web-download" else None,
                # glance-download: the remote image, and the caller's token (Glance's flow keeps its context)
                glance_region=request.remote("glance_region") if remote else None,
                glance_image_id=request.remote("glance_image_id") if remote else None,
                glance_service_interface=request.remote("glance_service_interface") if remote else None,
                auth_token=ctx.auth_token if remote else None,
            )
        )
        return saved

    def _check_url_or_record(
        self,
        ctx: RequestContext,
        image: Image,
        request: ImportRequest,
        stores: list[str],
        uri: str,
        task_id: str | None,
    ) -> None:
        """``check_url``; a refusal is also recorded where users look for failed imports (openstacksdk ignores the
        400 of an import call): a failed task on the image and ``os_glance_failed_import``."""
        from shared.net.ssrf import UrlNotAllowedError

        try:
            self.check_url(uri)
        except UrlNotAllowedError as exc:
            if task_id is None:  # a legacy task's caller fails its own task
                task = self.import_task(ctx, image.id, request, stores)
                self.tasks.fail(task.id, f"The import was refused: {exc.message}", ctx.request_id)
            image.refuse_import(stores)
            # the refusal (the 400) stands even if the image changed meanwhile; the task still records it
            with contextlib.suppress(GlanceError):
                self.uow.commit(image, ctx.request_id)
            raise

    def import_task(self, ctx: RequestContext, image_id: str, request: ImportRequest, stores: list[str]) -> Task:
        """Record the import as an api_image_import task (Glance's input: image_id, import_req, backend)."""
        task_input = {"image_id": image_id, "import_req": request.body, "backend": stores}
        return self.tasks.create(ctx, API_IMAGE_IMPORT, task_input, image_id)

    def legacy_task(self, ctx: RequestContext, image: Image, task_input: dict[str, Any], uri: str) -> Task:
        """``POST /v2/tasks`` of type ``import``: store the new ``image``, record the task, and fill the image by
        web-download from ``uri``; the task's result names the image."""
        created = self.uow.add(image, ctx.request_id)
        task = self.tasks.create(ctx, LEGACY_IMPORT, task_input, None)
        request = read_import_request({"method": {"name": "web-download", "uri": uri}})
        try:
            self.require_method(request.method)
            self.start(ctx, created, request, self.stores(request), task_id=task.id)
        except Exception as exc:
            self.tasks.fail(task.id, f"The import could not start: {exc}", ctx.request_id)
            raise
        return self.tasks.get(task.id)
