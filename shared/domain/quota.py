"""Glance's unified limits, as pure functions: what one image counts toward its owner's usage.

The four limits are Glance's (glance/quota/keystone.py); usage is kept in bytes and counts, limits are MiB and
counts. Each image's contribution is computed from its state alone, so a change's effect on the counters is the
difference of two contributions, and a recount is a sum over images.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.errors import LimitExceededError
from shared.domain.image import Image
from shared.domain.location import LocationStatus
from shared.domain.status import ImageStatus
from shared.domain.upload import UploadMethod

IMAGE_SIZE_TOTAL = "image_size_total"
IMAGE_STAGE_TOTAL = "image_stage_total"
IMAGE_COUNT_TOTAL = "image_count_total"
IMAGE_COUNT_UPLOADING = "image_count_uploading"
LIMIT_NAMES = (IMAGE_SIZE_TOTAL, IMAGE_STAGE_TOTAL, IMAGE_COUNT_TOTAL, IMAGE_COUNT_UPLOADING)
# Limits of these are MiB; usage of them is kept in bytes.
SIZE_LIMITS = frozenset({IMAGE_SIZE_TOTAL, IMAGE_STAGE_TOTAL})
MiB = 1024 * 1024
UNLIMITED = -1

_UPLOADING = frozenset({ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING})
_NOT_COUNTED = frozenset({ImageStatus.DELETED, ImageStatus.KILLED})
_NO_SIZE = frozenset({ImageStatus.DELETED, ImageStatus.KILLED, ImageStatus.PENDING_DELETE})
# Sessions whose bytes sit in staging while the image waits (Glance's staging store).
_STAGED = frozenset({UploadMethod.STAGE, UploadMethod.WEB})


class QuotaExceededError(LimitExceededError):
    """A change would take a project's usage past one of its unified limits (413)."""

    template = "Quota exceeded for {name}: the limit is {limit}{unit}, {usage}{unit} in use, {delta}{unit} requested."


def exceeded(name: str, limit: int, usage: int, delta: int) -> QuotaExceededError:
    """The error for ``name``, in the limit's own unit (MiB for sizes, rounded up)."""
    if name in SIZE_LIMITS:
        return QuotaExceededError(name=name, limit=limit, usage=usage // MiB, delta=-(-delta // MiB), unit=" MiB")
    return QuotaExceededError(name=name, limit=limit, usage=usage, delta=delta, unit="")


def contribution(image: Image) -> dict[str, int]:
    """What ``image`` counts toward its owner's usage (bytes for sizes).

    - image_count_total: 1 unless deleted (or killed).
    - image_count_uploading: 1 while saving, uploading or importing, or while a copy to another store runs.
    - image_size_total: size × the stores holding a complete copy (Glance: each store copy counts).
    - image_stage_total: the bytes of a glance-direct stage or a web-download while the image waits, plus size ×
      the copies in progress (copy-image stages the image, as in Glance).
    """
    if image.status in _NOT_COUNTED:
        return dict.fromkeys(LIMIT_NAMES, 0)
    copying = sum(1 for loc in image.locations if loc.in_progress)
    active = sum(1 for loc in image.locations if loc.status is LocationStatus.ACTIVE)
    size = image.size or 0
    staged = 0
    if image.status in _UPLOADING and image.upload is not None and image.upload.method in _STAGED:
        staged = image.upload.size or 0
    return {
        IMAGE_COUNT_TOTAL: 1,
        IMAGE_COUNT_UPLOADING: 1 if image.status in _UPLOADING or copying else 0,
        IMAGE_SIZE_TOTAL: 0 if image.status in _NO_SIZE else size * active,
        IMAGE_STAGE_TOTAL: staged + size * copying,
    }


@dataclass(frozen=True)
class UsageChange:
    """Counter deltas of one project (only non-zero ones)."""

    project: str
    deltas: dict[str, int]


def changes(
    before: tuple[str | None, dict[str, int]] | None, owner: str | None, after: dict[str, int]
) -> list[UsageChange]:
    """The counter updates that take the counters from ``before`` (owner, usage) to ``after`` for ``owner``."""
    per_project: dict[str, dict[str, int]] = {}
    if before is not None and before[0] is not None:
        for name, value in before[1].items():
            per_project.setdefault(before[0], {})[name] = -value
    if owner is not None:
        bucket = per_project.setdefault(owner, {})
        for name, value in after.items():
            bucket[name] = bucket.get(name, 0) + value
    return [
        UsageChange(project, {n: d for n, d in deltas.items() if d})
        for project, deltas in per_project.items()
        if any(deltas.values())
    ]
