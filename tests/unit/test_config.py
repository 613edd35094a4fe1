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
    assert Settings().auth_mode == "keystone"


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


def test_api__in_keystone_mode__answers_501_until_keystone_lands() -> None:
    app = create_app(Settings(auth_mode="keystone"), {"image_repository": MemoryImageRepository()})
    with TestClient(app, headers={"Accept": "application/json"}) as client:
        response = client.get("/v2/images")
        versions = client.get("/versions")
    assert response.status_code == 501
    assert response.json()["title"] == "Not Implemented"
    assert versions.status_code == 200
