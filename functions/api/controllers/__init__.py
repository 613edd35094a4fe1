"""The domain controller: one class per resource. Each call authorises (policy, as Glance's API layer does), calls
one service (or a domain method and the catalogue's commit), and returns the domain objects the router renders.
Controllers never reach an adapter: repositories, buckets, queues and stores sit behind the services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.api.wire import is_uuid
from shared.domain.errors import InvalidInputError, NotFoundError
from shared.domain.listing import membership_of

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.domain.image import Image
    from shared.policy import ImagePolicy
    from shared.services.images import ImageService


def writable_image(images: ImageService, policy: ImagePolicy, image_id: str) -> Image:
    """The image whose data the caller wants to write (``upload_image``), loaded for a change."""
    image = visible_image(images, policy, image_id)
    policy.modify_image(image, "upload image data")
    return image


def visible_image(images: ImageService, policy: ImagePolicy, image_id: str) -> Image:
    """The image the caller asks for, loaded for a change; 404 for a malformed id or an image it may not see."""
    if not is_uuid(image_id):
        raise NotFoundError(kind="image", id=image_id)
    image = images.get(image_id)
    policy.get_image(image, membership_of(policy.ctx, image))
    return image


def page_limit(raw: str | None, settings: Settings) -> int:
    """The ``limit`` parameter of a list (Glance's default and maximum; 400 for a malformed one)."""
    if raw is None:
        return settings.limit_param_default
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidInputError("limit param must be an integer") from None
    if limit < 0:
        raise InvalidInputError("limit param must be positive")
    return min(limit, settings.api_limit_max)
