"""The HTTP contract under every client: version documents, request ids, error bodies, input rejection and
concurrent writers, checked with plain requests."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.api.support import A_MEMBER, PATCH_V21, TIMEOUT_S, GlanceHttp

pytestmark = pytest.mark.api

REQUEST_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MISSING_ID = "7c4b5f3e-7a8d-4c52-9d4e-2f3a1b0c9e8d"


def test_root__is_300_and_versions_is_200_with_the_same_document(http: GlanceHttp) -> None:
    root = http.request("GET", "/")
    versions = http.request("GET", "/versions")

    assert root.status_code == 300
    assert versions.status_code == 200
    assert root.json() == versions.json()
    listed = versions.json()["versions"]
    assert [v["status"] for v in listed].count("CURRENT") == 1
    assert "v2.0" in {v["id"] for v in listed}
    for version in listed:
        assert version["links"] == [{"rel": "self", "href": f"{http.endpoint}/v2/"}]


@pytest.mark.parametrize("prefix", ["/v2", "/v2.0", "/v2.1"])
def test_versioned_prefixes__reach_the_same_api(http: GlanceHttp, prefix: str) -> None:
    response = http.request("GET", f"{prefix}/images", params={"limit": 1})

    assert response.status_code == 200
    assert response.json()["schema"] == "/v2/schemas/images"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/versions", 200),
        ("GET", "/v2/images", 200),
        ("GET", "/v2/schemas/image", 200),
        ("GET", f"/v2/images/{MISSING_ID}", 404),
        ("GET", "/v2/images?sort_key=bogus", 400),
        ("PUT", "/v2/images", 405),
        ("GET", "/no/such/route", 404),
    ],
)
def test_every_response__carries_a_fresh_request_id(http: GlanceHttp, method: str, path: str, status: int) -> None:
    first = http.request(method, path)
    second = http.request(method, path)

    assert first.status_code == status
    assert REQUEST_ID.match(first.headers["x-openstack-request-id"])
    assert first.headers["x-openstack-request-id"] != second.headers["x-openstack-request-id"]


def test_error__for_a_json_client__is_webobs_json_body(http: GlanceHttp) -> None:
    response = http.request("GET", f"/v2/images/{MISSING_ID}", headers={"Accept": "application/json"})

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message", "code", "title"}
    assert (body["code"], body["title"]) == ("404 Not Found", "Not Found")
    assert MISSING_ID in body["message"]


@pytest.mark.parametrize("accept", ["*/*", None, "text/html", "text/plain"], ids=["any", "absent", "html", "text"])
def test_error__for_a_client_not_asking_for_json__is_not_json(http: GlanceHttp, accept: str | None) -> None:
    # webob picks text/html for */* and for no Accept header; glanceclient sends */* and cannot parse
    # {"message", "code", "title"} (glanceclient.exc.from_response expects nested objects), but reads HTML and text.
    response = http.request("GET", f"/v2/images/{MISSING_ID}", headers={"Accept": accept})

    assert response.status_code == 404
    assert not response.headers["content-type"].startswith("application/json")
    assert MISSING_ID in response.text


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2", b"\xff\xfe"], ids=["broken", "empty", "cut", "bytes"])
def test_create__malformed_json__is_400(http: GlanceHttp, body: bytes) -> None:
    response = http.request("POST", "/v2/images", headers={"Content-Type": "application/json"}, data=body)

    assert response.status_code == 400
    assert response.json()["code"] == "400 Bad Request"


def test_patch__malformed_json__is_400(http: GlanceHttp, tag: str) -> None:
    image = http.create(name="http-bad-patch", tags=[tag])

    response = http.request(
        "PATCH", f"/v2/images/{image['id']}", headers={"Content-Type": PATCH_V21}, data=b'[{"op": "replace",'
    )

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", f"/v2/images/{MISSING_ID}"), ("DELETE", f"/v2/images/{MISSING_ID}"), ("GET", "/v2/schemas/image")],
)
def test_routes_glance_marks_body_reject__with_a_body__are_400(http: GlanceHttp, method: str, path: str) -> None:
    response = http.request(method, path, headers={"Content-Type": "application/json"}, data=b'{"name": "x"}')

    assert response.status_code == 400


def test_list__with_a_body__ignores_it_as_glance_does(http: GlanceHttp) -> None:
    # glance/api/v2/router.py connects GET /images (index) without body_reject=True, unlike show and delete.
    response = http.request("GET", "/v2/images", headers={"Content-Type": "application/json"}, data=b'{"name": "x"}')

    assert response.status_code == 200


def test_name__longer_than_255__is_400_on_create_and_update(http: GlanceHttp, tag: str) -> None:
    image = http.create(name="n" * 255, tags=[tag])

    created = http.request("POST", "/v2/images", json={"name": "n" * 256, "tags": [tag]})
    patched = http.patch(image["id"], [{"op": "replace", "path": "/name", "value": "n" * 256}])

    assert image["name"] == "n" * 255
    assert created.status_code == 400
    assert patched.status_code == 400
    assert http.show(image["id"]).json()["name"] == "n" * 255


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("GET", "/v2/images/not-a-uuid", {}, None),
        ("DELETE", "/v2/images/not-a-uuid", {}, None),
        ("PATCH", "/v2/images/not-a-uuid", {"Content-Type": PATCH_V21}, b"[]"),
        ("PUT", "/v2/images/not-a-uuid/tags/x", {}, None),
        ("POST", "/v2/images/not-a-uuid/actions/deactivate", {}, None),
    ],
    ids=["get", "delete", "patch", "tag", "action"],
)
def test_image_id__that_is_not_a_uuid__is_404(
    http: GlanceHttp, method: str, path: str, headers: dict[str, str], body: bytes | None
) -> None:
    response = http.request(method, path, headers=headers, data=body)

    assert response.status_code == 404


def test_create__location_header__names_the_new_image(http: GlanceHttp, tag: str) -> None:
    response = http.request("POST", "/v2/images", json={"name": "http-location", "tags": [tag]})

    assert response.status_code == 201
    assert response.headers["Location"].endswith(f"/v2/images/{response.json()['id']}")


def test_unsupported_method__is_405_with_allow(http: GlanceHttp) -> None:
    response = http.request("PUT", "/v2/images")

    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed


# -- concurrent writers ----------------------------------------------------------------------------------


WRITERS = 10


def test_concurrent_patches__each_is_200_or_409_and_no_accepted_update_is_lost(http: GlanceHttp, tag: str) -> None:
    image_id = http.create(persona=A_MEMBER, name="http-race", tags=[tag])["id"]
    start = threading.Barrier(WRITERS)

    def write(i: int) -> tuple[int, dict[str, Any]]:
        with requests.Session() as own:
            writer = GlanceHttp(http.endpoint, own)
            start.wait(timeout=TIMEOUT_S)
            response = writer.patch(image_id, [{"op": "add", "path": f"/race_{i}", "value": str(i)}], persona=A_MEMBER)
            return response.status_code, response.json()

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(write, range(WRITERS)))
    final = http.show(image_id, persona=A_MEMBER).json()

    statuses = [status for status, _ in results]
    assert set(statuses) <= {200, 409}, results
    assert 200 in statuses
    for status, body in results:
        if status == 200:
            written = {k: v for k, v in body.items() if k.startswith("race_")}
            assert written.items() <= final.items(), (written, final)
    won = {f"race_{i}" for i, (status, _) in enumerate(results) if status == 200}
    assert won <= set(final)
