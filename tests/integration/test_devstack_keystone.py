"""The local stack in Keystone mode (devstack/keystone.py): real tokens, the catalog and a clouds.yaml that works."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import openstack
import pytest
import requests

from devstack import keystone as keystone_mode
from devstack.stack import DevStack
from tests.backends.keystone.accounts import KeystoneEnv

pytestmark = [pytest.mark.integration, pytest.mark.keystone]


@pytest.fixture(scope="module")
def stack(keystone: KeystoneEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevStack, Path]]:
    mode = keystone_mode.mode_for(keystone)
    state = tmp_path_factory.mktemp("devstack-keystone")
    # glance-download from the catalog's image endpoint (this stack, on loopback) needs it allowlisted, as an
    # operator allowlists an internal regional endpoint
    allow = {"web_download_allowed_hosts": "127.0.0.1", "web_download_allowed_ports": ""}
    with DevStack(api_port=0, aws_port=0, state_dir=state, auth={**mode.settings, **allow}) as running:
        session = keystone_mode.admin_session(mode)
        previous = keystone_mode.register_endpoint(session, running.endpoint, mode.region)
        clouds = keystone_mode.write_clouds_yaml(mode, running.endpoint, state / "clouds.yaml")
        try:
            yield running, clouds
        finally:
            # the session's Keystone is shared: the real Glance of the migration tests is its catalog's image too
            keystone_mode.restore_endpoints(session, previous)


def test_keystone_mode__validates_real_tokens_and_refuses_trusted_headers(
    stack: tuple[DevStack, Path], keystone: KeystoneEnv
) -> None:
    running, _ = stack
    url = f"{running.endpoint}/v2/images"

    assert requests.get(url, headers={"X-Auth-Token": keystone.token("member-a")}, timeout=30).status_code == 200
    refused = requests.get(url, headers={"X-Project-Id": "p", "X-Roles": "admin"}, timeout=30)
    assert refused.status_code == 401
    assert running.settings.auth_mode == "keystone"
    # processes built from the environment (handlers, a data plane) see the same identity settings
    assert os.environ["SGLANCE_AUTH_MODE"] == "keystone"
    assert os.environ["SGLANCE_KEYSTONE_URL"] == keystone.url


def test_keystone_mode__registers_the_stack_as_the_catalogs_image_endpoint(
    stack: tuple[DevStack, Path], keystone: KeystoneEnv
) -> None:
    running, _ = stack
    session = keystone_mode.admin_session(keystone_mode.mode_for(keystone))

    assert session.get_endpoint(service_type="image", interface="public") == running.endpoint


# openstacksdk's cloud config warns about its own optional InfluxDB support when it reads a clouds.yaml.
@pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning")
@pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning")
def test_clouds_yaml__lets_openstacksdk_share_an_image_between_two_projects(
    stack: tuple[DevStack, Path], keystone: KeystoneEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, clouds = stack
    assert stat.S_IMODE(clouds.stat().st_mode) == 0o600
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    owner = openstack.connect(cloud="sglance-member-a")
    member = openstack.connect(cloud="sglance-member-b")
    try:
        image = owner.image.create_image(name="shared", disk_format="raw", container_format="bare", visibility="shared")
        owner.image.add_member(image, member_id=keystone.projects["project-b"])
        member.image.update_member(keystone.projects["project-b"], image, status="accepted")

        assert image.id in [listed.id for listed in member.image.images()]
        assert image.owner == keystone.projects["project-a"]
    finally:
        owner.close()
        member.close()


def test_clouds_yaml__of_a_named_keystone__leaves_the_account_to_fill_in() -> None:
    mode = keystone_mode.named_keystone("https://keystone.example/v3/")

    text = keystone_mode.clouds_yaml(mode, "http://127.0.0.1:9292")

    assert "auth_url: https://keystone.example/v3\n" in text
    assert "image_endpoint_override: http://127.0.0.1:9292" in text
    assert "username: <your user>" in text
    assert mode.settings == {"auth_mode": "keystone", "keystone_url": "https://keystone.example/v3"}


def test_keystone_mode__the_data_plane_validates_the_same_tokens(
    stack: tuple[DevStack, Path], keystone: KeystoneEnv
) -> None:
    running, _ = stack
    assert running.data_plane_endpoint is not None
    token = {"X-Auth-Token": keystone.token("member-a")}
    body = {"disk_format": "raw", "container_format": "bare"}
    image_id = requests.post(f"{running.endpoint}/v2/images", json=body, headers=token, timeout=30).json()["id"]
    data = os.urandom(6 * 1024 * 1024)  # over the API function's limit: only the data plane takes it
    octets = {"Content-Type": "application/octet-stream"}
    file_url = f"{running.endpoint}/v2/images/{image_id}/file"

    anonymous = requests.put(file_url, data=data, headers=octets, timeout=60)
    trusted = requests.put(file_url, data=data, headers={**octets, "X-Project-Id": "p", "X-Roles": "admin"}, timeout=60)
    uploaded = requests.put(file_url, data=data, headers={**octets, **token}, timeout=60)
    downloaded = requests.get(file_url, headers=token, timeout=60)

    assert (anonymous.status_code, trusted.status_code) == (401, 401)
    assert anonymous.headers["www-authenticate"].startswith("Keystone")
    assert uploaded.status_code == 204, uploaded.text
    assert downloaded.status_code == 200 and downloaded.content == data


def test_glance_download__from_the_catalogs_image_endpoint__copies_the_image_as_tempest_checks(
    stack: tuple[DevStack, Path], keystone: KeystoneEnv
) -> None:
    running, _ = stack
    headers = {"X-Auth-Token": keystone.token("member-a")}
    url = f"{running.endpoint}/v2/images"
    payload = os.urandom(1024 * 1024 + 3)
    source = {"disk_format": "raw", "container_format": "bare", "hw_cpu_cores": "5", "os_distro": "rhel", "speed": "1"}
    src = requests.post(url, json=source, headers=headers, timeout=30).json()["id"]
    put = {**headers, "Content-Type": "application/octet-stream"}
    assert requests.put(f"{url}/{src}/file", data=payload, headers=put, timeout=60).status_code == 204
    target = {"disk_format": "iso", "container_format": "ovf", "hw_cpu_cores": "1", "os_distro": "windows"}
    dst = requests.post(url, json=target, headers=headers, timeout=30).json()["id"]
    method = {"name": "glance-download", "glance_region": keystone.region, "glance_image_id": src}
    started = requests.post(f"{url}/{dst}/import", json={"method": method}, headers=headers, timeout=30)
    assert started.status_code == 202, started.text

    image: dict[str, object] = {}
    for _ in range(120):  # a bound on waiting, not a timing assertion
        image = requests.get(f"{url}/{dst}", headers=headers, timeout=30).json()
        if image["status"] in ("active", "queued"):
            break
        time.sleep(0.5)
    assert image["status"] == "active", image
    assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
    assert (image["hw_cpu_cores"], image["os_distro"]) == ("5", "rhel")
    assert "speed" not in image
    tasks = requests.get(f"{url}/{dst}/tasks", headers=headers, timeout=30).json()["tasks"]
    assert [task["status"] for task in tasks] == ["success"]
    assert requests.get(f"{url}/{dst}/file", headers=headers, timeout=60).content == payload
