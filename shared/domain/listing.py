"""Image listing semantics: query parsing, filters, sort keys and who sees what.

Pure functions only. A repository turns an ``ImageQuery`` into index reads (``shared/data/list_index.py`` holds
the storage encoding); everything Glance decides about *which* images a caller sees and *in what order* lives
here, so every backend agrees.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from shared.domain.context import RequestContext
from shared.domain.errors import InvalidFilterError, InvalidInputError, InvalidSortKeyError
from shared.domain.image import Image, Visibility
from shared.domain.member import Member
from shared.domain.status import ImageStatus
from shared.domain.task import Task

T = TypeVar("T")

# Sort keys Glance accepts for GET /v2/images, in Glance's order (each has a list index: shared/resources.py).
SORT_KEYS: tuple[str, ...] = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
)
# Sort keys /v2/tasks accepts (each has a list-<key> index); Glance also accepts the other columns.
TASK_SORT_KEYS = ("created_at", "updated_at", "id", "status")
DEFAULT_SORT_KEY = "created_at"
DEFAULT_SORT_DIR = "desc"
SORT_DIRS = ("asc", "desc")
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
VISIBILITY_FILTERS = ("community", "public", "private", "shared", "all")
# Attributes that take ``in:a,b`` / ``eq:a`` (Glance's _make_conditions_from_filters).
IN_FILTER_ATTRS = ("name", "id", "status", "container_format", "disk_format")
TIME_FILTER_ATTRS = ("created_at", "updated_at")
TIME_OPERATORS = ("gt", "gte", "eq", "neq", "lt", "lte")
# Other columns of Glance's images table: plain equality on their string form.
EQUALITY_ATTRS = ("min_ram", "min_disk", "owner", "virtual_size", "size", "os_hash_algo", "checksum", "os_hash_value")
# Numeric columns that take <column>_min / <column>_max range filters.
RANGE_FILTERS = frozenset(
    f"{col}_{side}" for col in ("size", "virtual_size", "min_ram", "min_disk") for side in ("min", "max")
)
# Parameters that are not filters ("deleted" is ignored: Glance overwrites it with deleted=False).
_CONTROL_PARAMS = frozenset({"limit", "marker", "sort", "sort_key", "sort_dir", "member_status", "tag", "deleted"})


def membership_of(ctx: RequestContext, image: Image) -> Member | None:
    """The caller's project's membership of ``image``, when it grants access (shared images only)."""
    if ctx.owner is None or image.visibility is not Visibility.SHARED:
        return None
    return image.members.get(ctx.owner)


def can_see(ctx: RequestContext, image: Image, admin: bool) -> bool:
    """Whether ``ctx`` (an admin by the policy's ``context_is_admin`` or not) may see ``image`` at all (show,
    marker, PATCH target): a member sees a shared image whatever its membership status, as in Glance (the status
    only steers listing)."""
    if image.is_deleted():
        return False
    if admin:
        return True
    if image.owner is not None and image.owner == ctx.owner:
        return True
    if membership_of(ctx, image) is not None:
        return True
    return image.visibility in (Visibility.PUBLIC, Visibility.COMMUNITY)


# -- sorting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SortSpec:
    """Sort keys and directions, one direction per key."""

    keys: tuple[str, ...] = (DEFAULT_SORT_KEY,)
    dirs: tuple[str, ...] = (DEFAULT_SORT_DIR,)

    @property
    def key(self) -> str:
        """The key the index orders by."""
        return self.keys[0]

    @property
    def descending(self) -> bool:
        """Direction of the primary key."""
        return self.dirs[0] == "desc"


def _check_sort_key(key: str) -> str:
    if key not in SORT_KEYS:
        raise InvalidSortKeyError(key=key, available=", ".join(SORT_KEYS))
    return key


def _check_sort_dir(direction: str) -> str:
    if direction not in SORT_DIRS:
        raise InvalidInputError(f"Invalid sort direction: {direction}")
    return direction


def parse_sort(params: Sequence[tuple[str, str]]) -> SortSpec:
    """Parse both Glance sort syntaxes: ``sort=name:asc,size`` or repeated ``sort_key``/``sort_dir``."""
    names = {name for name, _ in params}
    sort_params = [value for name, value in params if name == "sort"]
    if sort_params:
        if "sort_key" in names or "sort_dir" in names:
            raise InvalidInputError("Old and new sorting syntax cannot be combined")
        keys: list[str] = []
        dirs: list[str] = []
        for item in sort_params[-1].strip().split(","):
            key, _, direction = item.partition(":")
            keys.append(_check_sort_key(key.strip()))
            dirs.append(_check_sort_dir(direction.strip() or DEFAULT_SORT_DIR))
        return SortSpec(tuple(keys), tuple(dirs))
    keys = [_check_sort_key(v.strip()) for n, v in params if n == "sort_key"]
    dirs = [_check_sort_dir(v.strip()) for n, v in params if n == "sort_dir"]
    if len(dirs) > 1 and len(dirs) != len(keys):
        raise InvalidInputError("Number of sort dirs does not match the number of sort keys")
    keys = keys or [DEFAULT_SORT_KEY]
    dirs = dirs or [DEFAULT_SORT_DIR]
    if len(dirs) == 1:
        dirs = dirs * len(keys)
    return SortSpec(tuple(keys), tuple(dirs))


# -- filters --------------------------------------------------------------------------------------


_QUOTED_ITEM = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)",?|([^,]+),?|,')


def _split_in_values(name: str, value: str) -> frozenset[str]:
    """Split an ``in:`` list on commas; double quotes protect commas (API-WG filtering guideline)."""
    quote_open = False
    for i, char in enumerate(value):
        if char != '"' or (i and value[i - 1] == "\\"):
            continue
        if not quote_open and i and value[i - 1] != ",":
            raise InvalidFilterError(name=name, value=value, detail="no comma before opening quotation mark")
        if quote_open and i + 1 != len(value) and value[i + 1] != ",":
            raise InvalidFilterError(name=name, value=value, detail="no comma after closing quotation mark")
        quote_open = not quote_open
    if quote_open:
        raise InvalidFilterError(name=name, value=value, detail="the quote is not closed")
    return frozenset(quoted or plain for quoted, plain in _QUOTED_ITEM.findall(value))


def _parse_time(name: str, text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFilterError(name=name, value=text, detail="use ISO 8601 date-time notation") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _split_operator(name: str, expression: str) -> tuple[str, str]:
    """Split ``op:value``; an ISO 8601 time alone means ``eq`` (its colons are not an operator)."""
    op, sep, rest = expression.partition(":")
    if not sep:
        return "eq", expression
    # Glance's split_filter_op tries this for every attribute, so name=2024-01-01T10:00:00 is an equality.
    try:
        _parse_time(name, expression)
    except InvalidFilterError:
        return op, rest
    return "eq", expression


def _parse_bool(name: str, value: str) -> bool:
    # Glance lower-cases os_hidden but compares protected as given ("True" is a 400).
    candidate = value.lower() if name == "os_hidden" else value
    if candidate not in ("true", "false"):
        raise InvalidFilterError(name=name, value=value, detail="valid values are 'true' or 'false'")
    return candidate == "true"


def _parse_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        detail = "unable to filter on a range with a non-numeric value"
        raise InvalidFilterError(name=name, value=value, detail=detail) from None


@dataclass(frozen=True)
class ListFilters:
    """Every filter of ``GET /v2/images``; ``matches`` applies them all (AND)."""

    one_of: dict[str, frozenset[str]] = field(default_factory=dict)
    times: tuple[tuple[str, str, datetime], ...] = ()
    equals: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    # (attribute, "min" | "max", bound): Glance's <column>_min / <column>_max on numeric columns.
    bounds: tuple[tuple[str, str, int], ...] = ()
    protected: bool | None = None
    os_hidden: bool = False
    visibility: str | None = None
    member_status: str = "accepted"

    def matches(self, image: Image) -> bool:
        """Whether ``image`` passes every filter (visibility rules are applied separately)."""
        checks = (
            all(_text(getattr(image, attr)) in allowed for attr, allowed in self.one_of.items()),
            all(_compare(getattr(image, attr), op, when) for attr, op, when in self.times),
            all(_text(getattr(image, attr)) == value for attr, value in self.equals.items()),
            all(image.extra_properties.get(k) == v for k, v in self.properties.items()),
            all(tag in image.tags for tag in self.tags),
            all(_within(getattr(image, attr), side, bound) for attr, side, bound in self.bounds),
            self.protected is None or image.protected is self.protected,
            image.os_hidden is self.os_hidden,
            image.status is not ImageStatus.KILLED,
        )
        return all(checks)

    @property
    def size_min(self) -> int | None:
        """The ``size_min`` bound, if given."""
        return next((b for a, side, b in self.bounds if a == "size" and side == "min"), None)

    @property
    def size_max(self) -> int | None:
        """The ``size_max`` bound, if given."""
        return next((b for a, side, b in self.bounds if a == "size" and side == "max"), None)


def _within(value: int | None, side: str, bound: int) -> bool:
    # A NULL column never satisfies a range (SQL semantics).
    return value is not None and (value >= bound if side == "min" else value <= bound)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _compare(value: datetime, op: str, threshold: datetime) -> bool:
    results = {
        "gt": value > threshold,
        "gte": value >= threshold,
        "eq": value == threshold,
        "neq": value != threshold,
        "lt": value < threshold,
        "lte": value <= threshold,
    }
    return results[op]


def _parse_member_status(name: str, value: str) -> str:
    if value not in MEMBER_STATUSES:
        raise InvalidInputError(f"Invalid status: {value}")
    return value


def _parse_visibility(name: str, value: str) -> str:
    if value not in VISIBILITY_FILTERS:
        raise InvalidInputError(f"Invalid visibility value: {value}")
    return value


def _parse_in(name: str, value: str) -> frozenset[str]:
    op, rest = _split_operator(name, value)
    if op == "in":
        return _split_in_values(name, rest)
    if op == "eq":
        return frozenset({rest})
    raise InvalidFilterError(name=name, value=value, detail=f"unable to filter by unknown operator '{op}'")


def _parse_time_filter(name: str, value: str) -> tuple[str, str, datetime]:
    op, rest = _split_operator(name, value)
    if op not in TIME_OPERATORS:
        raise InvalidFilterError(name=name, value=value, detail="unable to filter on a unknown operator")
    return name, op, _parse_time(name, rest)


# Single-valued options of ListFilters and the parser of each.
_OPTION_PARSERS: dict[str, Callable[[str, str], object]] = {
    "member_status": _parse_member_status,
    "visibility": _parse_visibility,
    "protected": _parse_bool,
    "os_hidden": _parse_bool,
}


def parse_filters(params: Iterable[tuple[str, str]]) -> ListFilters:
    """Turn the query parameters of ``GET /v2/images`` into filters, rejecting what Glance rejects (400)."""
    one_of: dict[str, frozenset[str]] = {}
    times: list[tuple[str, str, datetime]] = []
    equals: dict[str, str] = {}
    properties: dict[str, str] = {}
    tags: list[str] = []
    options: dict[str, object] = {}
    bounds: list[tuple[str, str, int]] = []
    for name, value in params:
        if name == "changes-since":
            raise InvalidInputError('The "changes-since" filter is no longer available on v2.')
        if name == "tag":
            tags.append(value.strip())
        elif name in _OPTION_PARSERS:
            options[name] = _OPTION_PARSERS[name](name, value)
        elif name in _CONTROL_PARAMS:
            continue
        elif name in RANGE_FILTERS:
            attr, _, side = name.rpartition("_")
            bounds.append((attr, side, _parse_int(name, value)))
        elif name in IN_FILTER_ATTRS:
            one_of[name] = _parse_in(name, value)
        elif name in TIME_FILTER_ATTRS:
            times.append(_parse_time_filter(name, value))
        elif name in EQUALITY_ATTRS:
            equals[name] = value
        else:
            properties[name] = value
    return ListFilters(
        one_of=one_of,
        times=tuple(times),
        equals=equals,
        properties=properties,
        tags=tuple(tags),
        bounds=tuple(bounds),
        **options,  # type: ignore[arg-type]
    )


# -- the query handed to a repository -------------------------------------------------------------


@dataclass(frozen=True)
class ImageQuery:
    """One page of ``GET /v2/images``: who asks (and whether the policy makes them an admin), the filters, the
    order, the page size, how many candidates may be examined, and the image the page starts after."""

    ctx: RequestContext
    admin: bool
    filters: ListFilters
    sort: SortSpec
    limit: int
    budget: int
    marker: Image | None = None

    def keeps(self, image: Image) -> bool:
        """Visibility rules of Glance's image list, then the filters."""
        return _listable(self.ctx, self.admin, self.filters, image) and self.filters.matches(image)


