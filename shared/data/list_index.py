"""How lists are stored: the list partitions an image or task belongs to, and its encoded sort values.

Every image has one small list entry per partition it belongs to (its owner's, its visibility's, one per member
project); an entry carries the image's sort value for every sort key, encoded so that comparing the strings
orders images as Glance's database would. A list request reads the partitions ``image_partitions`` names, in
order, and merges them (``shared/data/paging.py``). Tasks use the same scheme with their own partitions. Both
repositories (DynamoDB and the in-memory one) build on these, so they agree on every order. See
docs/data-model.md.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.domain.context import RequestContext
from shared.domain.image import Image, Visibility
from shared.domain.limits import index_text
from shared.domain.listing import MEMBER_STATUSES, SORT_KEYS, TASK_SORT_KEYS, TIME_FILTER_ATTRS, ListFilters
from shared.domain.task import Task

# A separator below every printable character, so "a" < "a b" and ties fall to created_at, then id.
_SEP = "\x00"
# Prefix of every non-NULL text value, so NULL < "" < "a" (MySQL puts NULL before the empty string).
_NOT_NULL = "\x01"
# The partition holding every task (what an admin lists).
ALL_TASKS_PARTITION = "t#*"


def _time_key(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def sort_value(image: Image, key: str) -> str:
    """The encoded, lexicographically ordered value of ``image`` for ``key`` (NULLs sort first, as in MySQL).

    Glance appends ``created_at`` and ``id`` as tie-breakers in the same direction; the encoding carries them.
    """
    if key == "id":
        return image.id
    if key in TIME_FILTER_ATTRS:
        primary = _time_key(getattr(image, key))
    elif key == "size":
        primary = "" if image.size is None else f"{image.size:020d}"
    else:
        raw = getattr(image, key)
        # A long name of wide characters would pass the index's 1024-byte sort key: only its first bytes order it.
        primary = "" if raw is None else _NOT_NULL + index_text(str(raw))
    if key == "created_at":
        return f"{primary}{_SEP}{image.id}"
    return f"{primary}{_SEP}{_time_key(image.created_at)}{_SEP}{image.id}"


def deadline_value(at: datetime) -> str:
    """A deadline as the sweep index orders it (fixed-width UTC text)."""
    return _time_key(at)


def sweep_entry(image: Image) -> tuple[str, str] | None:
    """``(sweep partition, encoded deadline)`` of an in-flight image; None when its status is settled."""
    from shared.resources import sweep_partition

    deadline = image.deadline()
    if deadline is None or image.is_deleted():
        return None
    return sweep_partition(image.id), deadline_value(deadline)


def sort_values(image: Image) -> dict[str, str]:
    """Encoded values of ``image`` for every supported sort key."""
    return {key: sort_value(image, key) for key in SORT_KEYS}


def owner_partition(owner: str) -> str:
    """The partition holding every image ``owner`` owns."""
    return f"o#{owner}"


def visibility_partition(visibility: str) -> str:
    """The partition holding every image of one visibility."""
    return f"v#{visibility}"


def member_partition(project_id: str, status: str) -> str:
    """The partition holding the shared images a project is a member of, with one membership status."""
    return f"m#{project_id}#{status}"


def member_partitions(image: Image) -> dict[str, str]:
    """Member project -> its partition, for an image whose members grant access (shared, not deleted)."""
    if image.visibility is not Visibility.SHARED or image.is_deleted():
        return {}
    return {project: member_partition(project, m.status.value) for project, m in image.members.items()}


def partitions_of(image: Image) -> list[str]:
    """The list partitions an (undeleted) image belongs to."""
    parts = [visibility_partition(image.visibility.value)]
    if image.owner:
        parts.append(owner_partition(image.owner))
    parts.extend(member_partitions(image).values())
    return parts


def image_partitions(ctx: RequestContext, admin: bool, filters: ListFilters) -> tuple[str, ...]:
    """The smallest set of partitions whose union holds every image the caller may list with these filters."""
    if admin:
        return _admin_partitions(ctx, filters)
    vis = filters.visibility
    own = (owner_partition(ctx.owner),) if ctx.owner else ()
    statuses = MEMBER_STATUSES[:3] if filters.member_status == "all" else (filters.member_status,)
    shared_with_me = tuple(member_partition(ctx.owner, s) for s in statuses) if ctx.owner else ()
    by_filter = {
        None: own + (visibility_partition("public"),) + shared_with_me,
        "public": (visibility_partition("public"),),
        "community": (visibility_partition("community"),),
        "private": own,
        "shared": own + shared_with_me,
        "all": own + (visibility_partition("public"), visibility_partition("community")) + shared_with_me,
    }
    return by_filter[vis]


def _admin_partitions(ctx: RequestContext, filters: ListFilters) -> tuple[str, ...]:
    """Admins list every project's images: partitions by visibility (or one owner's partition)."""
    vis = filters.visibility
    every_vis = tuple(v.value for v in Visibility)
    owner = filters.equals.get("owner")
    if owner is not None:
        return (owner_partition(owner),)
    if vis is None:
        others = tuple(visibility_partition(v) for v in every_vis if v != Visibility.COMMUNITY.value)
        return others + ((owner_partition(ctx.owner),) if ctx.owner else ())
    if vis == "all":
        return tuple(visibility_partition(v) for v in every_vis)
    return (visibility_partition(vis),)


def task_partition(owner: str | None) -> str:
    """The list partition of one project's tasks (``None``: every project's)."""
    return ALL_TASKS_PARTITION if owner is None else f"t#{owner}"


def _task_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def task_sort_value(task: Task, key: str) -> str:
    """Encoded sort value: the key's value, then created_at and id as tie-breakers (as the image lists)."""
    tail = f"{_task_time(task.created_at)}\x00{task.id}"
    if key == "created_at":
        return tail
    value = {"updated_at": _task_time(task.updated_at), "id": task.id, "status": task.status.value}[key]
    return f"{value}\x00{tail}"


def task_sort_values(task: Task) -> dict[str, str]:
    """Encoded values of ``task`` for every task sort key."""
    return {key: task_sort_value(task, key) for key in TASK_SORT_KEYS}
