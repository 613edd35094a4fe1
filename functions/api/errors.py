"""The only table from domain errors to HTTP status codes, and Glance's error body."""

from __future__ import annotations

from http import HTTPStatus

from shared.domain import errors as e

# Most specific class first; the first isinstance match wins.
STATUS_BY_ERROR: tuple[tuple[type[e.GlanceError], HTTPStatus], ...] = (
    (e.NotAuthenticatedError, HTTPStatus.UNAUTHORIZED),
    (e.InvalidInputError, HTTPStatus.BAD_REQUEST),
    (e.ForbiddenError, HTTPStatus.FORBIDDEN),
    (e.NotFoundError, HTTPStatus.NOT_FOUND),
    (e.ConflictError, HTTPStatus.CONFLICT),
    (e.GoneError, HTTPStatus.GONE),
    (e.LimitExceededError, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (e.UnsupportedMediaTypeError, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (e.InvalidImageDataError, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (e.InvalidRangeError, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE),
    (e.StoreUnavailableError, HTTPStatus.SERVICE_UNAVAILABLE),
    (e.IdentityUnavailableError, HTTPStatus.SERVICE_UNAVAILABLE),
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


def unauthorized_body(message: str) -> dict[str, dict[str, int | str]]:
    """keystonemiddleware's 401 body, which Glance's clients get as JSON whatever they accept."""
    status = HTTPStatus.UNAUTHORIZED
    return {"error": {"code": status.value, "title": status.phrase, "message": message}}


def www_authenticate(uri: str | None) -> str:
    """The challenge of a 401: where to get a Keystone token (keystonemiddleware's ``www_authenticate_uri``)."""
    return f'Keystone uri="{uri}"' if uri else "Keystone"


def _quality(accept: str, media_type: str) -> float:
    """The q-value ``accept`` gives ``media_type`` (exact match beats ``type/*`` beats ``*/*``)."""
    kind = media_type.split("/", 1)[0]
    best: tuple[int, float] = (-1, 0.0)
    for part in accept.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(name.lower(), -1)
        if specificity > best[0]:
            best = (specificity, q)
    return best[1]


def wants_json(accept: str | None) -> bool:
    """Whether an error should be JSON: only when JSON is preferred to HTML, as webob decides for Glance.

    Glance's errors offer text/html first, so ``*/*`` or no Accept gets text (python-glanceclient sends ``*/*``
    and parses the text); openstacksdk and Tempest ask for ``application/json`` and get the JSON shape.
    """
    if not accept:
        return False
    return _quality(accept, "application/json") > _quality(accept, "text/html")


def error_text(status: HTTPStatus, message: str) -> str:
    """The plain-text error body."""
    return f"{status.value} {status.phrase}\n\n{message}\n"
