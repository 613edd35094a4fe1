"""The FastAPI app end to end over an in-memory repository: Glance v2's HTTP contract for images and tags."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2
import pytest
from starlette.testclient import TestClient

from functions.api.app import create_app
from functions.api.patch import PATCH_V20, PATCH_V21
from shared.config import Settings
from shared.data.memory import MemoryImageRepository
from shared.domain.status import ImageStatus

MEMBER_A = {"X-Project-Id": "project-a", "X-User-Id": "user-a", "X-Roles": "member,reader"}
MEMBER_B = {"X-Project-Id": "project-b", "X-User-Id": "user-b", "X-Roles": "member,reader"}
READER_A = {"X-Project-Id": "project-a", "X-User-Id": "user-r", "X-Roles": "reader"}
ADMIN = {"X-Project-Id": "project-adm", "X-User-Id": "user-adm", "X-Roles": "admin"}
REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

Client = TestClient
MakeClient = Callable[..., TestClient]


@pytest.fixture
def repo() -> MemoryImageRepository:
    return MemoryImageRepository()


@pytest.fixture
def make_client(repo: MemoryImageRepository) -> Iterator[MakeClient]:
    """Builds a client over ``repo`` with extra Settings; every client is closed after the test."""
    made: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        app = create_app(Settings(auth_mode="trusted-headers", **settings), {"image_repository": repo})
        client = TestClient(app, headers={"Accept": "application/json"})
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


def _create(client: TestClient, headers: dict[str, str] | None = None, /, **body: Any) -> dict[str, Any]:
    response = client.post("/v2/images", json=body, headers=headers or MEMBER_A)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _show(client: TestClient, image_id: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    return client.get(f"/v2/images/{image_id}", headers=headers or MEMBER_A)


def _patch(
    client: TestClient,
    image_id: str,
    ops: Any,
    headers: dict[str, str] | None = None,
    media: str = PATCH_V21,
) -> httpx2.Response:
    return client.patch(
        f"/v2/images/{image_id}",
        content=json.dumps(ops),
        headers={**(headers or MEMBER_A), "Content-Type": media},
    )


def _activate(repo: MemoryImageRepository, image_id: str) -> None:
    """Move a queued image to active in the repository, as a finished upload would."""
    image = repo.get(image_id)
    image.disk_format = image.disk_format or "raw"
    image.container_format = image.container_format or "bare"
    image.transition(ImageStatus.ACTIVE)
    repo.save(image)


# -- versions and schemas -------------------------------------------------------------------------


def test_get_root__returns_300_with_the_versions_document(client: TestClient) -> None:
    response = client.get("/")

    assert response.status_code == 300
    versions = response.json()["versions"]
    assert {v["id"] for v in versions} >= {"v2.0", "v2.1"}
    assert [v["status"] for v in versions].count("CURRENT") == 1
    assert all(v["links"] == [{"rel": "self", "href": "http://testserver/v2/"}] for v in versions)


def test_get_versions__returns_200_with_the_same_body_as_root(client: TestClient) -> None:
    response = client.get("/versions")

    assert response.status_code == 200
    assert response.json() == client.get("/").json()


def test_versions__with_public_endpoint__link_to_it(make_client: MakeClient) -> None:
    client = make_client(public_endpoint="https://images.example.com")

    versions = client.get("/versions").json()["versions"]

    assert {link["href"] for v in versions for link in v["links"]} == {"https://images.example.com/v2/"}


@pytest.mark.parametrize("name", ["image", "images", "member", "members", "task", "tasks"])
def test_get_schema__for_each_known_name__returns_200(client: TestClient, name: str) -> None:
    response = client.get(f"/v2/schemas/{name}", headers=MEMBER_A)

    assert response.status_code == 200
    assert response.json()["name"] == name


def test_image_schema__is_permissive_with_string_extra_properties(client: TestClient) -> None:
    schema = client.get("/v2/schemas/image").json()

    assert schema["additionalProperties"] == {"type": "string"}
    assert "qcow2" in schema["properties"]["disk_format"]["enum"]


def test_get_schema__unknown__returns_404(client: TestClient) -> None:
    assert client.get("/v2/schemas/imagez").status_code == 404


# -- cross-cutting ---------------------------------------------------------------------------------


def test_every_response__carries_a_distinct_openstack_request_id(client: TestClient) -> None:
    image = _create(client)
    responses = [
        client.get("/"),
        client.get("/versions"),
        client.get("/v2/schemas/image"),
        client.get("/v2/images", headers=MEMBER_A),
        _show(client, image["id"]),
        _show(client, str(uuid.uuid4())),
        client.get("/v2/nothing-here"),
        client.put("/v2/images"),
        client.request("GET", "/v2/images", content=b"{}"),
        client.post("/v2/images", content=b"{", headers=MEMBER_A),
        client.delete(f"/v2/images/{image['id']}", headers=MEMBER_A),
    ]

    ids = [r.headers.get("x-openstack-request-id", "") for r in responses]

    assert all(REQUEST_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


def test_versioned_prefix__reaches_the_same_api(client: TestClient) -> None:
    created = client.post("/v2.1/images", json={"name": "x"}, headers=MEMBER_A)

    shown = client.get(f"/v2.9/images/{created.json()['id']}", headers=MEMBER_A)

    assert (created.status_code, shown.status_code) == (201, 200)
    assert shown.json()["name"] == "x"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_request_with_a_body__on_get_or_delete__returns_400(client: TestClient, method: str) -> None:
    image = _create(client)

    response = client.request(method, f"/v2/images/{image['id']}", content=b'{"a": 1}', headers=MEMBER_A)

    assert response.status_code == 400
    assert _show(client, image["id"]).status_code == 200


def test_error__with_accept_text_html__is_plain_text(client: TestClient) -> None:
    response = client.get("/v2/images", params={"limit": "x"}, headers={**MEMBER_A, "Accept": "text/html"})

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert "limit param must be an integer" in response.text
    with pytest.raises(ValueError):
        response.json()


def test_error__with_accept_json__is_webobs_json_shape(client: TestClient) -> None:
    response = _show(client, str(uuid.uuid4()), {**MEMBER_A, "Accept": "application/json"})

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "404 Not Found"
    assert body["title"] == "Not Found"
    assert "No image found" in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v2/images", {"GET", "POST"}),
        ("PUT", "/v2/images/{id}", {"GET", "PATCH", "DELETE"}),
        ("POST", "/v2/images/{id}", {"GET", "PATCH", "DELETE"}),
        ("GET", "/v2/images/{id}/tags/t", {"PUT", "DELETE"}),
        ("GET", "/v2/images/{id}/actions/deactivate", {"POST"}),
        ("POST", "/v2.1/images/{id}", {"GET", "PATCH", "DELETE"}),
    ],
)
def test_unsupported_method__returns_405_with_allow_listing_every_method(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = client.request(method, path.format(id=uuid.uuid4()), headers=MEMBER_A)

    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


# -- create --------------------------------------------------------------------------------------------


def test_create__returns_201_with_location_and_glance_defaults(client: TestClient) -> None:
    response = client.post("/v2/images", json={"name": "cirros"}, headers=MEMBER_A)

    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/v2/images/{body['id']}" == body["self"]
    assert uuid.UUID(body["id"])
    expected = {
        "name": "cirros",
        "status": "queued",
        "visibility": "shared",
        "owner": "project-a",
        "protected": False,
        "os_hidden": False,
        "min_ram": 0,
        "min_disk": 0,
        "size": None,
        "virtual_size": None,
        "checksum": None,
        "disk_format": None,
        "container_format": None,
        "tags": [],
        "file": f"/v2/images/{body['id']}/file",
        "schema": "/v2/schemas/image",
    }
    assert {k: body[k] for k in expected} == expected
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", body["created_at"])


def test_create__with_every_writable_field__shows_them_back(client: TestClient) -> None:
    body = {
        "name": "cirros",
        "visibility": "private",
        "protected": True,
        "os_hidden": True,
        "disk_format": "qcow2",
        "container_format": "bare",
        "min_ram": 512,
        "min_disk": 1,
        "tags": ["b", "a", "a"],
        "os_distro": "cirros",
    }
    created = _create(client, **body)

    shown = _show(client, created["id"]).json()

    assert {k: shown[k] for k in body} == {**body, "tags": ["a", "b"]}


def test_create__with_client_supplied_id__uses_it(client: TestClient) -> None:
    image_id = str(uuid.uuid4())

    assert _create(client, id=image_id)["id"] == image_id
    assert _show(client, image_id).status_code == 200


def test_create__with_duplicate_id__returns_409(client: TestClient) -> None:
    image_id = _create(client)["id"]

    response = client.post("/v2/images", json={"id": image_id}, headers=MEMBER_B)

    assert response.status_code == 409


def test_create__with_id_of_a_deleted_image__returns_409(client: TestClient) -> None:
    image_id = _create(client)["id"]
    assert client.delete(f"/v2/images/{image_id}", headers=MEMBER_A).status_code == 204

    response = client.post("/v2/images", json={"id": image_id}, headers=MEMBER_A)

    assert response.status_code == 409


@pytest.mark.parametrize("raw", [b"{", b"{'name': 'x'}", b"\xff\xfe", b""])
def test_create__with_malformed_or_missing_json__returns_400(client: TestClient, raw: bytes) -> None:
    response = client.post("/v2/images", content=raw, headers={**MEMBER_A, "Content-Type": "application/json"})

    assert response.status_code == 400


@pytest.mark.parametrize("body", [[], ["name"], "name", 3, None])
def test_create__with_body_not_an_object__returns_400(client: TestClient, body: Any) -> None:
    assert client.post("/v2/images", json=body, headers=MEMBER_A).status_code == 400


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "active"),
        ("size", 1),
        ("virtual_size", 1),
        ("checksum", "0" * 32),
        ("os_hash_algo", "sha512"),
        ("os_hash_value", "0"),
        ("created_at", "2024-01-01T00:00:00Z"),
        ("updated_at", "2024-01-01T00:00:00Z"),
    ],
)
def test_create__with_read_only_property__returns_403(client: TestClient, name: str, value: Any) -> None:
    assert client.post("/v2/images", json={name: value}, headers=MEMBER_A).status_code == 403


@pytest.mark.parametrize("name", ["self", "file", "schema", "direct_url", "stores"])
def test_create__with_disallowed_property__returns_403(client: TestClient, name: str) -> None:
    response = client.post("/v2/images", json={name: "x"}, headers=MEMBER_A)

    assert response.status_code == 403
    assert "read-only" in response.json()["message"]


@pytest.mark.parametrize(
    ("name", "value"), [("location", "x"), ("deleted", "x"), ("deleted_at", "x"), ("locations", [])]
)
def test_create__with_reserved_property__returns_403(client: TestClient, name: str, value: Any) -> None:
    response = client.post("/v2/images", json={name: value}, headers=MEMBER_A)

    assert response.status_code == 403
    assert "reserved" in response.json()["message"]


@pytest.mark.parametrize("name", ["os_glance_import_task", "os_glance_stage_host", "os_glancex"])
def test_create__with_os_glance_property__returns_403(client: TestClient, name: str) -> None:
    assert client.post("/v2/images", json={name: "x"}, headers=MEMBER_A).status_code == 403


@pytest.mark.parametrize(
    "body",
    [
        {"min_ram": "512"},
        {"min_disk": True},
        {"protected": "yes"},
        {"os_hidden": 0},
        {"visibility": "everyone"},
        {"disk_format": "floppy"},
        {"container_format": "zip"},
        {"tags": "a,b"},
        {"tags": [1]},
        {"name": 3},
        {"os_distro": 3},
        {"os_distro": None},
        {"owner": 1},
    ],
)
def test_create__with_wrong_types__returns_400(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/v2/images", json=body, headers=MEMBER_A).status_code == 400


def test_create__with_negative_min_ram__returns_400(client: TestClient) -> None:
    assert client.post("/v2/images", json={"min_ram": -1}, headers=MEMBER_A).status_code == 400


@pytest.mark.parametrize(
    "body", [{"name": "n" * 256}, {"tags": ["t" * 256]}, {"k" * 256: "v"}], ids=["name", "tag", "key"]
)
def test_create__with_value_or_key_over_255_characters__returns_400(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/v2/images", json=body, headers=MEMBER_A).status_code == 400


def test_create__with_name_of_255_characters__returns_201(client: TestClient) -> None:
    assert _create(client, name="n" * 255)["name"] == "n" * 255


@pytest.mark.parametrize("image_id", ["not-a-uuid", "12345678-1234-1234-1234-1234567890123", ""])
def test_create__with_id_not_a_uuid__returns_400(client: TestClient, image_id: str) -> None:
    assert client.post("/v2/images", json={"id": image_id}, headers=MEMBER_A).status_code == 400


def test_create__with_more_than_128_properties__returns_413(client: TestClient) -> None:
    body = {f"p{i}": "v" for i in range(129)}

    assert client.post("/v2/images", json=body, headers=MEMBER_A).status_code == 413


def test_create__with_128_properties_and_tags__returns_201(client: TestClient) -> None:
    image = _create(client, tags=[f"t{i}" for i in range(128)], **{f"p{i}": "v" for i in range(128)})

    assert len(image["tags"]) == 128


def test_create__with_more_than_128_tags__returns_413(client: TestClient) -> None:
    body = {"tags": [f"t{i}" for i in range(129)]}

    assert client.post("/v2/images", json=body, headers=MEMBER_A).status_code == 413


def test_create__public_by_non_admin__returns_403(client: TestClient) -> None:
    assert client.post("/v2/images", json={"visibility": "public"}, headers=MEMBER_A).status_code == 403


def test_create__public_by_admin__returns_201(client: TestClient) -> None:
    assert _create(client, ADMIN, visibility="public")["visibility"] == "public"


def test_create__community_by_member__returns_201(client: TestClient) -> None:
    assert _create(client, visibility="community")["visibility"] == "community"


def test_create__for_another_project_by_non_admin__returns_403(client: TestClient) -> None:
    assert client.post("/v2/images", json={"owner": "project-b"}, headers=MEMBER_A).status_code == 403


def test_create__for_own_project_with_explicit_owner__returns_201(client: TestClient) -> None:
    assert _create(client, owner="project-a")["owner"] == "project-a"


def test_create__for_another_project_by_admin__returns_201_owned_by_it(client: TestClient) -> None:
    image = _create(client, ADMIN, owner="project-b")

    assert image["owner"] == "project-b"
    assert _show(client, image["id"], MEMBER_B).status_code == 200


def test_create__by_reader_only__returns_403(client: TestClient) -> None:
    assert client.post("/v2/images", json={}, headers=READER_A).status_code == 403


# -- show ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_id", ["not-a-uuid", "1234", str(uuid.uuid4())])
def test_show__bad_or_unknown_id__returns_404(client: TestClient, image_id: str) -> None:
    assert _show(client, image_id).status_code == 404


@pytest.mark.parametrize("visibility", ["private", "shared"])
def test_show__other_projects_non_public_image__returns_404(client: TestClient, visibility: str) -> None:
    image = _create(client, visibility=visibility)

    assert _show(client, image["id"], MEMBER_B).status_code == 404
    assert _show(client, image["id"], ADMIN).status_code == 200


@pytest.mark.parametrize(("owner_headers", "visibility"), [(ADMIN, "public"), (MEMBER_A, "community")])
def test_show__other_projects_public_or_community_image__returns_200(
    client: TestClient, owner_headers: dict[str, str], visibility: str
) -> None:
    image = _create(client, owner_headers, visibility=visibility)

    assert _show(client, image["id"], MEMBER_B).status_code == 200


def test_show__by_reader_of_the_owning_project__returns_200(client: TestClient) -> None:
    image = _create(client)

    assert _show(client, image["id"], READER_A).status_code == 200


def test_show__hides_internal_properties(client: TestClient, repo: MemoryImageRepository) -> None:
    image_id = _create(client)["id"]
    image = repo.get(image_id)
    image.extra_properties["os_glance_stage_host"] = "http://worker"
    repo.save(image)

    assert "os_glance_stage_host" not in _show(client, image_id).json()


# -- PATCH -----------------------------------------------------------------------------------------


def test_patch__replace_name__returns_200_and_persists(client: TestClient) -> None:
    image = _create(client, name="old")

    response = _patch(client, image["id"], [{"op": "replace", "path": "/name", "value": "new"}])

    assert response.status_code == 200
    assert response.json()["name"] == "new"
    assert _show(client, image["id"]).json()["name"] == "new"


@pytest.mark.parametrize("media", [PATCH_V21, PATCH_V20])
def test_patch__add_new_extra_property__adds_it_in_both_dialects(client: TestClient, media: str) -> None:
    image = _create(client)
    op = (
        {"op": "add", "path": "/os_distro", "value": "cirros"}
        if media == PATCH_V21
        else {"add": "/os_distro", "value": "cirros"}
    )

    response = _patch(client, image["id"], [op], media=media)

    assert response.status_code == 200
    assert response.json()["os_distro"] == "cirros"


@pytest.mark.parametrize(("path", "value"), [("/name", "new"), ("/os_distro", "ubuntu"), ("/min_ram", 1024)])
def test_patch__v21_add_of_existing_property__replaces_it(client: TestClient, path: str, value: Any) -> None:
    image = _create(client, name="old", os_distro="cirros", min_ram=512)

    response = _patch(client, image["id"], [{"op": "add", "path": path, "value": value}])

    assert response.status_code == 200
    assert response.json()[path[1:]] == value


@pytest.mark.parametrize("path", ["/name", "/os_distro", "/min_ram", "/tags"])
def test_patch__v20_add_of_existing_property__returns_409(client: TestClient, path: str) -> None:
    image = _create(client, name="old", os_distro="cirros")
    value = ["x"] if path == "/tags" else (1 if path == "/min_ram" else "x")

    response = _patch(client, image["id"], [{"add": path, "value": value}], media=PATCH_V20)

    assert response.status_code == 409


@pytest.mark.parametrize(
    "op", [{"op": "replace", "path": "/os_distro", "value": "x"}, {"op": "remove", "path": "/os_distro"}]
)
def test_patch__replace_or_remove_of_missing_extra_property__returns_409(
    client: TestClient, op: dict[str, Any]
) -> None:
    image = _create(client)

    assert _patch(client, image["id"], [op]).status_code == 409


def test_patch__remove_extra_property__removes_it(client: TestClient) -> None:
    image = _create(client, os_distro="cirros", hw_disk_bus="virtio")

    response = _patch(client, image["id"], [{"op": "remove", "path": "/os_distro"}])

    assert response.status_code == 200
    assert "os_distro" not in response.json()
    assert _show(client, image["id"]).json()["hw_disk_bus"] == "virtio"


@pytest.mark.parametrize("name", ["name", "min_ram", "visibility", "protected", "tags", "disk_format", "owner"])
def test_patch__remove_of_base_property__returns_403(client: TestClient, name: str) -> None:
    image = _create(client, name="x")

    assert _patch(client, image["id"], [{"op": "remove", "path": f"/{name}"}]).status_code == 403


@pytest.mark.parametrize("path", ["/status", "/size", "/checksum", "/id", "/created_at", "/self"])
def test_patch__of_read_only_property__returns_403(client: TestClient, path: str) -> None:
    image = _create(client)

    assert _patch(client, image["id"], [{"op": "replace", "path": path, "value": "x"}]).status_code == 403


@pytest.mark.parametrize("path", ["/deleted", "/location", "/os_glance_import_task"])
def test_patch__of_reserved_property__returns_403(client: TestClient, path: str) -> None:
    image = _create(client)

    assert _patch(client, image["id"], [{"op": "add", "path": path, "value": "x"}]).status_code == 403


@pytest.mark.parametrize("op", ["replace", "add"])
def test_patch__owner_by_non_admin__returns_403(client: TestClient, op: str) -> None:
    image = _create(client)

    response = _patch(client, image["id"], [{"op": op, "path": "/owner", "value": "project-b"}])

    assert response.status_code == 403
    assert _show(client, image["id"]).json()["owner"] == "project-a"


def test_patch__owner_by_admin__moves_the_image(client: TestClient) -> None:
    image = _create(client)

    response = _patch(client, image["id"], [{"op": "replace", "path": "/owner", "value": "project-b"}], ADMIN)

    assert response.status_code == 200
    assert _show(client, image["id"], MEMBER_B).json()["owner"] == "project-b"
    assert _show(client, image["id"], MEMBER_A).status_code == 404


def test_patch__visibility_public_by_non_admin__returns_403(client: TestClient) -> None:
    image = _create(client)

    assert _patch(client, image["id"], [{"op": "replace", "path": "/visibility", "value": "public"}]).status_code == 403


def test_patch__visibility_community_by_member__returns_200(client: TestClient) -> None:
    image = _create(client)

    response = _patch(client, image["id"], [{"op": "replace", "path": "/visibility", "value": "community"}])

    assert (response.status_code, response.json()["visibility"]) == (200, "community")


@pytest.mark.parametrize("name", ["disk_format", "container_format"])
def test_patch__format_of_queued_image__returns_200(client: TestClient, name: str) -> None:
    image = _create(client)
    value = "raw" if name == "disk_format" else "bare"

    response = _patch(client, image["id"], [{"op": "replace", "path": f"/{name}", "value": value}])

    assert (response.status_code, response.json()[name]) == (200, value)


@pytest.mark.parametrize("name", ["disk_format", "container_format"])
def test_patch__format_of_active_image__returns_403(client: TestClient, repo: MemoryImageRepository, name: str) -> None:
    image = _create(client, disk_format="raw", container_format="bare")
    _activate(repo, image["id"])
    value = "qcow2" if name == "disk_format" else "ovf"

    response = _patch(client, image["id"], [{"op": "replace", "path": f"/{name}", "value": value}])

    assert response.status_code == 403
    assert _show(client, image["id"]).json()[name] == image[name]


def test_patch__replace_tags__sets_exactly_the_new_tags(client: TestClient) -> None:
    image = _create(client, tags=["a", "b"])

    response = _patch(client, image["id"], [{"op": "replace", "path": "/tags", "value": ["c", "b", "c"]}])

    assert response.json()["tags"] == ["b", "c"]


def test_patch__several_operations__apply_in_order(client: TestClient) -> None:
    image = _create(client)
    ops = [
        {"op": "add", "path": "/os_distro", "value": "cirros"},
        {"op": "replace", "path": "/os_distro", "value": "ubuntu"},
        {"op": "add", "path": "/x~1y", "value": "slash"},
    ]

    body = _patch(client, image["id"], ops).json()

    assert (body["os_distro"], body["x/y"]) == ("ubuntu", "slash")


def test_patch__failing_operation__applies_none_of_them(client: TestClient) -> None:
    image = _create(client, name="old")
    ops = [{"op": "replace", "path": "/name", "value": "new"}, {"op": "remove", "path": "/missing"}]

    assert _patch(client, image["id"], ops).status_code == 409
    assert _show(client, image["id"]).json()["name"] == "old"


def test_patch__past_the_property_limit__returns_413(make_client: MakeClient) -> None:
    client = make_client(image_property_quota=2)
    image = _create(client, a="1", b="2")

    response = _patch(client, image["id"], [{"op": "add", "path": "/c", "value": "3"}])

    assert response.status_code == 413
    assert "c" not in _show(client, image["id"]).json()


def test_patch__negative_min_ram__returns_400(client: TestClient) -> None:
    image = _create(client)

    assert _patch(client, image["id"], [{"op": "replace", "path": "/min_ram", "value": -1}]).status_code == 400


def test_patch__with_value_of_wrong_type__returns_400(client: TestClient) -> None:
    image = _create(client)

    assert _patch(client, image["id"], [{"op": "add", "path": "/os_distro", "value": 7}]).status_code == 400


@pytest.mark.parametrize("content_type", ["application/json", "application/json-patch+json", "text/plain"])
def test_patch__with_other_media_type__returns_415_with_accept_patch(client: TestClient, content_type: str) -> None:
    image = _create(client)

    response = _patch(client, image["id"], [], media=content_type)

    assert response.status_code == 415
    assert {t.strip() for t in response.headers["accept-patch"].split(",")} == {PATCH_V20, PATCH_V21}


def test_patch__with_other_media_type_and_malformed_body__still_returns_415(client: TestClient) -> None:
    image = _create(client)

    response = client.patch(
        f"/v2/images/{image['id']}", content=b"{", headers={**MEMBER_A, "Content-Type": "application/json"}
    )

    assert response.status_code == 415


def test_patch__with_body_not_a_list__returns_400(client: TestClient) -> None:
    image = _create(client)

    assert _patch(client, image["id"], {"op": "replace", "path": "/name", "value": "x"}).status_code == 400


def test_patch__by_member_of_another_project__on_public_image__returns_403(client: TestClient) -> None:
    image = _create(client, ADMIN, visibility="public")

    assert _patch(client, image["id"], [{"op": "replace", "path": "/name", "value": "x"}], MEMBER_B).status_code == 403


def test_patch__by_member_of_another_project__on_private_image__returns_404(client: TestClient) -> None:
    image = _create(client, visibility="private")

    assert _patch(client, image["id"], [{"op": "replace", "path": "/name", "value": "x"}], MEMBER_B).status_code == 404


def test_patch__by_reader__returns_403(client: TestClient) -> None:
    image = _create(client)

    assert _patch(client, image["id"], [{"op": "replace", "path": "/name", "value": "x"}], READER_A).status_code == 403


def test_patch__unknown_image__returns_404(client: TestClient) -> None:
    assert _patch(client, str(uuid.uuid4()), []).status_code == 404


# -- delete ----------------------------------------------------------------------------------------


def test_delete__returns_204_and_the_image_is_gone(client: TestClient) -> None:
    image = _create(client)

    assert client.delete(f"/v2/images/{image['id']}", headers=MEMBER_A).status_code == 204
    assert _show(client, image["id"]).status_code == 404
    assert _show(client, image["id"], ADMIN).status_code == 404


def test_delete__twice__returns_404(client: TestClient) -> None:
    image = _create(client)
    client.delete(f"/v2/images/{image['id']}", headers=MEMBER_A)

    assert client.delete(f"/v2/images/{image['id']}", headers=MEMBER_A).status_code == 404


def test_delete__protected_image__returns_403_and_keeps_it(client: TestClient) -> None:
    image = _create(client, protected=True)

    assert client.delete(f"/v2/images/{image['id']}", headers=MEMBER_A).status_code == 403
    assert _show(client, image["id"]).status_code == 200


def test_delete__after_unprotecting__returns_204(client: TestClient) -> None:
    image = _create(client, protected=True)
    _patch(client, image["id"], [{"op": "replace", "path": "/protected", "value": False}])

    assert client.delete(f"/v2/images/{image['id']}", headers=MEMBER_A).status_code == 204


def test_delete__by_member_of_another_project__on_public_image__returns_403(client: TestClient) -> None:
    image = _create(client, ADMIN, visibility="public")

    assert client.delete(f"/v2/images/{image['id']}", headers=MEMBER_B).status_code == 403


# -- tags ------------------------------------------------------------------------------------------


def test_put_tag__adds_it_and_is_idempotent(client: TestClient) -> None:
    image = _create(client)

    first = client.put(f"/v2/images/{image['id']}/tags/x86", headers=MEMBER_A)
    second = client.put(f"/v2/images/{image['id']}/tags/x86", headers=MEMBER_A)

    assert (first.status_code, second.status_code) == (204, 204)
    assert _show(client, image["id"]).json()["tags"] == ["x86"]


def test_delete_tag__removes_it(client: TestClient) -> None:
    image = _create(client, tags=["a", "b"])

    assert client.delete(f"/v2/images/{image['id']}/tags/a", headers=MEMBER_A).status_code == 204
    assert _show(client, image["id"]).json()["tags"] == ["b"]


def test_delete_tag__unknown_tag__returns_404(client: TestClient) -> None:
    image = _create(client, tags=["a"])

    assert client.delete(f"/v2/images/{image['id']}/tags/b", headers=MEMBER_A).status_code == 404


def test_put_tag__over_255_characters__returns_400(client: TestClient) -> None:
    image = _create(client)

    assert client.put(f"/v2/images/{image['id']}/tags/{'t' * 256}", headers=MEMBER_A).status_code == 400
    assert client.put(f"/v2/images/{image['id']}/tags/{'t' * 255}", headers=MEMBER_A).status_code == 204


def test_put_tag__past_the_tag_limit__returns_413_but_existing_tag_is_fine(make_client: MakeClient) -> None:
    client = make_client(image_tag_quota=2)
    image = _create(client, tags=["a", "b"])

    assert client.put(f"/v2/images/{image['id']}/tags/c", headers=MEMBER_A).status_code == 413
    assert client.put(f"/v2/images/{image['id']}/tags/a", headers=MEMBER_A).status_code == 204
    assert _show(client, image["id"]).json()["tags"] == ["a", "b"]


def test_put_tag__on_unknown_image__returns_404(client: TestClient) -> None:
    assert client.put(f"/v2/images/{uuid.uuid4()}/tags/a", headers=MEMBER_A).status_code == 404


# -- deactivate / reactivate ---------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["deactivate", "reactivate"])
def test_action__on_queued_image__returns_403(client: TestClient, action: str) -> None:
    image = _create(client)

    assert client.post(f"/v2/images/{image['id']}/actions/{action}", headers=MEMBER_A).status_code == 403
    assert _show(client, image["id"]).json()["status"] == "queued"


def test_deactivate_then_reactivate__round_trips_and_each_is_idempotent(
    client: TestClient, repo: MemoryImageRepository
) -> None:
    image = _create(client)
    _activate(repo, image["id"])
    url = f"/v2/images/{image['id']}/actions"

    statuses = []
    for action in ("reactivate", "deactivate", "deactivate", "reactivate", "reactivate"):
        assert client.post(f"{url}/{action}", headers=MEMBER_A).status_code == 204
        statuses.append(_show(client, image["id"]).json()["status"])

    assert statuses == ["active", "deactivated", "deactivated", "active", "active"]


def test_deactivate__by_member_of_another_project__returns_403(client: TestClient, repo: MemoryImageRepository) -> None:
    image = _create(client, ADMIN, visibility="public")
    _activate(repo, image["id"])

    assert client.post(f"/v2/images/{image['id']}/actions/deactivate", headers=MEMBER_B).status_code == 403


def test_deactivate__unknown_image__returns_404(client: TestClient) -> None:
    assert client.post(f"/v2/images/{uuid.uuid4()}/actions/deactivate", headers=MEMBER_A).status_code == 404


# -- listing -------------------------------------------------------------------------------------------


def _list(client: TestClient, query: Any = None, headers: dict[str, str] | None = None) -> httpx2.Response:
    return client.get("/v2/images", params=query, headers=headers or MEMBER_A)


def _names(response: httpx2.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [image["name"] for image in response.json()["images"]]


def test_list__default__is_own_and_public_images_newest_first(client: TestClient) -> None:
    for name in ("one", "two", "three"):
        _create(client, name=name)
    _create(client, ADMIN, name="public", visibility="public")
    _create(client, MEMBER_B, name="b-private", visibility="private")
    _create(client, MEMBER_B, name="b-community", visibility="community")
    _create(client, name="hidden", os_hidden=True)

    response = _list(client)

    assert _names(response) == ["public", "three", "two", "one"]
    assert response.json()["schema"] == "/v2/schemas/images"
    assert response.json()["first"] == "/v2/images"
    assert "next" not in response.json()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ([("name", "in:cirros,ubuntu")], {"cirros", "ubuntu"}),
        ([("name", 'in:"a,b",cirros')], {"a,b", "cirros"}),
        ([("tag", "x86"), ("tag", "small")], {"cirros"}),
        ([("tag", "x86")], {"cirros", "ubuntu"}),
        ([("os_distro", "debian")], {"a,b"}),
        ([("visibility", "community")], {"ubuntu", "b-community"}),
        ([("visibility", "all")], {"cirros", "ubuntu", "a,b", "b-community", "public"}),
        ([("visibility", "private")], {"a,b"}),
        ([("min_ram", "512")], {"ubuntu"}),
        ([("owner", "project-b"), ("visibility", "all")], {"b-community"}),
        ([("os_hidden", "true")], {"hidden"}),
        ([("disk_format", "qcow2"), ("container_format", "bare")], {"cirros"}),
    ],
)
def test_list__filters__select_like_glance(
    client: TestClient, query: list[tuple[str, str]], expected: set[str]
) -> None:
    _create(client, name="cirros", tags=["x86", "small"], disk_format="qcow2", container_format="bare")
    _create(client, name="ubuntu", tags=["x86"], visibility="community", min_ram=512)
    _create(client, name="a,b", visibility="private", os_distro="debian")
    _create(client, name="hidden", os_hidden=True)
    _create(client, MEMBER_B, name="b-community", visibility="community")
    _create(client, MEMBER_B, name="b-private", visibility="private")
    _create(client, ADMIN, name="public", visibility="public")

    assert set(_names(_list(client, query))) == expected


@pytest.mark.parametrize(
    "query",
    [
        [("changes-since", "2024-01-01T00:00:00Z")],
        [("visibility", "everyone")],
        [("member_status", "maybe")],
        [("size_min", "big")],
        [("created_at", "after:2024-01-01T00:00:00Z")],
        [("name", "like:x")],
        [("protected", "yes")],
        [("sort", "name"), ("sort_key", "name")],
        [("sort_key", "owner")],
        [("sort_dir", "up")],
        [("sort_key", "name"), ("sort_key", "id"), ("sort_dir", "asc"), ("sort_dir", "desc"), ("sort_dir", "asc")],
    ],
)
def test_list__with_bad_filter_or_sort__returns_400(client: TestClient, query: list[tuple[str, str]]) -> None:
    assert _list(client, query).status_code == 400


def test_list__both_sort_syntaxes__give_the_same_order(client: TestClient) -> None:
    for name, size in (("b", 1), ("a", 3), ("c", 2), ("a", 1)):
        _create(client, name=name, min_disk=size)

    new = _names(_list(client, [("sort", "name:asc")]))
    classic = _names(_list(client, [("sort_key", "name"), ("sort_dir", "asc")]))
    descending = _names(_list(client, [("sort", "name:desc")]))

    assert new == classic == ["a", "a", "b", "c"]
    assert descending == ["c", "b", "a", "a"]


def _follow(client: TestClient, first_url: str, headers: dict[str, str]) -> tuple[list[dict[str, Any]], list[str]]:
    images: list[dict[str, Any]] = []
    urls = [first_url]
    url: str | None = first_url
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        images.extend(body["images"])
        url = body.get("next")
        if url:
            urls.append(url)
        assert len(urls) < 50
    return images, urls


@pytest.mark.parametrize("sort", ["created_at:desc", "name:asc", "size:desc", "id:asc", "status:asc"])
def test_list__following_next_links__returns_every_image_once(client: TestClient, sort: str) -> None:
    created = {_create(client, name=f"n{i % 3}")["id"] for i in range(7)}
    created.add(_create(client, ADMIN, name="pub", visibility="public")["id"])

    images, urls = _follow(client, f"/v2/images?limit=2&sort={sort}", MEMBER_A)

    ids = [i["id"] for i in images]
    assert len(urls) == 4
    assert len(ids) == len(set(ids)) == len(created)
    assert set(ids) == created
    assert ids == [i["id"] for i in _list(client, [("sort", sort), ("limit", "100")]).json()["images"]]


def test_list__next_and_first_links__keep_the_other_parameters(client: TestClient) -> None:
    for i in range(3):
        _create(client, name=f"n{i}", os_distro="cirros", tags=["t"])

    first_page = _list(client, [("limit", "1"), ("os_distro", "cirros"), ("sort", "name:asc"), ("tag", "t")]).json()
    next_url = first_page["next"]
    second_page = client.get(next_url, headers=MEMBER_A).json()

    next_params = dict(parse_qsl(urlsplit(next_url).query, keep_blank_values=True))
    assert urlsplit(next_url).path == "/v2/images"
    assert next_params == {
        "limit": "1",
        "os_distro": "cirros",
        "sort": "name:asc",
        "tag": "t",
        "marker": first_page["images"][0]["id"],
    }
    first_params = dict(parse_qsl(urlsplit(second_page["first"]).query, keep_blank_values=True))
    assert first_params == {"limit": "1", "os_distro": "cirros", "sort": "name:asc", "tag": "t"}


@pytest.mark.parametrize("marker", ["not-a-uuid", str(uuid.uuid4())])
def test_list__with_unknown_marker__returns_400(client: TestClient, marker: str) -> None:
    assert _list(client, [("marker", marker)]).status_code == 400


def test_list__with_marker_the_caller_cannot_see__returns_400(client: TestClient) -> None:
    hidden = _create(client, MEMBER_B, visibility="private")

    assert _list(client, [("marker", hidden["id"])]).status_code == 400


def test_list__with_deleted_marker__returns_400(client: TestClient) -> None:
    image = _create(client)
    client.delete(f"/v2/images/{image['id']}", headers=MEMBER_A)

    assert _list(client, [("marker", image["id"])]).status_code == 400


@pytest.mark.parametrize("limit", ["x", "-1", "1.5", ""])
def test_list__with_bad_limit__returns_400(client: TestClient, limit: str) -> None:
    assert _list(client, [("limit", limit)]).status_code == 400


def test_list__with_limit_zero__returns_an_empty_page(client: TestClient) -> None:
    _create(client)

    body = _list(client, [("limit", "0")]).json()

    assert body["images"] == []
    assert "next" not in body


def test_list__limit__defaults_to_limit_param_default_and_is_capped_at_api_limit_max(make_client: MakeClient) -> None:
    client = make_client(limit_param_default=2, api_limit_max=3)
    for _ in range(5):
        _create(client)

    assert len(_list(client).json()["images"]) == 2
    assert len(_list(client, [("limit", "100")]).json()["images"]) == 3


def test_list__by_caller_without_reader_role__returns_403(client: TestClient) -> None:
    headers = {"X-Project-Id": "project-a", "X-User-Id": "user-x", "X-Roles": "guest"}

    assert _list(client, headers=headers).status_code == 403


def test_list__admin__sees_other_projects_private_images(client: TestClient) -> None:
    _create(client, MEMBER_B, name="b-private", visibility="private")

    assert _names(_list(client, headers=ADMIN)) == ["b-private"]


class _BrokenRepository(MemoryImageRepository):
    """Fails every read with an error nothing in the app expects (a fault injected under the controllers)."""

    def _get(self, image_id: str) -> Any:
        raise RuntimeError("injected fault")


def test_unhandled_error__is_a_500_with_the_request_id_and_an_access_log_line(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(auth_mode="trusted-headers"), {"image_repository": _BrokenRepository()})

    with TestClient(app, raise_server_exceptions=False, headers={"Accept": "application/json"}) as client:
        response = client.get(f"/v2/images/{uuid.uuid4()}", headers=MEMBER_A)

    request_id = response.headers.get("x-openstack-request-id", "")
    assert response.status_code == 500
    assert REQUEST_ID.match(request_id)
    assert response.json()["code"].startswith("500 ") and "injected fault" not in response.text
    access = [r for r in caplog.records if r.getMessage() == "request"]
    assert [(r.request_id, r.status) for r in access] == [(request_id, 500)]  # type: ignore[attr-defined]
    errors = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert [r.request_id for r in errors] == [request_id]  # type: ignore[attr-defined]
