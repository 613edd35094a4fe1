"""``sglance.migrate.plan``: what one image needs, from the source's and the target's JSON (no HTTP)."""

from __future__ import annotations

from typing import Any

import pytest

from sglance.migrate.plan import (
    create_body,
    data_step,
    extra_properties,
    member_changes,
    metadata_patch,
    plan_image,
)

SOURCE: dict[str, Any] = {
    "id": "0b5e6c2e-3c53-4e4a-9c57-6f2b1d0f6a11",
    "name": "ubuntu",
    "status": "active",
    "visibility": "shared",
    "protected": False,
    "os_hidden": False,
    "owner": "p1",
    "min_disk": 2,
    "min_ram": 512,
    "disk_format": "qcow2",
    "container_format": "bare",
    "size": 10,
    "virtual_size": 20,
    "checksum": "c" * 32,
    "os_hash_algo": "sha512",
    "os_hash_value": "h" * 128,
    "tags": ["b", "a"],
    "os_distro": "ubuntu",
    "os_glance_import_task": "t-1",
    "stores": "local",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "self": "/v2/images/x",
    "file": "/v2/images/x/file",
    "schema": "/v2/schemas/image",
}


def _target(**changes: Any) -> dict[str, Any]:
    copy = {**SOURCE, "stores": "s3", "created_at": "2026-02-02T00:00:00Z", "os_glance_import_task": None}
    copy.pop("os_glance_import_task")
    return {**copy, **changes}


def test_create_body__keeps_the_id_base_fields_tags_and_extra_properties_only() -> None:
    body = create_body(SOURCE)

    assert body == {
        "id": SOURCE["id"],
        "tags": ["a", "b"],
        "name": "ubuntu",
        "disk_format": "qcow2",
        "container_format": "bare",
        "visibility": "shared",
        "protected": False,
        "os_hidden": False,
        "owner": "p1",
        "min_disk": 2,
        "min_ram": 512,
        "os_distro": "ubuntu",
    }


def test_extra_properties__leave_out_reserved_and_computed_ones() -> None:
    assert extra_properties(SOURCE) == {"os_distro": "ubuntu"}


def test_metadata_patch__of_an_equal_copy__is_empty_whatever_the_stores_and_dates() -> None:
    assert metadata_patch(SOURCE, _target(tags=["a", "b"])) == []


def test_metadata_patch__replaces_changed_fields_adds_and_removes_properties() -> None:
    target = _target(name="old", protected=True, tags=["a"], os_distro="debian", stale="x")
    target["weird/key"] = "y"

    patch = metadata_patch({**SOURCE, "hw~disk": "virtio"}, target)

    assert patch == [
        {"op": "replace", "path": "/name", "value": "ubuntu"},
        {"op": "replace", "path": "/protected", "value": False},
        {"op": "replace", "path": "/tags", "value": ["a", "b"]},
        {"op": "add", "path": "/hw~0disk", "value": "virtio"},
        {"op": "replace", "path": "/os_distro", "value": "ubuntu"},
        {"op": "remove", "path": "/stale"},
        {"op": "remove", "path": "/weird~1key"},
    ]


def test_metadata_patch__leaves_formats_of_an_active_image_alone() -> None:
    assert metadata_patch(SOURCE, _target(disk_format="raw")) == []
    assert metadata_patch(SOURCE, _target(status="queued", disk_format="raw")) == [
        {"op": "replace", "path": "/disk_format", "value": "qcow2"}
    ]


def test_member_changes__adds_sets_non_pending_statuses_and_removes_extras() -> None:
    changes = member_changes({"a": "accepted", "b": "pending", "c": "rejected"}, {"c": "accepted", "z": "pending"})

    assert dict(changes.add) == {"a": "accepted", "b": "pending"}
    assert dict(changes.set_status) == {"c": "rejected", "a": "accepted"}
    assert changes.remove == ("z",)
    assert not member_changes({"a": "pending"}, {"a": "pending"})


@pytest.mark.parametrize(
    ("target", "session", "step"),
    [
        (None, None, "copy"),
        ({"status": "queued"}, None, "copy"),
        ({"status": "importing"}, None, "wait"),
        ({"status": "uploading"}, {"image_status": "uploading", "method": "multipart", "size": 10}, "resume"),
        ({"status": "uploading"}, {"image_status": "uploading", "method": "multipart", "size": 11}, "restart"),
        ({"status": "uploading"}, {"image_status": "uploading", "method": "single", "size": 10}, "restart"),
        ({"status": "uploading"}, {"image_status": "importing", "method": "single", "size": 10}, "wait"),
        ("same", None, "done"),
        ("other-data", None, "conflict"),
        ({"status": "killed"}, None, "conflict"),
    ],
)
def test_data_step__follows_the_target_state(target: Any, session: Any, step: str) -> None:
    if target == "same":
        target = _target()
    elif target == "other-data":
        target = _target(checksum="d" * 32)

    assert data_step(SOURCE, target, session) == step


def test_data_step__of_a_queued_source__is_none() -> None:
    assert data_step({**SOURCE, "status": "queued"}, None) == "none"


def test_plan_image__of_a_deactivated_source__copies_then_deactivates() -> None:
    plan = plan_image({**SOURCE, "status": "deactivated"}, {"m": "accepted"}, None, {})

    assert plan.steps == ["create", "copy", "members", "deactivate"]
    assert plan.size == 10


def test_plan_image__of_a_copy_deactivated_while_the_source_is_active__reactivates() -> None:
    plan = plan_image(SOURCE, {}, _target(status="deactivated"), {})

    assert plan.steps == ["reactivate"]


def test_plan_image__of_an_unsettled_source__skips_it() -> None:
    plan = plan_image({**SOURCE, "status": "saving"}, {}, None, {})

    assert plan.skip_reason == "the source image is saving"
    assert plan.steps == []


def test_plan_image__ignores_members_of_a_source_that_is_not_shared() -> None:
    plan = plan_image({**SOURCE, "visibility": "private"}, {"m": "accepted"}, _target(visibility="private"), {})

    assert plan.unchanged