def _listable(ctx: RequestContext, admin: bool, filters: ListFilters, image: Image) -> bool:
    visibility = filters.visibility
    if image.is_deleted():
        return False
    own = image.owner is not None and image.owner == ctx.owner
    vis = image.visibility
    if visibility not in (None, "all") and vis.value != visibility:
        return False
    if visibility is None and vis is Visibility.COMMUNITY and not own:
        # Without a visibility filter, only the caller's own community images are listed.
        return False
    if admin:
        return True
    if own or vis in (Visibility.PUBLIC, Visibility.COMMUNITY):
        return True
    membership = membership_of(ctx, image)
    return membership is not None and filters.member_status in ("all", membership.status.value)


# -- pages and task queries -----------------------------------------------------------------------


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: list[T]
    # Id to pass as ``marker`` for the next page; None when nothing follows.
    next_marker: str | None


@dataclass(frozen=True)
class TaskQuery:
    """One page of ``GET /v2/tasks``: whose tasks, filters, order, and the task the page starts after."""

    owner: str | None  # None: every project's (admin)
    status: str | None
    type: str | None
    sort_key: str
    descending: bool
    limit: int
    marker: Task | None
    budget: int

    def keeps(self, task: Task, now: datetime | None = None) -> bool:
        """Whether ``task`` belongs on the page (unexpired, the owner's, and matching the filters)."""
        if task.expired(now) or (self.owner is not None and task.owner != self.owner):
            return False
        return (not self.status or task.status.value == self.status) and (not self.type or task.type == self.type)
