"""The image status table and the domain rules around it (Glance's glance/domain Image)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from shared.domain.errors import (
    ForbiddenError,
    InvalidInputError,
    InvalidStatusTransitionError,
    ProtectedImageDeleteError,
)
from shared.domain.image import Image
from shared.domain.status import ImageStatus

S = ImageStatus

# Glance 33's Image.valid_state_targets, written out independently of the code under test.
GLANCE_TARGETS: dict[str, set[str]] = {
    "queued": {"saving", "uploading", "importing", "active", "deleted"},
    "saving": {"active", "killed", "deleted", "queued"},
    "uploading": {"importing", "queued", "deleted"},
    "importing": {"active", "deleted", "queued"},
    "active": {"pending_delete", "deleted", "deactivated"},
    "killed": {"deleted"},
    "pending_delete": {"deleted", "active"},
    "deleted": set(),
    "deactivated": {"active", "deleted"},
}


def _image(status: ImageStatus = S.QUEUED, *, formats: bool = True, **attributes: Any) -> Image:
    image = Image.new(owner="project-a", **attributes)
    if formats:
        image.disk_format, image.container_format = "raw", "bare"
    image.status = status
    return image


def test_glance_table__names_every_status() -> None:
    assert set(GLANCE_TARGETS) == {s.value for s in ImageStatus}


@pytest.mark.parametrize(
    ("current", "target"), list(itertools.product(ImageStatus, ImageStatus)), ids=lambda s: s.value
)
def test_transition__allows_exactly_glances_valid_state_targets(current: ImageStatus, target: ImageStatus) -> None:
    image = _image(current)

    if target.value in GLANCE_TARGETS[current.value]:
        image.transition(target)
        assert image.status is target
    else:
        with pytest.raises(InvalidStatusTransitionError):
            image.transition(target)
        assert image.status is current


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (current, target)
        for current in (S.QUEUED, S.UPLOADING)
        for target in (S.SAVING, S.ACTIVE, S.IMPORTING)
        if target.value in GLANCE_TARGETS[current.value]
    ],
    ids=str,
)
@pytest.mark.parametrize("missing", ["disk_format", "container_format", "both"])
def test_transition__to_data_bearing_status_without_formats__is_invalid_input(
    current: ImageStatus, target: ImageStatus, missing: str
) -> None:
    image = _image(current)
    for name in ("disk_format", "container_format") if missing == "both" else (missing,):
        setattr(image, name, None)

    with pytest.raises(InvalidInputError, match="must be set prior to saving data"):
        image.transition(target)
    assert image.status is current


def test_transition__from_saving_to_active_without_formats__is_allowed() -> None:
    image = _image(S.SAVING, formats=False)

    image.transition(S.ACTIVE)

    assert image.status is S.ACTIVE


@pytest.mark.parametrize("current", [S.SAVING, S.UPLOADING, S.IMPORTING], ids=str)
def test_transition__back_to_queued__clears_size_and_virtual_size(current: ImageStatus) -> None:
    image = _image(current)
    image.size, image.virtual_size = 1024, 4096

    image.transition(S.QUEUED)

    assert image.status is S.QUEUED
    assert image.size is None
    assert image.virtual_size is None


def test_transition__to_another_status__keeps_size() -> None:
    image = _image(S.SAVING)
    image.size, image.virtual_size = 1024, 4096

    image.transition(S.ACTIVE)

    assert (image.size, image.virtual_size) == (1024, 4096)


def test_deactivate__from_active__deactivates() -> None:
    image = _image(S.ACTIVE)

    image.deactivate()

    assert image.status is S.DEACTIVATED


def test_deactivate__when_already_deactivated__is_a_no_op() -> None:
    image = _image(S.DEACTIVATED)

    image.deactivate()

    assert image.status is S.DEACTIVATED


@pytest.mark.parametrize("current", sorted(set(ImageStatus) - {S.ACTIVE, S.DEACTIVATED}), ids=str)
def test_deactivate__from_any_other_status__is_forbidden(current: ImageStatus) -> None:
    image = _image(current)

    with pytest.raises(ForbiddenError, match="Not allowed to deactivate"):
        image.deactivate()
    assert image.status is current


def test_reactivate__from_deactivated__activates() -> None:
    image = _image(S.DEACTIVATED)

    image.reactivate()

    assert image.status is S.ACTIVE


def test_reactivate__when_already_active__is_a_no_op() -> None:
    image = _image(S.ACTIVE)

    image.reactivate()

    assert image.status is S.ACTIVE


@pytest.mark.parametrize("current", sorted(set(ImageStatus) - {S.ACTIVE, S.DEACTIVATED}), ids=str)
def test_reactivate__from_any_other_status__is_forbidden(current: ImageStatus) -> None:
    image = _image(current)

    with pytest.raises(ForbiddenError, match="Not allowed to reactivate"):
        image.reactivate()
    assert image.status is current


def test_delete__of_protected_image__is_forbidden_and_changes_nothing() -> None:
    image = _image(S.ACTIVE, protected=True)

    with pytest.raises(ProtectedImageDeleteError):
        image.delete()
    assert (image.status, image.deleted_at) == (S.ACTIVE, None)


def test_protected_image_delete_error__is_a_forbidden_error() -> None:
    assert issubclass(ProtectedImageDeleteError, ForbiddenError)


@pytest.mark.parametrize("current", [S.QUEUED, S.ACTIVE, S.DEACTIVATED], ids=str)
def test_delete__sets_status_deleted_and_deleted_at(current: ImageStatus) -> None:
    image = _image(current)

    image.delete()

    assert image.status is S.DELETED
    assert image.deleted_at is not None
    assert image.deleted_at >= image.created_at


def test_delete__of_deleted_image__is_an_invalid_transition() -> None:
    image = _image(S.QUEUED)
    image.delete()

    with pytest.raises(InvalidStatusTransitionError):
        image.delete()
