"""Image bytes through the service: Glance's PUT /file and GET /file, and PUT /stage for glance-direct imports.

The services take the body as an iterator of byte chunks and return downloads as one, so the router only pipes
the HTTP body in and the chunks out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.api.controllers import visible_image, writable_image

if TYPE_CHECKING:
    from collections.abc import Iterable

    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.domain.upload import UploadSession
    from shared.policy import Policies
    from shared.services.downloads import Download, Downloads
    from shared.services.images import ImageService
    from shared.services.staging import Staging
    from shared.services.streamed_uploads import StreamedUploads
    from shared.services.upload_sessions import UploadSessions


class ImageDataController:
    """Use cases of ``/v2/images/{id}/file`` and ``/v2/images/{id}/stage``."""

    def __init__(
        self,
        images: ImageService,
        policies: Policies,
        sessions: UploadSessions,
        streamed: StreamedUploads,
        staging: Staging,
        downloads: Downloads,
    ) -> None:
        self.images = images
        self.policies = policies
        self.sessions = sessions
        self.streamed = streamed
        self.staging = staging
        self.downloads = downloads

    def _writable(self, ctx: RequestContext, image_id: str) -> Image:
        return writable_image(self.images, self.policies.for_context(ctx), image_id)

    def check_body(self, content_type: str | None, content_length: int | None) -> None:
        """Refuse a body before reading it: wrong media type (415), larger than this tier takes (413)."""
        self.streamed.check(content_type, content_length)

    def start_upload(
        self, ctx: RequestContext, image_id: str, declared_size: int | None, store_header: str | None = None
    ) -> tuple[Image, UploadSession]:
        """``PUT /file`` before its body: queued -> uploading (409 when not queued)."""
        targets = self.sessions.targets(store_header)
        image = self._writable(ctx, image_id)
        return image, self.streamed.start(image, declared_size, targets, ctx.request_id)

    def finish_upload(
        self, image: Image, session: UploadSession, chunks: Iterable[bytes], request_id: str | None = None
    ) -> Image:
        """``PUT /file``'s body: verified and recorded before the response, as Glance does."""
        return self.streamed.receive(image, session, chunks, request_id)

    def start_stage(self, ctx: RequestContext, image_id: str) -> tuple[Image, UploadSession]:
        """``PUT /stage`` before its body: queued -> uploading (404 when glance-direct is not enabled)."""
        self.staging.check_enabled()
        image = self._writable(ctx, image_id)
        return image, self.staging.start(image, ctx.request_id)

    def finish_stage(self, image: Image, session: UploadSession, chunks: Iterable[bytes]) -> None:
        """``PUT /stage``'s body: stored, verified later by the import."""
        self.staging.receive(image, session, chunks)

    def download(
        self,
        ctx: RequestContext,
        image_id: str,
        range_header: str | None,
        content_range: str | None,
        prefer: str | None = None,
    ) -> Download:
        """``GET /file[?prefer=s1,s2]``: nothing (204), a redirect, or a (ranged) stream."""
        policy = self.policies.for_context(ctx)
        image = visible_image(self.images, policy, image_id)
        policy.download_image(image)
        return self.downloads.open(ctx, image, range_header, content_range, prefer)
