"""The only table from domain errors to HTTP status codes, and Glance's error body."""

from __future__ import annotations

from http import HTTPStatus

from shared.bootstrap import AuthNotImplementedError
from shared.domain import errors as e

# Most specific class first; the first isinstance match wins.
STATUS_BY_ERROR: tuple[tuple[type[e.GlanceError], HTTPStatus], ...] = (
    (AuthNotImplementedError, HTTPStatus.NOT_IMPLEMENTED),
    (e.InvalidInputError, HTTPStatus.BAD_REQUEST),
    (e.ForbiddenError, HTTPStatus.FORBIDDEN),
    (e.NotFoundError, HTTPStatus.NOT_FOUND),
    (e.ConflictError, HTTPStatus.CONFLICT),
    (e.LimitExceededError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (e.UnsupportedMediaTypeError, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
)


def status_for(error: e.GlanceError) -> HTTPStatus:
    """HTTP status of a domain error."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(error, cls):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def error_body(status: HTTPStatus, message: str) -> dict[str, str]:
    """webob's JSON error shape, which Glance returns when the client accepts JSON."""
    return {"message": message, "code": f"{status.value} {status.phrase}", "title": status.phrase}
