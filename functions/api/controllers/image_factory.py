"""New images from a create body (Glance's ImageFactory): schema, read-only and reserved names, policy, property
protections. ``POST /v2/images`` and the legacy ``import`` task both make their image here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.api.wire import validate_image_fields
from shared.domain.errors import ForbiddenError, InvalidInputError, ReservedPropertyError
from shared.domain.image import Image, ImageLimits
from shared.domain.properties import WRITABLE_BASE_PROPERTIES, check_extra_property_name

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.policy import ImagePolicy
    from shared.policy.property_protections import PropertyProtections

# Create-body keys that are accepted by the schema but never writable (Glance's _disallowed_properties).
_DISALLOWED_ON_CREATE = ("direct_url", "self", "file", "schema", "stores")


class ImageFactory:
    """Builds (does not store) the image a create body describes, for one caller's policy."""

    def __init__(self, settings: Settings, protections: PropertyProtections) -> None:
        self.settings = settings
        self.limits = ImageLimits(settings.image_property_quota, settings.image_tag_quota)
        self.protections = protections

    def new(self, policy: ImagePolicy, body: Any) -> Image:
        """A queued image of the caller's project (or the ``owner`` an admin names).

        Raises:
            InvalidInputError: not an object, or a value the image schema refuses (400).
            ForbiddenError: a read-only or reserved property, or the policy refuses (403).
            LimitExceededError: too many properties or tags (413).
        """
        if not isinstance(body, dict):
            raise InvalidInputError("Request body must be a JSON object.")
        for key in _DISALLOWED_ON_CREATE:
            if key in body:
                raise ForbiddenError(detail=f"Attribute '{key}' is read-only.")
        validate_image_fields(body, self.settings)
        fields = dict(body)
        image_id = fields.pop("id", None)
        tags = fields.pop("tags", [])
        base = {k: fields.pop(k) for k in list(fields) if k in WRITABLE_BASE_PROPERTIES}
        for key in fields:
            check_extra_property_name(key)
            if key == "locations":
                raise ReservedPropertyError(name=key)
        owner = base.pop("owner", None) or policy.ctx.owner
        policy.add_image(owner, base.get("visibility"))
        for key in fields:
            if not self.protections.check(policy.ctx, "create", key):
                raise ReservedPropertyError(name=key)
        return Image.new(owner=owner, image_id=image_id, tags=tags, extra_properties=fields, limits=self.limits, **base)
