"""The metadata definitions catalog end to end over the in-memory item store: Glance's codes, visibility, protected
namespaces, the personas' policies, and the metadef_* events."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from functions.api.app import create_app
from shared.config import Settings
from shared.data.memory import MemoryImageRepository, MemoryItemStore
from shared.data.metadefs import MetadefRepository
from shared.notifications import RecordingNotifier

ADMIN = {"X-Project-Id": "p-admin", "X-User-Id": "u-admin", "X-Roles": "admin"}
MEMBER_A = {"X-Project-Id": "p-a", "X-User-Id": "u-a", "X-Roles": "member,reader"}
READER_A = {"X-Project-Id": "p-a", "X-User-Id": "u-ra", "X-Roles": "reader"}
MEMBER_B = {"X-Project-Id": "p-b", "X-User-Id": "u-b", "X-Roles": "member,reader"}
NS = "/v2/metadefs/namespaces"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def client(notifier: RecordingNotifier) -> Iterator[TestClient]:
    overrides: dict[str, Any] = {
        "image_repository": MemoryImageRepository(),
        "metadef_repository": MetadefRepository(MemoryItemStore()),
        "notifier": notifier,
    }
    app = create_app(Settings(auth_mode="trusted-headers"), overrides)
    with TestClient(app, headers={"Accept": "application/json"}) as test_client:
        yield test_client


def _ns(client: TestClient, name: str, headers: dict[str, str] = ADMIN, **body: Any) -> dict[str, Any]:
    response = client.post(NS, json={"namespace": name, **body}, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_create_namespace__returns_201_with_location_and_glance_shape(client: TestClient) -> None:
    response = client.post(NS, json={"namespace": "Ours::Disk", "display_name": "Disk"}, headers=ADMIN)
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == "/v2/metadefs/namespaces/Ours::Disk" == body["self"]
    assert body["visibility"] == "private" and body["protected"] is False and body["owner"] == "p-admin"
    assert body["schema"] == "/v2/schemas/metadefs/namespace"
    assert client.post(NS, json={"namespace": "Ours::Disk"}, headers=ADMIN).status_code == 409


def test_create_namespace__with_content__shows_it_all(client: TestClient) -> None:
    _ns(
        client,
        "Ours::Full",
        visibility="public",
        resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "hw_"}],
        properties={"cpu": {"title": "CPU", "type": "integer", "minimum": 1}},
        objects=[{"name": "Obj", "properties": {"x": {"title": "X", "type": "string"}}, "required": ["x"]}],
        tags=[{"name": "t1"}, {"name": "t2"}],
    )
    body = client.get(f"{NS}/Ours::Full", headers=MEMBER_B).json()
    assert body["properties"] == {"cpu": {"title": "CPU", "type": "integer", "minimum": 1}}
    assert [o["name"] for o in body["objects"]] == ["Obj"] and [t["name"] for t in body["tags"]] == ["t1", "t2"]
    assert body["resource_type_associations"][0]["prefix"] == "hw_"
    prefixed = client.get(f"{NS}/Ours::Full", params={"resource_type": "OS::Glance::Image"}, headers=ADMIN).json()
    assert list(prefixed["properties"]) == ["hw_cpu"] and prefixed["objects"][0]["required"] == ["hw_x"]
    names = [rt["name"] for rt in client.get("/v2/metadefs/resource_types", headers=READER_A).json()["resource_types"]]
    assert names == ["OS::Glance::Image"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"namespace": "x", "visibility": "shared"}, 400),
        ({"namespace": "x", "bogus": 1}, 400),
        ({"namespace": "x" * 81}, 400),
        ({"namespace": "x", "created_at": "now"}, 403),
        ({"namespace": "x", "properties": {"p": {"title": "P"}}}, 400),
        ({"namespace": "x", "properties": {"p": {"title": "P", "type": "str"}}}, 400),
    ],
)
def test_create_namespace__bad_body__gets_glance_code(client: TestClient, body: dict[str, Any], status: int) -> None:
    assert client.post(NS, json=body, headers=ADMIN).status_code == status


def test_namespace_writes__need_admin__reads_follow_visibility(client: TestClient) -> None:
    assert client.post(NS, json={"namespace": "n"}, headers=MEMBER_A).status_code == 403
    _ns(client, "pub", visibility="public")
    _ns(client, "mine-a", owner="p-a")
    _ns(client, "other", owner="p-b")
    listed = {n["namespace"] for n in client.get(NS, headers=READER_A).json()["namespaces"]}
    assert listed == {"pub", "mine-a"}
    assert client.get(f"{NS}/other", headers=MEMBER_A).status_code == 404
    # a write to a namespace the caller can read is 403; to one it cannot see, 404
    assert client.put(f"{NS}/pub", json={"namespace": "pub"}, headers=MEMBER_A).status_code == 403
    assert client.put(f"{NS}/other", json={"namespace": "other"}, headers=MEMBER_A).status_code == 404
    assert client.delete(f"{NS}/mine-a", headers=MEMBER_A).status_code == 403
    assert client.delete(f"{NS}/other", headers=MEMBER_A).status_code == 404
    everything = {n["namespace"] for n in client.get(NS, headers=ADMIN).json()["namespaces"]}
    assert everything == {"pub", "mine-a", "other"}


def test_list_namespaces__pages_with_next_and_filters(client: TestClient) -> None:
    for i in range(5):
        _ns(client, f"n{i}", visibility="public" if i % 2 else "private")
    first = client.get(NS, params={"limit": 2, "sort_key": "namespace", "sort_dir": "asc"}, headers=ADMIN).json()
    assert [n["namespace"] for n in first["namespaces"]] == ["n0", "n1"]
    assert "marker=n1" in first["next"]
    rest = client.get(first["next"], headers=ADMIN).json()
    assert [n["namespace"] for n in rest["namespaces"]] == ["n2", "n3"]
    public = client.get(NS, params={"visibility": "public"}, headers=ADMIN).json()["namespaces"]
    assert {n["namespace"] for n in public} == {"n1", "n3"}
    assert client.get(NS, params={"visibility": "shared"}, headers=ADMIN).status_code == 400
    assert client.get(NS, params={"sort_dir": "up"}, headers=ADMIN).status_code == 400
    assert client.get(NS, params={"limit": "-1"}, headers=ADMIN).status_code == 400
    assert client.get(NS, params={"marker": "missing"}, headers=ADMIN).status_code == 404


def test_list_namespaces__by_resource_type(client: TestClient) -> None:
    _ns(client, "img", resource_type_associations=[{"name": "OS::Glance::Image"}])
    _ns(client, "vol", resource_type_associations=[{"name": "OS::Cinder::Volume"}])
    _ns(client, "none")
    listed = client.get(NS, params={"resource_types": "OS::Glance::Image"}, headers=ADMIN).json()["namespaces"]
    assert [n["namespace"] for n in listed] == ["img"]
    both = client.get(NS, params={"resource_types": "OS::Glance::Image,OS::Cinder::Volume"}, headers=ADMIN).json()
    assert {n["namespace"] for n in both["namespaces"]} == {"img", "vol"}


def test_update_namespace__renames_and_moves_content(client: TestClient) -> None:
    _ns(client, "old", tags=[{"name": "t"}], resource_type_associations=[{"name": "OS::Glance::Image"}])
    response = client.put(f"{NS}/old", json={"namespace": "new", "description": "d"}, headers=ADMIN)
    assert response.status_code == 200 and response.json()["namespace"] == "new"
    assert client.get(f"{NS}/old", headers=ADMIN).status_code == 404
    assert [t["name"] for t in client.get(f"{NS}/new/tags", headers=ADMIN).json()["tags"]] == ["t"]
    listed = client.get(NS, params={"resource_types": "OS::Glance::Image"}, headers=ADMIN).json()["namespaces"]
    assert [n["namespace"] for n in listed] == ["new"]
    _ns(client, "taken")
    assert client.put(f"{NS}/new", json={"namespace": "taken"}, headers=ADMIN).status_code == 409


def test_protected_namespace__and_its_content__cannot_be_deleted(client: TestClient) -> None:
    _ns(client, "p", protected=True, tags=[{"name": "t"}], resource_type_associations=[{"name": "R"}])
    assert client.delete(f"{NS}/p", headers=ADMIN).status_code == 403
    assert client.delete(f"{NS}/p/tags", headers=ADMIN).status_code == 403
    assert client.delete(f"{NS}/p/tags/t", headers=ADMIN).status_code == 403
    assert client.delete(f"{NS}/p/resource_types/R", headers=ADMIN).status_code == 403
    client.put(f"{NS}/p", json={"namespace": "p", "protected": False}, headers=ADMIN)
    assert client.delete(f"{NS}/p", headers=ADMIN).status_code == 204
    assert client.get(f"{NS}/p", headers=ADMIN).status_code == 404


def test_objects__crud_with_glance_codes(client: TestClient) -> None:
    _ns(client, "o", visibility="public")
    body = {"name": "Obj", "description": "d", "properties": {"a": {"title": "A", "type": "boolean"}}}
    created = client.post(f"{NS}/o/objects", json=body, headers=ADMIN)
    assert created.status_code == 201 and created.json()["self"] == "/v2/metadefs/namespaces/o/objects/Obj"
    assert client.post(f"{NS}/o/objects", json=body, headers=ADMIN).status_code == 409
    assert client.post(f"{NS}/o/objects", json=body, headers=MEMBER_A).status_code == 403
    assert client.get(f"{NS}/o/objects/Obj", headers=READER_A).json()["properties"]["a"]["type"] == "boolean"
    renamed = client.put(f"{NS}/o/objects/Obj", json={"name": "Obj2"}, headers=ADMIN)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Obj2"
    assert client.get(f"{NS}/o/objects/Obj", headers=ADMIN).status_code == 404
    assert [o["name"] for o in client.get(f"{NS}/o/objects", headers=ADMIN).json()["objects"]] == ["Obj2"]
    assert client.delete(f"{NS}/o/objects/Obj2", headers=ADMIN).status_code == 204
    assert client.delete(f"{NS}/o/objects/Obj2", headers=ADMIN).status_code == 404
    assert client.post(f"{NS}/missing/objects", json=body, headers=ADMIN).status_code == 404


def test_properties__crud_and_prefixed_show(client: TestClient) -> None:
    _ns(client, "pr", resource_type_associations=[{"name": "OS::Glance::Image", "prefix": "hw_"}])
    prop = {"name": "cpu", "title": "CPU", "type": "string", "enum": ["a", "b"]}
    created = client.post(f"{NS}/pr/properties", json=prop, headers=ADMIN)
    assert created.status_code == 201 and created.json() == prop
    assert client.post(f"{NS}/pr/properties", json=prop, headers=ADMIN).status_code == 409
    assert client.post(f"{NS}/pr/properties", json={"name": "x", "type": "string"}, headers=ADMIN).status_code == 400
    listed = client.get(f"{NS}/pr/properties", headers=ADMIN).json()
    assert listed == {"properties": {"cpu": {"title": "CPU", "type": "string", "enum": ["a", "b"]}}}
    rt = {"resource_type": "OS::Glance::Image"}
    assert client.get(f"{NS}/pr/properties/hw_cpu", params=rt, headers=ADMIN).json()["name"] == "cpu"
    assert client.get(f"{NS}/pr/properties/cpu", params=rt, headers=ADMIN).status_code == 404
    updated = client.put(f"{NS}/pr/properties/cpu", json={**prop, "title": "Cores"}, headers=ADMIN)
    assert updated.status_code == 200 and updated.json()["title"] == "Cores"
    assert client.delete(f"{NS}/pr/properties", headers=ADMIN).status_code == 204
    assert client.get(f"{NS}/pr/properties", headers=ADMIN).json() == {"properties": {}}


def test_tags__bulk_replace_append_rename_delete(client: TestClient) -> None:
    _ns(client, "t")
    bulk = client.post(f"{NS}/t/tags", json={"tags": [{"name": "a"}, {"name": "b"}]}, headers=ADMIN)
    assert bulk.status_code == 201 and bulk.json() == {"tags": [{"name": "a"}, {"name": "b"}]}
    client.post(f"{NS}/t/tags", json={"tags": [{"name": "c"}]}, headers=ADMIN)
    assert [t["name"] for t in client.get(f"{NS}/t/tags", headers=ADMIN).json()["tags"]] == ["c"]
    append = {**ADMIN, "X-Openstack-Append": "true"}
    appended = client.post(f"{NS}/t/tags", json={"tags": [{"name": "d"}]}, headers=append)
    assert appended.status_code == 201
    assert [t["name"] for t in client.get(f"{NS}/t/tags", headers=ADMIN).json()["tags"]] == ["c", "d"]
    dup = client.post(f"{NS}/t/tags", json={"tags": [{"name": "e"}, {"name": "e"}]}, headers=ADMIN)
    assert dup.status_code == 409
    assert client.post(f"{NS}/t/tags/one", headers=ADMIN).status_code == 201
    assert client.post(f"{NS}/t/tags/one", headers=ADMIN).status_code == 409
    assert client.put(f"{NS}/t/tags/one", json={"name": "two"}, headers=ADMIN).json()["name"] == "two"
    assert client.get(f"{NS}/t/tags/one", headers=ADMIN).status_code == 404
    assert client.delete(f"{NS}/t/tags/two", headers=ADMIN).status_code == 204
    assert client.delete(f"{NS}/t/tags", headers=ADMIN).status_code == 204
    assert client.get(f"{NS}/t/tags", headers=ADMIN).json() == {"tags": []}


def test_resource_type_associations__add_list_remove(client: TestClient) -> None:
    _ns(client, "r")
    made = client.post(f"{NS}/r/resource_types", json={"name": "OS::Nova::Flavor", "prefix": "hw:"}, headers=ADMIN)
    assert made.status_code == 201 and made.json()["prefix"] == "hw:"
    again = client.post(f"{NS}/r/resource_types", json={"name": "OS::Nova::Flavor"}, headers=ADMIN)
    assert again.status_code == 409
    listed = client.get(f"{NS}/r/resource_types", headers=ADMIN).json()["resource_type_associations"]
    assert [a["name"] for a in listed] == ["OS::Nova::Flavor"]
    assert client.delete(f"{NS}/r/resource_types/OS::Nova::Flavor", headers=ADMIN).status_code == 204
    assert client.delete(f"{NS}/r/resource_types/OS::Nova::Flavor", headers=ADMIN).status_code == 404
    assert client.delete(f"{NS}/r/resource_types/Nope", headers=ADMIN).status_code == 404
    # the resource type outlives the association
    kinds = client.get("/v2/metadefs/resource_types", headers=ADMIN).json()["resource_types"]
    assert [k["name"] for k in kinds] == ["OS::Nova::Flavor"]


def test_events__metadef_types_with_glance_payloads(client: TestClient, notifier: RecordingNotifier) -> None:
    _ns(client, "e", tags=[{"name": "t"}])
    client.put(f"{NS}/e", json={"namespace": "e2"}, headers=ADMIN)
    client.post(f"{NS}/e2/objects", json={"name": "o"}, headers=ADMIN)
    client.delete(f"{NS}/e2/objects/o", headers=ADMIN)
    client.delete(f"{NS}/e2/tags", headers=ADMIN)
    client.delete(f"{NS}/e2", headers=ADMIN)
    assert notifier.event_types == [
        "metadef_namespace.create",
        "metadef_tag.create",
        "metadef_namespace.update",
        "metadef_object.create",
        "metadef_object.delete",
        "metadef_namespace.delete_tags",
        "metadef_namespace.delete",
    ]
    update = notifier.sent[2].payload
    assert isinstance(update, dict) and (update["namespace"], update["namespace_old"]) == ("e2", "e")
    # a refused request sends nothing
    client.post(NS, json={"namespace": "x"}, headers=MEMBER_A)
    assert len(notifier.sent) == 7


@pytest.mark.parametrize(
    "name",
    ["namespace", "namespaces", "object", "objects", "property", "properties", "resource_type", "resource_types",
     "tag", "tags"],
)  # fmt: skip
def test_metadef_schemas__are_served_by_name(client: TestClient, name: str) -> None:
    response = client.get(f"/v2/schemas/metadefs/{name}", headers=READER_A)
    assert response.status_code == 200
    expected = {"resource_type": "resource_type_association", "resource_types": "resource_type_associations"}
    assert response.json()["name"] == expected.get(name, name)


def test_unknown_metadef_paths_and_methods__are_404_and_405(client: TestClient) -> None:
    assert client.get("/v2/schemas/metadefs/nope", headers=ADMIN).status_code == 404
    assert client.get("/v2/metadefs/nothing", headers=ADMIN).status_code == 404
    response = client.patch(f"{NS}/x", json={}, headers=ADMIN)
    assert response.status_code == 405 and "PUT" in response.headers["allow"]


def test_metadefs_routes__are_not_imported_by_the_app() -> None:
    # cold start: building the app (what the image path pays for) loads none of the catalog's modules
    script = (
        "import sys; from functions.api.app import create_app; from shared.config import Settings; "
        "create_app(Settings(auth_mode='trusted-headers')); print([m for m in sys.modules if 'metadef' in m])"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
