"""Image bytes: presigned direct uploads (our extension), PUT /file (Glance), and downloads."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from functions.api.controllers import visible_image
from shared.config import Settings
from shared.data.base import ImageRepository
from shared.domain.context import RequestContext
from shared.domain.errors import (
    ConcurrentUpdateError,
    ConflictError,
    GlanceError,
    GoneError,
    InvalidImageDataError,
    InvalidInputError,
    InvalidRangeError,
    NotFoundError,
    RequestTooLargeError,
    StoreUnavailableError,
    UnsupportedMediaTypeError,
)
from shared.domain.image import Image, ImageStatus, LocationStatus, utcnow
from shared.domain.quota import IMAGE_SIZE_TOTAL, QuotaExceededError
from shared.domain.upload import UPLOAD_ERROR_PROPERTY, UploadMethod, UploadPlan, UploadSession, plan_upload
from shared.notifications import NullNotifier
from shared.notifications.events import Events
from shared.policy import ImagePolicy
from shared.queues import WorkQueue
from shared.quota import QuotaLedger
from shared.resources import PENDING_STATE
from shared.stores.s3 import ImageBucket, PresignedRequest, RangeNotSatisfiableError, UploadedPart

if TYPE_CHECKING:
    # Imported where used: the upload and import paths load them, reads and presigned sessions do not.
    from shared.services.finalize import UploadFinalizer
    from shared.services.replication import Replicator
    from shared.services.tasks import TaskService

# Part URLs handed out per call; a client asks again for the rest (or after they expire).
MAX_PART_URLS = 100
_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class PartUrl:
    """A presigned PUT for one part."""

    number: int
    size: int
    request: PresignedRequest


@dataclass(frozen=True)
class OpenedUpload:
    """An upload session and the requests the client makes to send the bytes."""

    image: Image
    session: UploadSession
    single: PresignedRequest | None
    parts: list[PartUrl]


@dataclass(frozen=True)
class UploadStatus:
    """Where an upload stands: what S3 holds so far."""

    image: Image
    session: UploadSession
    uploaded: list[UploadedPart]


@dataclass(frozen=True)
class Download:
    """How to answer GET /file."""

    image: Image
    redirect: str | None = None
    chunks: Iterator[bytes] | None = None
    length: int = 0
    content_range: str | None = None


@dataclass(frozen=True)
class DataHooks:
    """The notifier, task records and quota ledger the image-data use cases report to (each optional)."""

    events: Events = field(default_factory=lambda: Events(NullNotifier()))
    tasks: TaskService | None = None
    quota: QuotaLedger | None = None


class ImageDataController:
    """Use cases of the image-data routes."""

    def __init__(
        self,
        repo: ImageRepository,
        bucket: ImageBucket,
        finalizer: UploadFinalizer,
        settings: Settings,
        import_queue: WorkQueue,
        replicator: Replicator,
        hooks: DataHooks | None = None,
    ) -> None:
        self.repo = repo
        self.bucket = bucket
        self.finalizer = finalizer
        self.settings = settings
        self.import_queue = import_queue
        self.replicator = replicator
        hooks = hooks or DataHooks()
        self.events = hooks.events
        # Every import leaves a task record (api_image_import); None: no records.
        self.tasks = hooks.tasks
        # Early refusal of uploads whose declared size would pass image_size_total (docs/quotas.md).
        self.quota = hooks.quota

    def _image(self, ctx: RequestContext, image_id: str) -> tuple[Image, ImagePolicy]:
        return visible_image(self.repo, self.settings, ctx, image_id)

    def _writable(self, ctx: RequestContext, image_id: str) -> Image:
        image, policy = self._image(ctx, image_id)
        policy.modify_image(image, "upload image data")
        return image

    def _session_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.upload_session_ttl_seconds)

    def _start(
        self,
        image: Image,
        plan: UploadPlan,
        size: int | None,
        checksum: str | None,
        targets: tuple[str, ...] = (),
        request_id: str | None = None,
    ) -> UploadSession:
        session = UploadSession.new(image.id, plan, size=size, now=utcnow(), ttl=self._session_ttl(), checksum=checksum)
        session.targets = targets
        replaced = image.open_upload(session, utcnow(), require_formats=plan.method is not UploadMethod.STAGE)
        if plan.method is UploadMethod.MULTIPART:
            session.s3_upload_id = self.bucket.create_multipart(session.key)
        image.touch()
        try:
            self.events.image_updated(self.repo.save(image), request_id)
        except GlanceError:
            if session.s3_upload_id:
                self.bucket.abort_multipart(session.key, session.s3_upload_id)
            raise
        if replaced is not None:
            self._discard(replaced)
        return session

    def _discard(self, session: UploadSession) -> None:
        if session.s3_upload_id:
            self.bucket.abort_multipart(session.key, session.s3_upload_id)
        self.bucket.delete(session.key)

    # -- presigned uploads --------------------------------------------------------------------------

    def upload_targets(self, store_header: str | None) -> tuple[str, ...]:
        """The stores besides the primary an upload goes to: ``X-Image-Meta-Store`` (400 for an unknown store)."""
        if store_header is None or not store_header.strip():
            return ()
        stores = self.replicator.check_stores([store_header.strip()])
        return tuple(s for s in stores if s != self.replicator.stores.primary_id)

    def open_upload(
        self, ctx: RequestContext, image_id: str, body: Any, store_header: str | None = None
    ) -> OpenedUpload:
        """``POST /v2/images/{id}/upload``: open a session for ``size`` bytes."""
        targets = self.upload_targets(store_header)
        if not isinstance(body, dict):
            raise InvalidInputError("Request body must be a JSON object.")
        size = body.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInputError("'size' (bytes, a non-negative integer) is required.")
        if size > self.settings.image_size_cap:
            raise RequestTooLargeError(detail=f"Image size {size} exceeds the cap of {self.settings.image_size_cap}.")
        checksum = body.get("checksum")
        if checksum is not None and not (isinstance(checksum, str) and _MD5.match(checksum)):
            raise InvalidInputError("'checksum' must be an MD5 hex digest.")
        method = body.get("method")
        if method not in (None, "single", "multipart"):
            raise InvalidInputError("'method' must be 'single' or 'multipart'.")
        plan = plan_upload(
            size,
            multipart_threshold=self.settings.multipart_threshold,
            part_size=self.settings.multipart_part_size,
            max_parts=self.settings.multipart_max_parts,
            force=None if method is None else method == "multipart",
        )
        image = self._writable(ctx, image_id)
        self._precheck_size(image, size)
        session = self._start(image, plan, size, checksum, targets, ctx.request_id)
        # The client writes the bytes next: Glance sends image.prepare when data starts being written.
        self.events.image_prepare(image, None, ctx.request_id)
        ttl = self.settings.presign_ttl_seconds
        if session.method is UploadMethod.SINGLE:
            return OpenedUpload(image, session, self.bucket.presign_put(session.key, size, ttl), [])
        numbers = range(1, min(session.parts_count, MAX_PART_URLS) + 1)
        return OpenedUpload(image, session, None, self._part_urls(session, numbers))

    def _part_urls(self, session: UploadSession, numbers: Iterable[int]) -> list[PartUrl]:
        assert session.s3_upload_id is not None
        ttl = self.settings.presign_ttl_seconds
        urls = []
        for number in numbers:
            size = session.part_range(number)
            urls.append(
                PartUrl(number, size, self.bucket.presign_part(session.key, session.s3_upload_id, number, size, ttl))
            )
        return urls

    def _open_session(self, ctx: RequestContext, image_id: str) -> tuple[Image, UploadSession]:
        image = self._writable(ctx, image_id)
        session = image.upload
        if session is None or session.method is UploadMethod.PROXY:
            raise NotFoundError(kind="upload for image", id=image_id)
        return image, session

    def upload_status(self, ctx: RequestContext, image_id: str) -> UploadStatus:
        """``GET /v2/images/{id}/upload``: the session and the parts S3 already holds (to resume)."""
        image, session = self._open_session(ctx, image_id)
        uploaded = []
        if session.s3_upload_id and image.status is ImageStatus.UPLOADING:
            uploaded = self.bucket.list_parts(session.key, session.s3_upload_id)
        return UploadStatus(image, session, uploaded)

    def part_urls(self, ctx: RequestContext, image_id: str, body: Any) -> list[PartUrl]:
        """``POST /v2/images/{id}/upload/parts``: fresh URLs for the given part numbers."""
        numbers = body.get("part_numbers") if isinstance(body, dict) else None
        if not isinstance(numbers, list) or not numbers or not all(type(n) is int for n in numbers):
            raise InvalidInputError("'part_numbers' must be a non-empty list of integers.")
        if len(numbers) > MAX_PART_URLS:
            raise InvalidInputError(f"At most {MAX_PART_URLS} part URLs per request.")
        image, session = self._open_session(ctx, image_id)
        if session.method is not UploadMethod.MULTIPART or image.status is not ImageStatus.UPLOADING:
            raise ConflictError(detail="Part URLs exist only for an open multipart upload.")
        return self._part_urls(session, numbers)

    def complete(self, ctx: RequestContext, image_id: str) -> Image:
        """``POST /v2/images/{id}/upload/complete``: assemble the parts; finalisation follows the S3 event."""
        image, session = self._open_session(ctx, image_id)
        if session.method is not UploadMethod.MULTIPART or image.status is not ImageStatus.UPLOADING:
            raise ConflictError(
                detail="Only an open multipart upload can be completed; single PUTs complete themselves."
            )
        assert session.s3_upload_id is not None
        uploaded = {p.number: p for p in self.bucket.list_parts(session.key, session.s3_upload_id)}
        missing = [n for n in range(1, session.parts_count + 1) if n not in uploaded]
        wrong = [n for n, p in uploaded.items() if n <= session.parts_count and p.size != session.part_range(n)]
        if missing or wrong:
            raise ConflictError(
                detail=f"Upload is incomplete: missing parts {missing[:20]}, wrong-sized parts {wrong[:20]}."
            )
        self.bucket.complete_multipart(session.key, session.s3_upload_id, [uploaded[n] for n in sorted(uploaded)])
        # Some S3 implementations (Ceph RGW 16) drop the tag given at CreateMultipartUpload; the lifecycle
        # expiry of abandoned objects relies on it.
        self.bucket.mark(session.key, PENDING_STATE)
        return image

    def abort(self, ctx: RequestContext, image_id: str) -> None:
        """``DELETE /v2/images/{id}/upload``: cancel, clean up the bytes, back to queued."""
        image, session = self._open_session(ctx, image_id)
        image.abort_upload()
        image.touch()
        self.events.image_updated(self.repo.save(image), ctx.request_id)
        self._discard(session)

    # -- PUT /file ----------------------------------------------------------------------------------

    def check_put_file(self, content_type: str | None, content_length: int | None) -> None:
        """Refuse before reading the body: wrong media type (415) or a body the API tier cannot take (413)."""
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media != "application/octet-stream":
            raise UnsupportedMediaTypeError(media or "none", ("application/octet-stream",))
        limit = self.settings.api_body_limit
        if limit and content_length is not None and content_length > limit:
            raise RequestTooLargeError(detail=_too_large(limit))

    def start_put_file(
        self, ctx: RequestContext, image_id: str, declared_size: int | None, store_header: str | None = None
    ) -> tuple[Image, UploadSession]:
        """Open an inline session (queued -> uploading; 409 when not queued)."""
        targets = self.upload_targets(store_header)
        image = self._writable(ctx, image_id)
        self._precheck_size(image, declared_size)
        plan = UploadPlan(UploadMethod.PROXY, self.settings.multipart_part_size, 1)
        session = self._start(image, plan, declared_size, None, targets, ctx.request_id)
        return image, session

    def finish_put_file(
        self, image: Image, session: UploadSession, chunks: Iterable[bytes], request_id: str | None = None
    ) -> Image:
        """Stream to S3 while hashing and inspecting, then record the outcome before answering (as Glance)."""
        from shared.services.finalize import Outcome, RefusalKind, refusal
        from shared.streams.digest import SizeCapExceededError

        limit = self.settings.api_body_limit
        self.events.image_prepare(image, None, request_id)
        try:
            with self.finalizer.new_digest(image) as stream:

                def teed() -> Iterator[bytes]:
                    for chunk in chunks:
                        stream.feed(chunk)
                        if limit and stream.size > limit:
                            raise RequestTooLargeError(detail=_too_large(limit))
                        yield chunk

                self.bucket.upload_chunks(session.key, teed(), self.settings.multipart_part_size)
                digest = stream.finish()
        except (SizeCapExceededError, RequestTooLargeError) as exc:
            self._fail(image.id, session, str(exc), request_id)
            raise RequestTooLargeError(detail=str(exc)) from None
        except GlanceError:
            self._fail(image.id, session, "upload failed", request_id)
            raise
        except Exception as exc:
            self._fail(image.id, session, "upload failed: the store did not accept the data", request_id)
            raise StoreUnavailableError(detail=type(exc).__name__) from exc
        refused = refusal(session, digest)
        outcome = self.finalizer.record(image.id, session, refused or digest, request_id=request_id)
        if outcome is Outcome.ORPHAN:
            raise GoneError(image_id=image.id)
        if outcome is Outcome.OVER_QUOTA:
            reason = self.repo.get(image.id).extra_properties.get(UPLOAD_ERROR_PROPERTY)
            raise QuotaExceededError(reason or "Quota exceeded: the image data would pass a project limit.")
        if refused is not None and refused.kind is RefusalKind.FORMAT:
            raise InvalidImageDataError(detail=refused.message)
        if refused is not None:
            raise InvalidInputError(refused.message)
        return self.repo.get(image.id)

    def _fail(self, image_id: str, session: UploadSession, reason: str, request_id: str | None = None) -> None:
        from shared.services.finalize import Refusal, RefusalKind

        self.finalizer.record(image_id, session, Refusal(RefusalKind.FAILED, reason), request_id=request_id)

    # -- PUT /stage and import ----------------------------------------------------------------------

    def _require_method(self, method: str) -> None:
        if method not in self.settings.enabled_import_methods:
            raise InvalidInputError(f"Unknown import method name '{method}'.")

    def start_stage(self, ctx: RequestContext, image_id: str) -> tuple[Image, UploadSession]:
        """``PUT /v2/images/{id}/stage``: queued -> uploading (404 when glance-direct is not enabled)."""
        if "glance-direct" not in self.settings.enabled_import_methods:
            raise NotFoundError(kind="route", id="stage")
        image = self._writable(ctx, image_id)
        plan = UploadPlan(UploadMethod.STAGE, self.settings.multipart_part_size, 1)
        return image, self._start(image, plan, None, None, request_id=ctx.request_id)

    def finish_stage(self, image: Image, session: UploadSession, chunks: Iterable[bytes]) -> None:
        """Store the staged bytes (verified later, by the import); a failure returns the image to queued."""
        cap = self.settings.image_size_cap
        received = 0

        def counted() -> Iterator[bytes]:
            nonlocal received
            for chunk in chunks:
                received += len(chunk)
                if received > cap:
                    raise RequestTooLargeError(detail=f"the image is larger than the {cap}-byte size cap")
                yield chunk

        try:
            self.bucket.upload_chunks(session.key, counted(), self.settings.multipart_part_size)
        except BaseException as exc:
            self._unstage(image.id, session)
            if isinstance(exc, GlanceError):
                raise
            raise StoreUnavailableError(detail=type(exc).__name__) from exc
        session.size = received
        self._count_staged(image.id, session)

    def _precheck_size(self, image: Image, size: int | None) -> None:
        if self.quota is not None and size:
            self.quota.precheck(image.owner, IMAGE_SIZE_TOTAL, size)

    def _count_staged(self, image_id: str, session: UploadSession) -> None:
        """Record the staged size on the image, which counts it toward image_stage_total (docs/quotas.md); over
        the limit, the staged bytes are deleted and the image is queued again (413)."""
        for _ in range(8):
            image = self.repo.get(image_id)
            if image.upload is None or image.upload.id != session.id:
                return
            image.upload.size = session.size
            try:
                self.repo.save(image)
                return
            except ConcurrentUpdateError:
                continue
            except QuotaExceededError:
                self.bucket.delete(session.key)
                self._unstage(image_id, session)
                raise

    def _unstage(self, image_id: str, session: UploadSession) -> None:
        image = self.repo.get(image_id)
        if image.upload is not None and image.upload.id == session.id:
            image.abort_upload()
            image.touch()
            self.events.image_updated(self.repo.save(image), None)

    def import_image(
        self,
        ctx: RequestContext,
        image_id: str,
        body: Any,
        request_id: str,
        store_header: str | None = None,
        task_id: str | None = None,
    ) -> Image:
        """``POST /v2/images/{id}/import``: glance-direct, web-download or copy-image; workers do the rest."""
        method = _import_method(body)
        self._require_method(method)
        stores = self._import_stores(body, store_header)
        must_succeed = body.get("all_stores_must_succeed", True)
        if method == "copy-image":
            return self._copy_image(ctx, image_id, body, stores, must_succeed, request_id)
        targets = tuple(s for s in stores if s != self.replicator.stores.primary_id)
        image = self._writable(ctx, image_id)
        if image.status is ImageStatus.ACTIVE:
            raise ConflictError(detail="Image with status active cannot be target for import")
        job: dict[str, Any] = {"method": method, "image_id": image.id, "request_id": request_id}
        if method == "web-download":
            uri = body["method"].get("uri")
            if not isinstance(uri, str) or not uri:
                raise InvalidInputError("web-download requires 'uri' in the method.")
            from shared.net.ssrf import UrlPolicy, validate_url

            validate_url(uri, UrlPolicy.from_settings(self.settings))
            plan = UploadPlan(UploadMethod.WEB, self.settings.multipart_part_size, 1)
            session = UploadSession.new(image.id, plan, size=None, now=utcnow(), ttl=self._session_ttl())
            image.start_import(method, session)
            job["uri"] = uri
        else:
            image.start_import(method)
        assert image.upload is not None
        image.upload.targets = targets
        image.upload.all_stores_must_succeed = must_succeed
        job["session_id"] = image.upload.id
        # A legacy POST /v2/tasks import passes its own task; every other import records a new one.
        task = task_id or self._import_task(ctx, image.id, body, stores)
        job["task_id"] = task
        image.upload.task_id = task
        image.touch()
        try:
            saved = self.repo.save(image)
        except GlanceError as exc:
            if self.tasks is not None:
                self.tasks.fail(task, f"The import could not start: {exc.message}", request_id)
            raise
        self.events.image_updated(saved, request_id)
        self.import_queue.send(job)
        return saved

    def _import_task(self, ctx: RequestContext, image_id: str, body: dict[str, Any], stores: list[str]) -> str | None:
        """Record the import as an api_image_import task (Glance's input: image_id, import_req, backend)."""
        if self.tasks is None:
            return None
        from shared.services.tasks import API_IMAGE_IMPORT

        task_input = {"image_id": image_id, "import_req": body, "backend": stores}
        return self.tasks.create(ctx, API_IMAGE_IMPORT, task_input, image_id).id

    def _import_stores(self, body: dict[str, Any], store_header: str | None) -> list[str]:
        """The import's target stores, as Glance's get_stores_from_request picks them (unknown store: 409)."""
        header = (store_header or "").strip()
        if body.get("all_stores", False):
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

    def _copy_image(
        self,
        ctx: RequestContext,
        image_id: str,
        body: dict[str, Any],
        stores: list[str],
        must_succeed: bool,
        request_id: str,
    ) -> Image:
        """copy-image: queue copies of an active image to more stores (the ``copy_image`` policy: admin)."""
        from shared.services.replication import new_batch

        image, policy = self._image(ctx, image_id)
        if image.status is not ImageStatus.ACTIVE:
            raise ConflictError(detail="Image needs to be in 'active' state for copying")
        for name in ("container_format", "disk_format"):
            if not getattr(image, name):
                raise ConflictError(detail=f"'{name}' needs to be set before import")
        policy.copy_image(image)
        holding = {loc.store for loc in image.locations if loc.status is not LocationStatus.FAILED}
        if body.get("all_stores", False):
            stores = [s for s in stores if s not in holding]
            if not stores:
                return image
        for store in stores:
            if store in holding:
                raise InvalidInputError(f"Image is already present at store '{store}'")
        # The copy batch is the task's id, so store_sync can finish the task when the batch settles.
        task = self._import_task(ctx, image.id, body, stores)
        image.plan_copies(stores, task or new_batch(), must_succeed=must_succeed)
        image.touch()
        try:
            self.events.image_updated(self.repo.save(image), request_id)
        except GlanceError as exc:
            if self.tasks is not None:
                self.tasks.fail(task, f"The copy could not start: {exc.message}", request_id)
            raise
        if self.tasks is not None:
            self.tasks.processing(task, request_id)
        self.replicator.dispatch(image, request_id)
        return image

    # -- downloads ----------------------------------------------------------------------------------

    def download(
        self,
        ctx: RequestContext,
        image_id: str,
        range_header: str | None,
        content_range: str | None,
        prefer: str | None = None,
    ) -> Download:
        """``GET /v2/images/{id}/file[?prefer=s1,s2]``: nothing (204), a redirect, or a (ranged) stream from the
        first preferred store holding the image (else the highest-weighted one)."""
        image, policy = self._image(ctx, image_id)
        policy.download_image(image)
        stores = self.replicator.stores
        wanted = [p.strip() for p in (prefer or "").split(",") if p.strip()]
        order = stores.by_preference(image.stores, wanted)
        if image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED) or not order:
            return Download(image)
        location = image.location(order[0])
        assert location is not None
        byte_range = _byte_range(range_header, content_range)
        if location.store != stores.primary_id:
            return self._metered(ctx, self._download_from(image, location.store, location.url, byte_range))
        key = location.url.split("/", 3)[3]
        if self.settings.data_delivery == "redirect":
            url = self.bucket.presign_get(key, self.settings.presign_ttl_seconds)
            # S3 serves the bytes; what is counted is the image size, when the URL is issued (docs/notifications.md).
            size = image.size or 0
            self.events.image_sent(image, size, size, ctx.project_id, ctx.user_id, ctx.request_id)
            return Download(image, redirect=url)
        try:
            read = self.bucket.read(key, byte_range)
        except RangeNotSatisfiableError:
            raise InvalidRangeError(detail=byte_range or "") from None
        chunks = self._counted(ctx, image, read.chunks, read.length)
        return Download(image, chunks=chunks, length=read.length, content_range=read.content_range)

    def _metered(self, ctx: RequestContext, download: Download) -> Download:
        """image.send for a download from another store: at redirect time, or when its stream ends."""
        size = download.image.size or 0
        if download.redirect is not None:
            self.events.image_sent(download.image, size, size, ctx.project_id, ctx.user_id, ctx.request_id)
        elif download.chunks is not None:
            chunks = self._counted(ctx, download.image, download.chunks, download.length)
            return dataclasses.replace(download, chunks=chunks)
        return download

    def _counted(self, ctx: RequestContext, image: Image, chunks: Iterator[bytes], expected: int) -> Iterator[bytes]:
        """Yield ``chunks`` and send image.send with the bytes that actually went out (Glance's metering hook)."""
        sent = 0
        try:
            for chunk in chunks:
                yield chunk
                sent += len(chunk)
        finally:
            self.events.image_sent(image, sent, expected, ctx.project_id, ctx.user_id, ctx.request_id)

    def _download_from(self, image: Image, store: str, url: str, byte_range: str | None) -> Download:
        """Stream a copy held by another store through the API (its driver reads it)."""
        from shared.stores.base import StoreError, StoreNotFoundError, StoreRangeError

        driver = self.replicator.stores.driver(store)
        if self.settings.data_delivery == "redirect" and driver.capabilities.presigned_gets:
            # as for the primary bucket: the client follows with its Range header, which S3 honours
            return Download(image, redirect=driver.presign_get(url, self.settings.presign_ttl_seconds))
        try:
            if byte_range is None:
                read = driver.get(url)  # one request; only a range needs the size first
            else:
                offset, length = _offset_length(byte_range, driver.get_size(url))
                read = driver.get(url, offset, length)
        except StoreRangeError:
            raise InvalidRangeError(detail=byte_range or "") from None
        except StoreNotFoundError:
            raise NotFoundError(kind="image data in store", id=store) from None
        except StoreError as exc:
            raise StoreUnavailableError(detail=f"store {store}: {type(exc).__name__}") from exc
        content = None
        if byte_range is not None:
            content = f"bytes {read.offset}-{read.offset + read.length - 1}/{read.total_size}"
        return Download(image, chunks=read.chunks, length=read.length, content_range=content)


