"""Identities and a plain-HTTP helper shared by the API tests.

The local stack runs in the development ``trusted-headers`` auth mode, so an identity is three headers: the
ones Keystone's auth_token middleware would set after validating a token.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import openstack.connection
import requests

PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
TIMEOUT_S = 10

# Fresh projects per run: moto keeps state per process, so another suite in the same run may have left images.
PROJECT_A = uuid.uuid4().hex
PROJECT_B = uuid.uuid4().hex
ADMIN_PROJECT = uuid.uuid4().hex


@dataclass(frozen=True)
class Persona:
    """A caller: a project, a user and Keystone roles."""

    name: str
    project_id: str
    roles: tuple[str, ...]

    @property
    def user_id(self) -> str:
        """A user id derived from the persona, stable for the run."""
        return f"user-{self.name}-{self.project_id[:8]}"

    @property
    def headers(self) -> dict[str, str]:
        """The identity headers of this persona."""
        return {"X-Project-Id": self.project_id, "X-User-Id": self.user_id, "X-Roles": ",".join(self.roles)}


# Roles as Keystone hands them over after expanding implied roles (admin > member > reader).
A_MEMBER = Persona("a-member", PROJECT_A, ("member", "reader"))
A_READER = Persona("a-reader", PROJECT_A, ("reader",))
B_MEMBER = Persona("b-member", PROJECT_B, ("member", "reader"))
B_READER = Persona("b-reader", PROJECT_B, ("reader",))
ADMIN = Persona("admin", ADMIN_PROJECT, ("admin", "member", "reader"))
# Project A's member calling through a service (Nova, Cinder): the user's token plus a service token with the
# service role, as keystonemiddleware reports them (X-Service-Roles).
NOVA_FOR_A = {"X-Service-Roles": "service"}

# The conftest's ``sdk`` and ``glance`` fixtures: one client per persona (glanceclient has no type hints).
SdkFactory = Callable[[Persona], openstack.connection.Connection]
GlanceFactory = Callable[[Persona], Any]


class GlanceHttp:
    """Raw requests against the image API as one persona or another; JSON is asked for unless told otherwise."""

    def __init__(self, endpoint: str, session: requests.Session) -> None:
        self.endpoint = endpoint
        self.session = session

    def url(self, path: str) -> str:
        """Absolute URL of an API path."""
        return f"{self.endpoint}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        persona: Persona = ADMIN,
        headers: Mapping[str, str | None] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request as ``persona``; a header given as None is not sent at all (requests drops it)."""
        merged = {"Accept": "application/json", **persona.headers, **(headers or {})}
        return self.session.request(method, self.url(path), headers=merged, timeout=TIMEOUT_S, **kwargs)

    def create(self, persona: Persona = ADMIN, **body: Any) -> dict[str, Any]:
        """``POST /v2/images``; fails the test unless 201."""
        response = self.request("POST", "/v2/images", persona=persona, json=body)
        assert response.status_code == 201, response.text
        image: dict[str, Any] = response.json()
        return image

    def show(self, image_id: str, persona: Persona = ADMIN) -> requests.Response:
        """``GET /v2/images/{id}``."""
        return self.request("GET", f"/v2/images/{image_id}", persona=persona)

    def patch(
        self, image_id: str, changes: list[dict[str, Any]], *, persona: Persona = ADMIN, media_type: str = PATCH_V21
    ) -> requests.Response:
        """``PATCH /v2/images/{id}`` with one of Glance's JSON-patch media types."""
        return self.request(
            "PATCH",
            f"/v2/images/{image_id}",
            persona=persona,
            headers={"Content-Type": media_type},
            data=json.dumps(changes),
        )

    def list_ids(self, persona: Persona = ADMIN, **params: Any) -> list[str]:
        """Ids of one page of ``GET /v2/images``."""
        response = self.request("GET", "/v2/images", persona=persona, params=params)
        assert response.status_code == 200, response.text
        return [image["id"] for image in response.json()["images"]]

    def purge(self, image_id: str) -> None:
        """Delete an image as admin, lifting ``protected`` first; an image already gone is fine."""
        shown = self.show(image_id)
        if shown.status_code == 404:
            return
        if shown.json().get("protected"):
            self.patch(image_id, [{"op": "replace", "path": "/protected", "value": False}])
        response = self.request("DELETE", f"/v2/images/{image_id}")
        assert response.status_code in (204, 404), response.text
