"""The data plane's app (functions/data_plane) over in-memory adapters: the API's own data routes without the API
function's body limit, streamed downloads, nothing else served; and the front door's routing rule."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from functions.api.app import create_app as create_api_app
from functions.data_plane.app import create_app
from shared.config import Settings
from shared.data.memory import MemoryImageRepository, MemoryTaskRepository
from shared.data_routes import is_data_route
from shared.notifications import RecordingNotifier
from shared.services.streamed_uploads import coalesced
from shared.upload_bucket.memory import MemoryUploadBucket
from tests.support.fakes import ListQueue
from tests.support.image_corpus import raw_image

MiB = 1024 * 1024
MEMBER_A = {"X-Project-Id": "project-a", "X-User-Id": "user-a", "X-Roles": "member,reader"}
OCTETS = {**MEMBER_A, "Content-Type": "application/octet-stream"}
# The API function's limit, as deployed behind API Gateway (redirected downloads).
DEPLOYED = Settings(auth_mode="trusted-headers", api_body_limit=64 * 1024, data_delivery="redirect")


@pytest.fixture
def overrides() -> dict[str, object]:
    """One set of in-memory adapters both planes share, as both share DynamoDB and S3 when deployed."""
    return {
        "image_repository": MemoryImageRepository(),
        "task_repository": MemoryTaskRepository(),
        "image_bucket": MemoryUploadBucket(),
        "notifier": RecordingNotifier(),
        "import_queue": ListQueue(),
        "store_sync_queue": ListQueue(),
    }


@pytest.fixture
def api(overrides: dict[str, object]) -> Iterator[TestClient]:
    with TestClient(create_api_app(DEPLOYED, overrides), headers={"Accept": "application/json"}) as client:
        yield client


@pytest.fixture
def data_plane(overrides: dict[str, object]) -> Iterator[TestClient]:
    with TestClient(create_app(DEPLOYED, overrides), headers={"Accept": "application/json"}) as client:
        yield client


def _new_image(api: TestClient) -> str:
    response = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}, headers=MEMBER_A)
    assert response.status_code == 201, response.text
    image_id: str = response.json()["id"]
    return image_id


def _chunks(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_put_file__over_the_api_limit__is_413_at_the_api_naming_the_data_plane(api: TestClient) -> None:
    image_id = _new_image(api)

    response = api.put(f"/v2/images/{image_id}/file", content=b"x" * (65 * 1024), headers=OCTETS)

    assert response.status_code == 413
    message = response.json()["message"]
    assert "data plane" in message and "/v2/images/{id}/upload" in message
    assert api.get(f"/v2/images/{image_id}", headers=MEMBER_A).json()["status"] == "queued"


def test_put_file__over_the_api_limit__is_active_through_the_data_plane(
    api: TestClient, data_plane: TestClient
) -> None:
    payload = raw_image(2 * MiB, random_bytes=True)
    image_id = _new_image(api)

    response = data_plane.put(f"/v2/images/{image_id}/file", content=_chunks(payload), headers=OCTETS)

    assert response.status_code == 204, response.text
    image = api.get(f"/v2/images/{image_id}", headers=MEMBER_A).json()
    assert (image["status"], image["size"]) == ("active", len(payload))
    assert image["checksum"] == hashlib.md5(payload).hexdigest()
    assert image["os_hash_value"] == hashlib.sha512(payload).hexdigest()


def test_put_stage__over_the_api_limit__is_staged_through_the_data_plane_and_413_at_the_api(
    api: TestClient, data_plane: TestClient
) -> None:
    payload = raw_image(1 * MiB, random_bytes=True)
    refused, staged = _new_image(api), _new_image(api)

    at_api = api.put(f"/v2/images/{refused}/stage", content=_chunks(payload), headers=OCTETS)
    at_data_plane = data_plane.put(f"/v2/images/{staged}/stage", content=_chunks(payload), headers=OCTETS)

    assert at_api.status_code == 413 and "data plane" in at_api.json()["message"]
    assert api.get(f"/v2/images/{refused}", headers=MEMBER_A).json()["status"] == "queued"
    assert at_data_plane.status_code == 204, at_data_plane.text
    assert api.get(f"/v2/images/{staged}", headers=MEMBER_A).json()["status"] == "uploading"


def test_get_file__streams_from_the_data_plane_where_the_api_redirects(api: TestClient, data_plane: TestClient) -> None:
    payload = raw_image(1 * MiB, random_bytes=True)
    image_id = _new_image(api)
    assert data_plane.put(f"/v2/images/{image_id}/file", content=payload, headers=OCTETS).status_code == 204

    redirected = api.get(f"/v2/images/{image_id}/file", headers=MEMBER_A, follow_redirects=False)
    streamed = data_plane.get(f"/v2/images/{image_id}/file", headers=MEMBER_A)

    assert redirected.status_code == 302
    assert streamed.status_code == 200 and streamed.content == payload
    assert streamed.headers["content-md5"] == hashlib.md5(payload).hexdigest()


def test_data_plane__without_credentials_is_401_as_the_api() -> None:
    keystone = Settings(auth_mode="keystone", keystone_url="https://keystone.example/v3")
    with TestClient(create_app(keystone, {"image_repository": MemoryImageRepository()})) as client:
        response = client.put("/v2/images/0f1c1a1d-3b7e-4c51-a0e1-b3b0c0ffee01/file", content=b"x")

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Keystone")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/images"), ("POST", "/v2/images"), ("GET", "/versions"), ("POST", "/v2/images/x/upload")],
)
def test_data_plane__serves_no_other_route(data_plane: TestClient, method: str, path: str) -> None:
    assert data_plane.request(method, path, headers=MEMBER_A).status_code == 404


def test_data_plane__other_methods_of_a_data_route__are_405_with_allow_as_the_api(
    api: TestClient, data_plane: TestClient
) -> None:
    responses = [client.delete("/v2/images/x/file", headers=MEMBER_A) for client in (api, data_plane)]

    assert [(r.status_code, r.headers["allow"]) for r in responses] == [(405, "GET, PUT")] * 2


def test_data_plane__healthcheck__answers_without_credentials(data_plane: TestClient) -> None:
    response = data_plane.get("/healthcheck")

    assert (response.status_code, response.text) == (200, "OK")


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/v2/images/abc/file", True),
        ("/v2/images/abc/stage", True),
        ("/v2.9/images/abc/file", True),
        ("/v2/images/abc/file?prefer=s3", True),
        ("/v2/images/abc", False),
        ("/v2/images/abc/upload", False),
        ("/v2/images/abc/import", False),
        ("/v2/images/abc/file/x", False),
        ("/v2/images", False),
        ("/v2/images/abc/FILE", False),
        ("/", False),
    ],
)
def test_front_door_rule__sends_only_image_data_paths_to_the_data_plane(path: str, data: bool) -> None:
    assert is_data_route(path) is data


def test_settings__for_the_data_plane__lift_the_body_limit_and_stream() -> None:
    settings = DEPLOYED.for_data_plane()

    assert (settings.api_body_limit, settings.data_delivery) == (0, "stream")
    assert settings.image_size_cap == DEPLOYED.image_size_cap


def test_settings__trusted_headers_inside_an_ecs_task__refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", "http://169.254.170.2/v4/abc")
    monkeypatch.setenv("SGLANCE_AUTH_MODE", "trusted-headers")

    with pytest.raises(ValueError, match="cannot run in a deployed function or task"):
        Settings()


@pytest.mark.parametrize(
    "sizes", [[], [3], [1, 1, 1, 1], [5, 1], [2, 9, 1, 1, 2], [4, 4, 4]], ids=lambda s: "-".join(map(str, s)) or "none"
)
def test_coalesced__joins_small_chunks_into_pieces_of_at_least_the_size_in_order(sizes: list[int]) -> None:
    chunks = [bytes([i]) * n for i, n in enumerate(sizes)]

    pieces = list(coalesced(chunks, 4))

    assert b"".join(pieces) == b"".join(chunks)
    assert all(len(piece) >= 4 for piece in pieces[:-1])
    assert all(pieces)


def test_runtime_dependencies__hold_the_data_planes_server() -> None:
    # the container image installs [project.dependencies] only (infra/packaging.py), never the dev extras
    from infra.packaging import runtime_requirements

    assert any(requirement.startswith("uvicorn") for requirement in runtime_requirements())


def test_access_log__names_the_entry_point(
    api: TestClient, data_plane: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO"):
        api.get("/versions")
        data_plane.get("/v2/images/00000000-0000-0000-0000-000000000000/file", headers=MEMBER_A)

    services = {record.name for record in caplog.records if record.getMessage() == "request"}
    assert services == {"serverless-glance-api", "serverless-glance-data-plane"}