def _import_method(body: Any) -> str:
    """The method name of an import body, validated as Glance does (400 for a malformed body)."""
    if not isinstance(body, dict) or not isinstance(body.get("method"), dict):
        raise InvalidInputError("Import request requires a 'method' field.")
    name = body["method"].get("name")
    if not isinstance(name, str):
        raise InvalidInputError("Import request requires a 'name' field.")
    for flag in ("all_stores_must_succeed", "all_stores"):
        if flag in body and not isinstance(body[flag], bool):
            raise InvalidInputError(f"'{flag}' must be boolean value only")
    return name


def _offset_length(byte_range: str, total: int) -> tuple[int, int]:
    """An HTTP byte range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) as offset and length within ``total``."""
    match = _RANGE.match(byte_range)
    assert match is not None
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = min(int(last), total)
        if suffix == 0:
            raise InvalidRangeError(detail=byte_range)
        return total - suffix, suffix
    start = int(first)
    if start >= total:
        raise InvalidRangeError(detail=byte_range)
    end = min(int(last), total - 1) if last else total - 1
    if end < start:
        raise InvalidRangeError(detail=byte_range)
    return start, end - start + 1


def _too_large(limit: int) -> str:
    return (
        f"Request body larger than the {limit} bytes the API accepts. Upload large images directly to storage: "
        "POST /v2/images/{id}/upload opens a presigned (multipart, resumable) upload; see docs/uploads.md."
    )


def _byte_range(range_header: str | None, content_range: str | None) -> str | None:
    """One HTTP range as S3 takes it; multiple ranges are refused (400) as in Glance."""
    if range_header:
        value = range_header.strip()
        if "," in value or not _RANGE.match(value) or value == "bytes=-":
            raise InvalidInputError(f"Invalid or unsupported Range header: {range_header}")
        return value
    if content_range:
        match = _CONTENT_RANGE.match(content_range.strip())
        if not match:
            raise InvalidInputError(f"Invalid Content-Range header: {content_range}")
        return f"bytes={match.group(1)}-{match.group(2)}"
    return None
