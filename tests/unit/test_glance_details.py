"""Small behaviours where Glance's answer is the contract: trailing slashes, an image's stores in weight order."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from functions.api.app import _ROUTERS, create_app
from functions.api.wire import image_view
from shared.config import Settings
from shared.data.memory import MemoryImageRepository
from shared.domain.image import Image
from shared.domain.location import Location, LocationStatus

_SAMPLES = {"image_id": "0b9e2a9e-3c9b-4a43-8d0e-8a1f8d0c0f01", "member_id": "project-b", "tag": "t"}
MEMBER = {"X-Project-Id": "project-a", "X-User-Id": "user-a", "X-Roles": "member,reader", "Accept": "application/json"}


@pytest.fixture
def client() -> TestClient:
    app = create_app(Settings(auth_mode="trusted-headers"), {"image_repository": MemoryImageRepository()})
    return TestClient(app, headers=MEMBER)


def _every_route_path() -> list[str]:
    """Every route's path with sample values for its parameters (the root and Glance's /versions/ left out)."""
    paths = {route.path for router in _ROUTERS for route in router.routes if isinstance(route, APIRoute)}
    return sorted(
        re.sub(r"\{(\w+)\}", lambda m: _SAMPLES.get(m.group(1), m.group(1)), path)
        for path in paths
        if not path.endswith("/") and path != "/versions"
    )


@pytest.mark.parametrize("path", _every_route_path())
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_route_with_a_trailing_slash__is_404_never_a_redirect(client: TestClient, path: str, method: str) -> None:
    response = client.request(method, path + "/", follow_redirects=False)

    assert response.status_code == 404, (method, path, response.status_code, response.headers.get("location"))


def test_images_with_a_trailing_slash__is_404_like_glance(client: TestClient) -> None:
    assert client.get("/v2/images").status_code == 200

    response = client.get("/v2/images/", follow_redirects=False)

    assert response.status_code == 404
    assert "location" not in response.headers


def test_versions_with_a_trailing_slash__is_served_like_glance(client: TestClient) -> None:
    assert client.get("/versions/").json() == client.get("/versions").json()


def _image_in(*stores: str) -> Image:
    image = Image.new(owner="project-a")
    image.locations = [Location(store, f"s://{store}/x") for store in stores]
    return image


def test_stores__are_listed_by_weight_highest_first() -> None:
    view = image_view(_image_in("slow", "s3", "fast"), store_weights={"s3": 100, "fast": 200, "slow": 50})

    assert view["stores"] == "fast,s3,slow"


def test_stores__of_equal_weight_or_unknown__keep_location_order() -> None:
    view = image_view(_image_in("b", "gone", "a", "c"), store_weights={"a": 10, "b": 10, "c": 10})

    assert view["stores"] == "b,a,c,gone"


def test_stores__leave_out_copies_not_yet_complete() -> None:
    image = _image_in("s3", "fast")
    image.locations.append(Location("copying", "", LocationStatus.PENDING))

    assert image_view(image, store_weights={"fast": 200, "copying": 300})["stores"] == "fast,s3"


def test_store_weights__come_from_the_primary_and_every_store() -> None:
    settings = Settings(
        primary_store_weight=150,
        stores={
            "slow": {"type": "file", "data_dir": "/tmp/x", "weight": 50},
            "other": {"type": "file", "data_dir": "/y"},
        },
    )

    assert settings.store_weights == {"s3": 150, "slow": 50, "other": 0}


def test_locations__are_absent_unless_show_multiple_locations() -> None:
    assert "locations" not in image_view(_image_in("s3"))


def test_locations__with_show_multiple_locations__list_complete_copies_by_weight() -> None:
    image = _image_in("s3", "fast")
    image.locations.append(Location("copying", "", LocationStatus.PENDING))

    view = image_view(image, store_weights={"s3": 100, "fast": 200}, show_locations=True)

    assert view["locations"] == [
        {"url": "s://fast/x", "metadata": {"store": "fast"}},
        {"url": "s://s3/x", "metadata": {"store": "s3"}},
    ]


def test_queued_image__with_show_multiple_locations__has_an_empty_list_over_http() -> None:
    settings = Settings(auth_mode="trusted-headers", show_multiple_locations=True)
    app = create_app(settings, {"image_repository": MemoryImageRepository()})
    with TestClient(app, headers=MEMBER) as http:
        created = http.post("/v2/images", json={"name": "q"}).json()

        assert created["locations"] == []
        assert http.get(f"/v2/images/{created['id']}").json()["locations"] == []
        assert http.get("/v2/images").json()["images"][0]["locations"] == []


def test_locations__of_a_shared_image__are_an_empty_list_for_the_member_like_glance() -> None:
    repo = MemoryImageRepository()
    settings = Settings(auth_mode="trusted-headers", show_multiple_locations=True)
    other = {**MEMBER, "X-Project-Id": "project-b", "X-User-Id": "user-b"}
    with TestClient(create_app(settings, {"image_repository": repo}), headers=MEMBER) as http:
        image = http.post("/v2/images", json={"name": "s", "visibility": "shared"}).json()
        # a copy in place without an upload: the memory repository's own dict
        repo._images[image["id"]].locations = [Location("s3", "s3://bucket/images/x")]
        assert http.post(f"/v2/images/{image['id']}/members", json={"member": "project-b"}).status_code == 200

        owner_view = http.get(f"/v2/images/{image['id']}").json()
        member_view = http.get(f"/v2/images/{image['id']}", headers=other).json()

    assert owner_view["locations"] == [{"url": "s3://bucket/images/x", "metadata": {"store": "s3"}}]
    assert member_view["locations"] == []
