"""Smoke runs of the ``openstack`` CLI (python-openstackclient) as a subprocess, with the command line ``make run``
prints: ``--os-auth-type none --os-endpoint URL``. Without identity headers the stack uses its development
identity (an admin).

``openstack image create`` without ``--file`` reads image data from stdin whenever stdin is not a terminal (and
fails when stdin is closed), then uploads it with ``PUT /file``, which is not built yet. Giving the process a
pseudo-terminal as stdin is what an interactive user has: the CLI then only registers the image.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.api

OPENSTACK = Path(sys.executable).parent / "openstack"
CLI_TIMEOUT_S = 60


def _openstack(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    # A clouds.yaml or OS_* variables of the person running the tests must not redirect the CLI.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    command = [str(OPENSTACK), "--os-auth-type", "none", "--os-endpoint", endpoint, "--os-image-api-version", "2"]
    terminal, user_side = pty.openpty()
    try:
        return subprocess.run(
            [*command, *args],
            stdin=user_side,
            capture_output=True,
            text=True,
            env=env,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(user_side)


def _openstack_json(endpoint: str, *args: str) -> Any:
    result = _openstack(endpoint, *args, "-f", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _ok(endpoint: str, *args: str) -> None:
    result = _openstack(endpoint, *args)
    assert result.returncode == 0, result.stderr


def test_cli__create_list_show_set_unset_delete(endpoint: str, tag: str) -> None:
    name = f"cli-{tag}"

    created = _openstack_json(
        endpoint,
        "image", "create", name,
        "--disk-format", "qcow2", "--container-format", "bare",
        "--property", "app_tier=web", "--tag", tag,
    )  # fmt: skip
    image_id = created["id"]
    listed = _openstack_json(endpoint, "image", "list", "--tag", tag, "--long")
    _ok(endpoint, "image", "set", "--name", f"{name}-2", "--property", "app_release=7", "--tag", "gold", image_id)
    after_set = _openstack_json(endpoint, "image", "show", image_id)
    _ok(endpoint, "image", "unset", "--property", "app_tier", "--tag", "gold", image_id)
    after_unset = _openstack_json(endpoint, "image", "show", image_id)
    _ok(endpoint, "image", "delete", image_id)
    missing = _openstack(endpoint, "image", "show", image_id)

    assert (created["name"], created["status"], created["disk_format"]) == (name, "queued", "qcow2")
    assert created["properties"]["app_tier"] == "web"
    assert [(row["ID"], row["Name"], row["Status"], row["Tags"]) for row in listed] == [
        (image_id, name, "queued", [tag])
    ]
    assert after_set["name"] == f"{name}-2"
    assert after_set["properties"]["app_release"] == "7"
    assert sorted(after_set["tags"]) == sorted([tag, "gold"])
    assert "app_tier" not in after_unset["properties"]
    assert after_unset["properties"]["app_release"] == "7"
    assert after_unset["tags"] == [tag]
    assert missing.returncode != 0
    assert image_id in missing.stderr


def test_cli__list_with_filters__shows_only_matching_images(endpoint: str, tag: str) -> None:
    for name, disk_format in (("cli-raw", "raw"), ("cli-iso", "iso")):
        _ok(endpoint, "image", "create", f"{name}-{tag}", "--disk-format", disk_format, "--tag", tag, "--private")

    listed = _openstack_json(endpoint, "image", "list", "--tag", tag, "--private", "--sort", "name:asc", "--long")
    by_name = _openstack_json(endpoint, "image", "list", "--tag", tag, "--name", f"cli-iso-{tag}")

    assert [(row["Name"], row["Disk Format"], row["Visibility"]) for row in listed] == [
        (f"cli-iso-{tag}", "iso", "private"),
        (f"cli-raw-{tag}", "raw", "private"),
    ]
    assert [row["Name"] for row in by_name] == [f"cli-iso-{tag}"]


def test_cli__stores_list_and_copy_image_to_a_store(endpoint: str, tag: str, tmp_path: Path) -> None:
    stores = _openstack_json(endpoint, "image", "stores", "list")
    assert [s["ID"] for s in stores] == ["s3", "file1", "file2"]
    data = tmp_path / "disk.raw"
    data.write_bytes(os.urandom(256 * 1024))
    created = _openstack_json(
        endpoint, "image", "create", "--disk-format", "raw", "--container-format", "bare",
        "--file", str(data), "--tag", tag, f"cli-copy-{tag}",
    )  # fmt: skip
    _ok(endpoint, "image", "import", created["id"], "--method", "copy-image", "--store", "file1")
    deadline = time.monotonic() + 30
    # the CLI shows "stores" among the image's properties
    while "file1" not in _openstack_json(endpoint, "image", "show", created["id"])["properties"].get("stores", ""):
        assert time.monotonic() < deadline, "the copy to file1 did not finish"
        time.sleep(0.2)
    _ok(endpoint, "image", "delete", created["id"])


def test_cli__a_refused_web_download__is_a_failed_task_and_os_glance_failed_import(
    endpoint: str, tag: str, http: Any
) -> None:
    """openstacksdk ignores the 400 of the import call, so `image import` exits 0 and prints the queued image; the
    refusal is where users look for failed imports (docs/uploads.md)."""
    image = _openstack_json(
        endpoint,
        "image",
        "create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--tag",
        tag,
        f"refused-{tag}",
    )
    uri = "http://169.254.169.254/latest/meta-data/"

    result = _openstack(endpoint, "image", "import", "--method", "web-download", "--uri", uri, image["id"])

    assert result.returncode == 0, result.stderr  # the SDK's gap, not ours
    shown = _openstack_json(endpoint, "image", "show", image["id"])
    assert shown["status"] == "queued"
    assert shown["properties"]["os_glance_failed_import"] == "s3"
    tasks = http.request("GET", f"/v2/images/{image['id']}/tasks").json()["tasks"]
    assert [t["status"] for t in tasks] == ["failure"]
    assert tasks[0]["message"].startswith("The import was refused: URL not allowed")
    assert "SGLANCE_WEB_DOWNLOAD_" in tasks[0]["message"]  # the setting that would allow it
