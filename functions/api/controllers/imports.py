"""Interoperable image import: ``POST /v2/images/{id}/import`` (glance-direct, web-download, copy-image)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.api.controllers import visible_image
from shared.services.copies import Copies, check_copyable
from shared.services.imports import Imports, read_import_request

if TYPE_CHECKING:
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.policy import Policies
    from shared.services.images import ImageService


class ImportsController:
    """Use cases of the import route: the checks of the body and the stores come first, then the image's."""

    def __init__(self, images: ImageService, policies: Policies, imports: Imports, copies: Copies) -> None:
        self.images = images
        self.policies = policies
        self.imports = imports
        self.copies = copies

    def start(self, ctx: RequestContext, image_id: str, body: Any, store_header: str | None = None) -> Image:
        """Begin the import the body names; the workers finish it (202)."""
        request = read_import_request(body, store_header)
        self.imports.require_method(request.method)
        stores = self.imports.stores(request)
        policy = self.policies.for_context(ctx)
        image = visible_image(self.images, policy, image_id)
        if request.method == "copy-image":
            check_copyable(image)
            policy.copy_image(image)
            return self.copies.start(ctx, image, request, stores)
        policy.modify_image(image, "upload image data")
        return self.imports.start(ctx, image, request, stores)
