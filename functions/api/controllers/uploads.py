"""Presigned direct uploads (our extension): ``/v2/images/{id}/upload`` and its parts (docs/uploads.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from functions.api.controllers import writable_image
from shared.domain.errors import InvalidInputError
from shared.services.uploads import MAX_PART_URLS, OpenedUpload, PartUrl, PresignedUploads, UploadStatus

if TYPE_CHECKING:
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.policy import Policies
    from shared.services.images import ImageService
    from shared.services.upload_sessions import UploadSessions

_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


class UploadsController:
    """Use cases of the presigned upload routes."""

    def __init__(
        self, images: ImageService, policies: Policies, sessions: UploadSessions, uploads: PresignedUploads
    ) -> None:
        self.images = images
        self.policies = policies
        self.sessions = sessions
        self.uploads = uploads

    def _writable(self, ctx: RequestContext, image_id: str) -> Image:
        return writable_image(self.images, self.policies.for_context(ctx), image_id)

    def open(self, ctx: RequestContext, image_id: str, body: Any, store_header: str | None = None) -> OpenedUpload:
        """``POST /v2/images/{id}/upload``: a session for ``size`` bytes and the requests that send them."""
        targets = self.sessions.targets(store_header)
        if not isinstance(body, dict):
            raise InvalidInputError("Request body must be a JSON object.")
        size = body.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInputError("'size' (bytes, a non-negative integer) is required.")
        checksum = body.get("checksum")
        if checksum is not None and not (isinstance(checksum, str) and _MD5.match(checksum)):
            raise InvalidInputError("'checksum' must be an MD5 hex digest.")
        method = body.get("method")
        if method not in (None, "single", "multipart"):
            raise InvalidInputError("'method' must be 'single' or 'multipart'.")
        request = self.uploads.plan(size, checksum, None if method is None else method == "multipart")
        image = self._writable(ctx, image_id)
        return self.uploads.open(image, request, targets, ctx.request_id)

    def status(self, ctx: RequestContext, image_id: str) -> UploadStatus:
        """``GET /v2/images/{id}/upload``: the session and the parts already received (to resume)."""
        return self.uploads.status(self._writable(ctx, image_id))

    def part_urls(self, ctx: RequestContext, image_id: str, body: Any) -> list[PartUrl]:
        """``POST /v2/images/{id}/upload/parts``: fresh URLs for the given part numbers."""
        numbers = body.get("part_numbers") if isinstance(body, dict) else None
        if not isinstance(numbers, list) or not numbers or not all(type(n) is int for n in numbers):
            raise InvalidInputError("'part_numbers' must be a non-empty list of integers.")
        if len(numbers) > MAX_PART_URLS:
            raise InvalidInputError(f"At most {MAX_PART_URLS} part URLs per request.")
        return self.uploads.part_urls(self._writable(ctx, image_id), numbers)

    def complete(self, ctx: RequestContext, image_id: str) -> Image:
        """``POST /v2/images/{id}/upload/complete``: assemble the parts; finalisation follows the bucket's event."""
        return self.uploads.complete(self._writable(ctx, image_id))

    def abort(self, ctx: RequestContext, image_id: str) -> None:
        """``DELETE /v2/images/{id}/upload``: cancel, delete the bytes, back to queued."""
        self.uploads.abort(self._writable(ctx, image_id), ctx.request_id)
