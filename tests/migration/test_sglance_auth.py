"""``sglance`` authenticates as every OpenStack tool does, against the target in Keystone mode with the real test
Keystone: from ``OS_*`` variables alone, from a token, and it says why when the credentials are wrong."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devstack.stack import DevStack
from tests.backends.keystone.accounts import KeystoneEnv
from tests.migration.conftest import BIN, Sides

pytestmark = [pytest.mark.integration, pytest.mark.keystone]


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "SGLANCE_"))}
    # no clouds.yaml of the person running the tests either
    clean["OS_CLIENT_CONFIG_FILE"] = os.devnull
    return subprocess.run(
        [str(BIN / "sglance"), *args], capture_output=True, text=True, env={**clean, **env}, timeout=120, check=False
    )


def _os_environment(keystone: KeystoneEnv, account: str, password: str | None = None) -> dict[str, str]:
    user = keystone.accounts[account]
    return {
        "OS_AUTH_URL": keystone.url,
        "OS_USERNAME": user.name,
        "OS_PASSWORD": password or user.password,
        "OS_PROJECT_NAME": str(user.project),
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": keystone.region,
    }


def test_os_variables__create_an_image_owned_by_the_user_project(
    keystone: KeystoneEnv, target: DevStack, target_admin: Sides, tmp_path: Path
) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(os.urandom(1024 * 1024))
    env = {**_os_environment(keystone, "member-a"), "SGLANCE_ENDPOINT": target.endpoint}

    done = _run(env, "create", "from-os-env", str(path), "-q")

    assert done.returncode == 0, done.stderr
    image = target_admin.image("target", done.stdout.split()[1])
    assert image is not None
    assert (image["status"], image["owner"]) == ("active", keystone.accounts["member-a"].project_id)


def test_a_token__with_an_endpoint__is_sent_as_it_is(
    keystone: KeystoneEnv, target: DevStack, target_admin: Sides, tmp_path: Path
) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(os.urandom(4096))
    token = keystone.token("member-b")

    done = _run({}, "create", "from-token", str(path), "-q", "--token", token, "--endpoint", target.endpoint)

    assert done.returncode == 0, done.stderr
    image = target_admin.image("target", done.stdout.split()[1])
    assert image is not None
    assert image["owner"] == keystone.accounts["member-b"].project_id


def test_wrong_credentials__exit_1_saying_authentication_failed(keystone: KeystoneEnv, target: DevStack) -> None:
    env = {**_os_environment(keystone, "member-a", password="wrong"), "SGLANCE_ENDPOINT": target.endpoint}

    done = _run(env, "status", "00000000-0000-0000-0000-000000000000")

    assert done.returncode == 1
    assert "authentication failed" in done.stderr
    assert "wrong" not in done.stderr
