"""Error bodies: JSON only for clients that prefer it, as webob decides for Glance."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from functions.api.errors import error_body, error_text, status_for, wants_json
from shared.domain import errors as e


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("text/html", False),
        ("application/json", True),
        ("application/json, */*", False),
        ("application/*", True),
        ("text/html;q=0.5, application/json", True),
        ("application/json;q=0.5, text/html", False),
        ("application/json;q=bogus", False),
    ],
)
def test_wants_json__follows_accept_preferences_with_html_winning_ties(accept: str | None, json_wanted: bool) -> None:
    assert wants_json(accept) is json_wanted


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (e.InvalidMarkerError(marker="x"), 400),
        (e.ReservedPropertyError(name="os_glance_x"), 403),
        (e.ProtectedImageDeleteError(image_id="x"), 403),
        (e.NotFoundError(kind="image", id="x"), 404),
        (e.DuplicateError(id="x"), 409),
        (e.ConcurrentUpdateError(image_id="x"), 409),
        (e.LimitExceededError(what="image tags", limit=128), 413),
        (e.UnsupportedMediaTypeError("text/plain", ("a",)), 415),
        (e.NotAuthenticatedError(uri="https://keystone.example/v3"), 401),
        (e.IdentityUnavailableError(detail="down"), 503),
    ],
)
def test_status_for__maps_each_branch_of_the_error_tree(error: e.GlanceError, status: int) -> None:
    assert status_for(error) == status


def test_error_shapes__carry_status_line_and_message() -> None:
    assert error_body(HTTPStatus.NOT_FOUND, "gone") == {
        "message": "gone",
        "code": "404 Not Found",
        "title": "Not Found",
    }
    assert error_text(HTTPStatus.CONFLICT, "busy") == "409 Conflict\n\nbusy\n"
