"""``sglance migrate`` from a real Glance 33 into the local stack, both behind one real Keystone, run as an operator
runs it: ``sglance --os-cloud sglance-admin migrate`` with a clouds.yaml, the source found in the catalog.

The corpus (tests/migration/corpus.py) has 30 images of two projects: every visibility, members with every status
(set by the member projects themselves), sizes from 0 bytes to 72 MiB (sent in 8 MiB parts), raw, qcow2 and iso data,
tags, properties, min_disk/min_ram, protected, hidden, deactivated and a queued image without data. The module runs
the migration once (``first_run``), then checks what the target holds field by field, that a second run changes
nothing, that a change to one source image is the only update, that a run killed mid-copy is resumed part by part,
and what a project member without admin can and cannot migrate.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.migration.conftest import Run, Sides, report_of
from tests.migration.corpus import BIG_SIZE, GlanceImages, GlanceUsers, Spec, _named, specs

pytestmark = [pytest.mark.integration, pytest.mark.keystone, pytest.mark.glance]

MiB = 1024 * 1024
# What the target may show differently: computed per copy, or where the bytes are.
NOT_COMPARED = {"created_at", "updated_at", "stores", "self", "file", "schema", "locations", "direct_url"}
MIGRATE = ("--os-cloud", "sglance-admin", "migrate", "--format", "json", "-q")
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


def _comparable(image: dict[str, Any]) -> dict[str, Any]:
    # Tags are a set: Glance lists them in any order.
    return {key: sorted(value) if key == "tags" else value for key, value in image.items() if key not in NOT_COMPARED}


@pytest.fixture(scope="module")
def dry_run(corpus: GlanceImages, sglance: Run) -> subprocess.CompletedProcess[str]:
    """``migrate --dry-run`` before anything was copied."""
    return sglance(*MIGRATE, "--dry-run")


@pytest.fixture(scope="module")
def first_run(dry_run: subprocess.CompletedProcess[str], sglance: Run) -> dict[str, Any]:
    """The first migration of the whole corpus (after the dry run)."""
    done = sglance(*MIGRATE, "--parallel", "6")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return report_of(done)


def test_dry_run__plans_every_image_and_changes_nothing(
    dry_run: subprocess.CompletedProcess[str], corpus: GlanceImages, admin: Sides
) -> None:
    assert dry_run.returncode == 0, dry_run.stderr
    plans = {plan["id"]: plan for plan in report_of(dry_run)}

    assert set(corpus.ids.values()) <= set(plans)
    assert plans[corpus.ids["mig-queued"]]["would"] == ["create"]
    assert plans[corpus.ids["mig-deactivated"]]["would"] == ["create", "copy", "deactivate"]
    assert plans[corpus.ids["mig-shared-0"]]["would"] == ["create", "copy", "members"]
    assert all(admin.image("target", image_id) is None for image_id in corpus.ids.values())


def test_dry_run__with_filters__plans_only_the_matching_images(
    corpus: GlanceImages, sglance: Run, admin: Sides, users: GlanceUsers
) -> None:
    project_b = users.keystone.projects["project-b"]
    expected = {
        image_id
        for image_id in corpus.ids.values()
        if (image := admin.image("glance", image_id))
        and image["owner"] == project_b
        and image["visibility"] in ("private", "community")
    }

    by_owner = sglance(
        *MIGRATE, "--dry-run", "--project", project_b, "--visibility", "private", "--visibility", "community"
    )
    by_id = sglance(*MIGRATE, "--dry-run", "--image", corpus.ids["mig-big"], "--image", corpus.ids["mig-iso"])

    assert {plan["id"] for plan in report_of(by_owner)} == expected
    assert len(expected) >= 4
    assert {plan["id"] for plan in report_of(by_id)} == {corpus.ids["mig-big"], corpus.ids["mig-iso"]}


def test_first_run__copies_every_image_its_metadata_members_status_and_data(
    first_run: dict[str, Any], corpus: GlanceImages, admin: Sides, users: GlanceUsers
) -> None:
    outcomes = {outcome["id"]: outcome for outcome in first_run["outcomes"]}
    results = {name: outcomes[image_id]["result"] for name, image_id in corpus.ids.items()}
    differences: dict[str, Any] = {}
    for name, image_id in corpus.ids.items():
        source, copy = admin.image("glance", image_id), admin.image("target", image_id)
        assert source is not None and copy is not None, name
        wanted, held = _comparable(source), _comparable(copy)
        differ = {key: (wanted.get(key), held.get(key)) for key in wanted | held if wanted.get(key) != held.get(key)}
        if differ:
            differences[name] = differ
        if source["visibility"] == "shared":
            assert admin.members("target", image_id) == admin.members("glance", image_id), name

    assert first_run["failed"] == first_run["conflict"] == 0
    assert results == {name: "created" if name == "mig-queued" else "copied" for name in corpus.ids}
    assert differences == {}
    assert first_run["bytes_copied"] == sum(len(spec.data) if spec.data else spec.size or 0 for spec in specs())
    big = outcomes[corpus.ids["mig-big"]]
    assert big["parts_sent"] == list(range(1, BIG_SIZE // (8 * MiB) + 2)), "72 MiB in 8 MiB parts"
    assert admin.image("target", corpus.ids["mig-deactivated"])["status"] == "deactivated"  # type: ignore[index]
    projects = users.keystone.projects
    assert admin.members("target", corpus.ids["mig-shared-2"]) == {
        projects["project-b"]: "rejected",
        projects["project-c"]: "accepted",  # set by the admin on both sides: project-c has no member account
    }


def test_first_run__the_target_serves_the_same_bytes(
    first_run: dict[str, Any], corpus: GlanceImages, sglance: Run, tmp_path: Path
) -> None:
    path = tmp_path / "big.raw"
    done = sglance("--os-cloud", "sglance-admin", "download", corpus.ids["mig-big"], str(path), "-q")

    assert done.returncode == 0, done.stderr
    assert hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() == corpus.md5["mig-big"]
    assert "os_hash_value verified" in done.stdout


def test_second_run__finds_nothing_to_copy(first_run: dict[str, Any], corpus: GlanceImages, sglance: Run) -> None:
    done = sglance(*MIGRATE)

    report = report_of(done)
    mine = [outcome for outcome in report["outcomes"] if outcome["id"] in corpus.ids.values()]
    assert done.returncode == 0, done.stderr
    assert {outcome["result"] for outcome in mine} == {"unchanged"}
    assert len(mine) == len(corpus.ids)
    assert report["bytes_copied"] == 0


def test_a_changed_source_image__is_the_only_one_updated(
    first_run: dict[str, Any], corpus: GlanceImages, sglance: Run, users: GlanceUsers, admin: Sides
) -> None:
    image_id = corpus.ids["mig-shared-1"]  # project-b's membership was pending
    patch = [
        {"op": "add", "path": "/release", "value": "2026.2"},
        {"op": "replace", "path": "/tags", "value": ["changed"]},
        {"op": "replace", "path": "/min_ram", "value": 2048},
    ]
    users.call("member-a", "PATCH", f"/v2/images/{image_id}", json=patch, headers={"Content-Type": PATCH_TYPE})
    users.set_member_status(image_id, "project-b", "accepted")

    report = report_of(sglance(*MIGRATE))

    changed = [o for o in report["outcomes"] if o["result"] != "unchanged" and o["id"] in corpus.ids.values()]
    copy = admin.image("target", image_id)
    assert [(o["id"], o["result"], o["steps"]) for o in changed] == [(image_id, "updated", ["metadata", "members"])]
    assert report["bytes_copied"] == 0
    assert copy is not None
    assert (copy["release"], copy["tags"], copy["min_ram"]) == ("2026.2", ["changed"], 2048)
    assert admin.members("target", image_id)[users.keystone.projects["project-b"]] == "accepted"


def _wait_for_parts(admin: Sides, image_id: str, parts: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session = admin.upload(image_id)
        if session is not None and len(session["uploaded_parts"]) >= parts:
            return session
        time.sleep(0.05)
    raise AssertionError(f"no {parts} parts of {image_id} arrived in {timeout} s")


def test_a_run_killed_mid_copy__the_next_run_sends_only_the_missing_parts(
    first_run: dict[str, Any],
    users: GlanceUsers,
    sglance: Run,
    sglance_background: Callable[..., subprocess.Popen[str]],
    admin: Sides,
) -> None:
    spec = Spec("member-b", _named("mig-killed", visibility="shared"), 40 * MiB + 5, members={"project-a": "accepted"})
    image_id, md5 = users.create(spec, seed=4242)
    # 6 MiB/s and one part at a time: the run is still copying when two of the six parts are in
    args = (*MIGRATE, "--image", image_id, "--multipart-over", "16", "--limit-rate", "6", "--part-parallel", "1")
    killed = sglance_background(*args)
    try:
        held = _wait_for_parts(admin, image_id, 2)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=30)
    held = admin.upload(image_id) or held
    done_parts = sorted(part["part_number"] for part in held["uploaded_parts"])

    resumed = report_of(sglance(*MIGRATE, "--image", image_id, "--multipart-over", "16"))

    outcome = resumed["outcomes"][0]
    missing = [n for n in range(1, held["parts_count"] + 1) if n not in done_parts]
    copy = admin.image("target", image_id)
    assert held["image_status"] == "uploading" and missing
    assert (outcome["result"], outcome["resumed"], outcome["parts_sent"]) == ("copied", True, missing)
    assert outcome["bytes_copied"] == spec.size - len(done_parts) * held["part_size"]
    assert copy is not None and copy["status"] == "active"
    assert (copy["size"], copy["checksum"]) == (spec.size, md5)
    assert copy["os_hash_value"] == admin.image("glance", image_id)["os_hash_value"]  # type: ignore[index]
    assert admin.members("target", image_id) == admin.members("glance", image_id)


def test_a_project_member_without_admin__copies_its_image_but_not_the_members_status(
    first_run: dict[str, Any], users: GlanceUsers, sglance: Run, admin: Sides
) -> None:
    spec = Spec("member-a", _named("mig-by-member", visibility="shared"), MiB, members={"project-b": "accepted"})
    image_id, _ = users.create(spec, seed=77)

    done = sglance("--os-cloud", "sglance-member-a", "migrate", "--format", "json", "-q", "--image", image_id)

    outcome = report_of(done)["outcomes"][0]
    project_b = users.keystone.projects["project-b"]
    assert done.returncode == 0, done.stderr
    assert outcome["result"] == "copied"
    assert outcome["warnings"] == [
        f"member {project_b}: status stays pending, not accepted (only an admin or the member project may set it)"
    ]
    assert admin.members("target", image_id) == {project_b: "pending"}


def test_openstack_image_migrate__the_plugin_plans_the_same_way(
    first_run: dict[str, Any], corpus: GlanceImages, openstack: Run
) -> None:
    image_id = corpus.ids["mig-big"]

    done = openstack("--os-cloud", "sglance-admin", "image", "migrate", "--dry-run", "--image", image_id, "-f", "json")

    assert done.returncode == 0, done.stderr
    assert '"would": "nothing"' in done.stdout
    assert image_id in done.stdout
