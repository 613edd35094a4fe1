"""The domain's error tree.

Every error the domain, the repositories and the controllers raise derives from ``GlanceError``.
The API maps each class (never a message) to an HTTP status in ``functions/api/errors.py``::

    GlanceError
    ├── NotAuthenticatedError      no valid token: missing, malformed, unknown, expired or revoked (401)
    ├── InvalidInputError          bad request data (400)
    │   ├── InvalidSortKeyError
    │   ├── InvalidFilterError
    │   └── InvalidMarkerError
    ├── ForbiddenError             the caller may not do this (403)
    │   ├── ReadOnlyPropertyError
    │   ├── ReservedPropertyError
    │   ├── ProtectedImageDeleteError
    │   ├── ImmutablePropertyError
    │   └── ProtectedMetadefError   a protected metadata definition namespace (or its content) cannot be deleted
    ├── NotFoundError              absent, or invisible to the caller (404)
    ├── ConflictError              the request clashes with the current state (409)
    │   ├── DuplicateError
    │   ├── InvalidStatusTransitionError
    │   ├── ConcurrentUpdateError
    │   ├── UploadSupersededError  the session being written was aborted or swept meanwhile
    │   ├── PropertyConflictError
    │   └── MetadefDuplicateError   a metadata definition with this name exists
    ├── GoneError                  the image went away during the request (410)
    ├── LimitExceededError         a per-image limit would be exceeded (413)
    │   └── RequestTooLargeError   the body or image is larger than allowed
    ├── UnsupportedMediaTypeError  the body's media type is not accepted (415)
    ├── InvalidImageDataError      the bytes failed format or safety checks (415, as Glance's InvalidImageData)
    ├── InvalidRangeError          the byte range lies outside the data (416)
    ├── StoreUnavailableError      the data store failed (503)
    └── IdentityUnavailableError   the identity service could not check a token (503)
"""

from __future__ import annotations

from typing import ClassVar


class GlanceError(Exception):
    """Base of every error this service raises on purpose."""

    template: ClassVar[str] = "An unknown error occurred."

    def __init__(self, message: str | None = None, **fields: object) -> None:
        self.fields = fields
        self.message = message if message is not None else self.template.format(**fields)
        super().__init__(self.message)


class NotAuthenticatedError(GlanceError):
    """The request carries no token the identity service accepts.

    ``uri`` is where a client gets a token (the ``WWW-Authenticate`` challenge); ``reason`` says why, for logs
    only: the caller always gets the same message, as from keystonemiddleware.
    """

    template = "The request you have made requires authentication."

    def __init__(self, uri: str | None = None, reason: str = "invalid") -> None:
        super().__init__()
        self.uri = uri
        self.reason = reason


class InvalidInputError(GlanceError):
    """The request carries a value the API does not accept."""

    template = "Invalid input: {detail}"


class InvalidSortKeyError(InvalidInputError):
    """A sort key or direction is not one of the supported ones."""

    template = "Invalid sort key: {key}. It must be one of the following: {available}."


class InvalidFilterError(InvalidInputError):
    """A list filter has a bad operator or value."""

    template = "Invalid filter value {value!r} for {name}: {detail}"


class InvalidMarkerError(InvalidInputError):
    """The paging marker is not an image the caller can see."""

    template = "Marker {marker} could not be found."


class ForbiddenError(GlanceError):
    """The caller is not allowed to do this."""

    template = "Forbidden: {detail}"


class ReadOnlyPropertyError(ForbiddenError):
    """The property is computed by the service."""

    template = "Attribute '{name}' is read-only."


class ReservedPropertyError(ForbiddenError):
    """The property name is reserved for the service."""

    template = "Attribute '{name}' is reserved."


class ProtectedImageDeleteError(ForbiddenError):
    """A protected image cannot be deleted."""

    template = "Image {image_id} is protected and cannot be deleted."


class ImmutablePropertyError(ForbiddenError):
    """The property cannot change in the image's current status."""

    template = "Attribute {name} can be only replaced for a queued image."


class ProtectedMetadefError(ForbiddenError):
    """A protected metadata definition namespace, or something in one, cannot be deleted."""

    template = "Metadata definition {kind} {name} is protected and cannot be deleted."


class NotFoundError(GlanceError):
    """The resource does not exist or the caller cannot see it."""

    template = "No {kind} found with ID {id}"


class ConflictError(GlanceError):
    """The request conflicts with the resource's current state."""

    template = "Conflict: {detail}"


class DuplicateError(ConflictError):
    """An image with this id exists, or existed (ids are never reused)."""

    template = "An image with identifier {id} already exists"


class MetadefDuplicateError(ConflictError):
    """A metadata definition (namespace, object, property, tag, resource type or association) already exists."""

    template = "A metadata definition {kind} with name={name} already exists{where}."


class InvalidStatusTransitionError(ConflictError):
    """The status change is not in the transition table."""

    template = "Image status transition from {current} to {target} is not allowed"


class ConcurrentUpdateError(ConflictError):
    """Another writer changed the image since it was read."""

    template = "Image {image_id} was changed by another request; reload it and retry."


class UploadSupersededError(ConflictError):
    """The upload session being written was aborted, swept or replaced meanwhile: the writer stops."""

    template = "The upload of image {image_id} was aborted or timed out while its data was being written."


class PropertyConflictError(ConflictError):
    """A JSON-patch operation names a property in the wrong state."""

    template = "Property {name} {detail}."


class LimitExceededError(GlanceError):
    """A per-image limit (properties, tags) would be exceeded."""

    template = "Maximum number of {what} exceeded: {limit}"


class UnsupportedMediaTypeError(GlanceError):
    """The request's Content-Type is not one this call accepts."""

    template = "Unsupported media type {media_type}; expected one of: {allowed}"

    def __init__(self, media_type: str, allowed: tuple[str, ...]) -> None:
        super().__init__(media_type=media_type, allowed=", ".join(allowed))
        self.allowed = allowed


class GoneError(GlanceError):
    """The image was deleted while its data was being uploaded."""

    template = "Image {image_id} was deleted during the upload."


class RequestTooLargeError(LimitExceededError):
    """The request body or the image is larger than allowed."""

    template = "{detail}"


class InvalidImageDataError(GlanceError):
    """Uploaded bytes failed format or safety checks; the image is queued again with the reason."""

    template = "Image data refused: {detail}"


class InvalidRangeError(GlanceError):
    """The requested byte range cannot be served."""

    template = "Requested range not satisfiable: {detail}"


class StoreUnavailableError(GlanceError):
    """The store failed while handling image data."""

    template = "Error in store while handling image data: {detail}"


class IdentityUnavailableError(GlanceError):
    """Keystone is unreachable, failed, or refused the service's own credentials: a token cannot be checked."""

    template = "The identity service is unavailable: {detail}"
