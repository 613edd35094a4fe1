"""The domain controller: one class per resource; each call runs policy, repository, domain, save in order."""

from __future__ import annotations

from functions.api.wire import is_uuid
from shared.config import Settings
from shared.data.base import ImageRepository
from shared.domain.context import RequestContext
from shared.domain.errors import NotFoundError
from shared.domain.image import Image
from shared.domain.listing import membership_of
from shared.policy import ImagePolicy


def visible_image(
    repo: ImageRepository, settings: Settings, ctx: RequestContext, image_id: str
) -> tuple[Image, ImagePolicy]:
    """The image ``ctx`` asks for and the caller's policy; 404 for a malformed id or an image it may not see."""
    policy = ImagePolicy.for_settings(ctx, settings)
    if not is_uuid(image_id):
        raise NotFoundError(kind="image", id=image_id)
    image = repo.get(image_id)
    policy.get_image(image, membership_of(ctx, image))
    return image, policy
