"""The API as deployed behind API Gateway: the Mangum handler, presigned-GET redirects, and the body limit."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from devstack.provision import provision
from functions.api.app import create_app
from shared.config import Settings, get_settings
from shared.resources import resources_for

pytestmark = pytest.mark.integration

REGION = "us-east-1"
HEADERS = {"X-Project-Id": "project-a", "X-User-Id": "u", "X-Roles": "member,reader", "Accept": "application/json"}


@pytest.fixture
def deployed_settings(moto_reset: str) -> Settings:
    settings = Settings(
        aws_endpoint_url=moto_reset,
        aws_region=REGION,
        auth_mode="trusted-headers",
        data_delivery="redirect",
        api_body_limit=64 * 1024,
    )
    provision(resources_for(settings), moto_reset, REGION)
    return settings


@pytest.fixture
def client(deployed_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(deployed_settings), headers=HEADERS) as test_client:
        yield test_client


def _active_image(client: TestClient, payload: bytes) -> str:
    image_id: str = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]
    response = client.put(
        f"/v2/images/{image_id}/file", content=payload, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 204, response.text
    return image_id


def test_download__redirects_to_a_short_lived_presigned_get_that_serves_the_bytes(client: TestClient) -> None:
    payload = b"image bytes " * 1000
    image_id = _active_image(client, payload)

    response = client.get(f"/v2/images/{image_id}/file", follow_redirects=False)

    assert response.status_code == 302
    location = response.headers["location"]
    assert "X-Amz-Expires=900" in location and "X-Amz-Signature=" in location
    fetched = requests.get(location, timeout=30)
    assert fetched.content == payload
    assert hashlib.md5(fetched.content).hexdigest() == client.get(f"/v2/images/{image_id}").json()["checksum"]


def test_put_file__over_the_payload_limit__is_413_naming_the_presigned_upload(client: TestClient) -> None:
    image_id = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()["id"]

    response = client.put(
        f"/v2/images/{image_id}/file",
        content=b"\0" * (64 * 1024 + 1),
        headers={"Content-Type": "application/octet-stream"},
    )

    assert response.status_code == 413
    assert "/v2/images/{id}/upload" in response.json()["message"]
    assert client.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def _api_gateway_event(
    method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {**HEADERS, **(headers or {}), "host": "abc123.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "t"},
            "requestId": "gw-req",
            "routeKey": "$default",
            "stage": "$default",
            "time": "29/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1795942800000,
        },
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


class _Context:
    function_name = "sglance-api"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sglance-api"
    aws_request_id = "lambda-req"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def test_lambda_handler__serves_the_api_through_mangum(
    deployed_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SGLANCE_AUTH_MODE", "trusted-headers")
    monkeypatch.setenv("SGLANCE_AWS_ENDPOINT_URL", deployed_settings.aws_endpoint_url or "")
    get_settings.cache_clear()
    import functions.api.handler as module

    handler = importlib.reload(module)
    try:
        versions = handler.handler(_api_gateway_event("GET", "/versions"), _Context())
        created = handler.handler(
            _api_gateway_event("POST", "/v2/images", json.dumps({"name": "via-lambda"}).encode(),
                               {"content-type": "application/json"}),
            _Context(),
        )  # fmt: skip
    finally:
        get_settings.cache_clear()

    assert versions["statusCode"] == 200
    assert json.loads(versions["body"])["versions"][0]["id"] == "v2.17"
    assert versions["headers"]["x-openstack-request-id"].startswith("req-")
    assert created["statusCode"] == 201
    assert json.loads(created["body"])["name"] == "via-lambda"
