"""Version discovery: GET / (300) and GET /versions (200)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

# Exactly the v2 minor versions this service implements, as Glance without an image cache advertises them: the core
# image API, tags, schemas and actions, image data, interoperable import (2.6), os_hidden with /v2/info/import
# (2.7), multi-store import and discovery (2.8, 2.9), deleting one store's copy (2.10), copy-image with all_stores
# (2.11), per-image tasks (2.12), quota usage (2.13), /v2/info/stores/detail (2.15) and the service location API
# (2.17). The image cache (2.14, 2.16, 2.18) is not offered.
SUPPORTED_VERSIONS = (
    "2.17",
    "2.15",
    "2.13",
    "2.12",
    "2.11",
    "2.10",
    "2.9",
    "2.8",
    "2.7",
    "2.6",
    "2.5",
    "2.4",
    "2.3",
    "2.2",
    "2.1",
    "2.0",
)
CURRENT_VERSION = SUPPORTED_VERSIONS[0]

router = APIRouter()


def versions_document(base_url: str) -> dict[str, Any]:
    """The versions body; every version links to ``<base>/v2/``."""
    href = base_url.rstrip("/") + "/v2/"
    return {
        "versions": [
            {
                "id": f"v{v}",
                "status": "CURRENT" if v == CURRENT_VERSION else "SUPPORTED",
                "links": [{"rel": "self", "href": href}],
            }
            for v in SUPPORTED_VERSIONS
        ]
    }


def _base_url(request: Request) -> str:
    public: str | None = request.app.state.container.settings.public_endpoint
    return public or str(request.base_url)


@router.get("/", response_model=None)
def root(request: Request) -> JSONResponse:
    """Multiple choices: the versions document with 300."""
    return JSONResponse(versions_document(_base_url(request)), status_code=300)


@router.get("/versions", response_model=None)
@router.get("/versions/", response_model=None, include_in_schema=False)  # the one trailing slash Glance serves
def versions(request: Request) -> dict[str, Any]:
    """The versions document with 200."""
    return versions_document(_base_url(request))
