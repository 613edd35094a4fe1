"""Settings: validation, environment parsing, and the dev auth mode that can never be deployed."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from functions.api.app import create_app
from shared.config import Settings
from shared.data.memory import MemoryImageRepository


def test_settings__trusted_headers_inside_lambda__refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "sglance-api")
    monkeypatch.setenv("SGLANCE_AUTH_MODE", "trusted-headers")
    with pytest.raises(ValidationError, match="cannot run in a deployed function"):
        Settings()


def test_settings__keystone_inside_lambda__is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "sglance-api")
    monkeypatch.setenv("SGLANCE_KEYSTONE_URL", "https://keystone.example/v3")
    monkeypatch.setenv("SGLANCE_KEYSTONE_SERVICE_PASSWORD_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:k")
    assert Settings().auth_mode == "keystone"


@pytest.mark.parametrize(
    "env",
    [{}, {"SGLANCE_KEYSTONE_URL": "https://keystone.example/v3"}],
    ids=["no keystone url", "no service password"],
)
def test_settings__keystone_inside_lambda_without_keystone_settings__refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "sglance-api")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="in a deployed function"):
        Settings()


def test_settings__comma_separated_lists__are_parsed_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SGLANCE_DISK_FORMATS", "raw, qcow2")
    monkeypatch.setenv("SGLANCE_DEV_ROLES", "member,reader")
    settings = Settings()
    assert settings.disk_formats == ("raw", "qcow2")
    assert settings.dev_roles == ("member", "reader")


def test_settings__default_limit_above_the_cap__is_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(limit_param_default=50, api_limit_max=10)


def test_settings__unknown_auth_mode__is_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(auth_mode="none")  # type: ignore[arg-type]


def test_api__in_keystone_mode_without_a_token__answers_401_naming_keystone() -> None:
    settings = Settings(auth_mode="keystone", keystone_url="https://keystone.example/v3")
    app = create_app(settings, {"image_repository": MemoryImageRepository()})
    with TestClient(app, headers={"Accept": "application/json"}) as client:
        response = client.get("/v2/images")
        versions = client.get("/versions")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Keystone uri="https://keystone.example/v3"'
    assert response.json()["error"]["title"] == "Unauthorized"
    assert versions.status_code == 200
