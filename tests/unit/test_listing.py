"""Listing semantics: query parsing, sort encoding, list partitions and Glance's visibility rules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.data.list_index import (
    image_partitions,
    member_partition,
    owner_partition,
    partitions_of,
    sort_value,
    visibility_partition,
)
from shared.domain.context import RequestContext
from shared.domain.errors import InvalidFilterError, InvalidInputError, InvalidSortKeyError
from shared.domain.image import Image, Visibility
from shared.domain.listing import (
    SORT_KEYS,
    ImageQuery,
    ListFilters,
    SortSpec,
    can_see,
    parse_filters,
    parse_sort,
)
from shared.domain.status import ImageStatus

MEMBER = RequestContext("req-a", "project-a", "user-a", frozenset({"member", "reader"}))
ADMIN = RequestContext("req-adm", "project-adm", "user-adm", frozenset({"admin"}))
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
VISIBILITY_VALUES = ("public", "community", "shared", "private", "all")


def _admin(ctx: RequestContext) -> bool:
    """What the default policy's context_is_admin answers for these contexts."""
    return "admin" in ctx.roles


def plan_partitions(ctx: RequestContext, filters: ListFilters) -> tuple[str, ...]:
    return image_partitions(ctx, _admin(ctx), filters)


def _image(owner: str = "project-a", visibility: Visibility = Visibility.SHARED, **fields: Any) -> Image:
    image = Image.new(owner=owner)
    image.visibility = visibility
    for name, value in fields.items():
        setattr(image, name, value)
    return image


# -- parse_sort -----------------------------------------------------------------------------------


def test_parse_sort__without_parameters__is_created_at_desc() -> None:
    spec = parse_sort([])

    assert (spec.keys, spec.dirs, spec.key, spec.descending) == (("created_at",), ("desc",), "created_at", True)


def test_parse_sort__new_syntax__reads_keys_and_directions_defaulting_to_desc() -> None:
    spec = parse_sort([("sort", "name:asc, size ,status: desc")])

    assert (spec.keys, spec.dirs) == (("name", "size", "status"), ("asc", "desc", "desc"))
    assert (spec.key, spec.descending) == ("name", False)


def test_parse_sort__classic_syntax__pairs_keys_with_directions() -> None:
    spec = parse_sort([("sort_key", "name"), ("sort_dir", "asc"), ("sort_key", "size"), ("sort_dir", "desc")])

    assert (spec.keys, spec.dirs) == (("name", "size"), ("asc", "desc"))


def test_parse_sort__classic_single_direction__applies_to_every_key() -> None:
    spec = parse_sort([("sort_key", "name"), ("sort_key", "size"), ("sort_key", "id"), ("sort_dir", "asc")])

    assert spec.dirs == ("asc", "asc", "asc")


def test_parse_sort__classic_keys_without_direction__are_all_desc() -> None:
    spec = parse_sort([("sort_key", "name"), ("sort_key", "size")])

    assert spec.dirs == ("desc", "desc")


def test_parse_sort__classic_direction_without_key__sorts_created_at_that_way() -> None:
    spec = parse_sort([("sort_dir", "asc")])

    assert (spec.keys, spec.dirs) == (("created_at",), ("asc",))


@pytest.mark.parametrize("old", [("sort_key", "name"), ("sort_dir", "asc")])
def test_parse_sort__mixing_both_syntaxes__is_invalid(old: tuple[str, str]) -> None:
    with pytest.raises(InvalidInputError, match="cannot be combined"):
        parse_sort([("sort", "name:asc"), old])


@pytest.mark.parametrize(
    "params",
    [
        [("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc"), ("sort_dir", "desc"), ("sort_dir", "asc")],
        [("sort_key", "name"), ("sort_key", "size"), ("sort_key", "id"), ("sort_dir", "asc"), ("sort_dir", "desc")],
        [("sort_dir", "asc"), ("sort_dir", "desc")],
    ],
)
def test_parse_sort__direction_count_not_one_and_not_key_count__is_invalid(params: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidInputError, match="does not match"):
        parse_sort(params)


@pytest.mark.parametrize(
    "params",
    [[("sort", "owner:asc")], [("sort", "name:asc,visibility")], [("sort", "")], [("sort_key", "tags")]],
)
def test_parse_sort__with_unknown_key__raises_invalid_sort_key(params: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidSortKeyError):
        parse_sort(params)


@pytest.mark.parametrize("params", [[("sort", "name:up")], [("sort_key", "name"), ("sort_dir", "ASC")]])
def test_parse_sort__with_unknown_direction__is_invalid(params: list[tuple[str, str]]) -> None:
    with pytest.raises(InvalidInputError, match="Invalid sort direction"):
        parse_sort(params)


def test_parse_sort__accepts_every_glance_sort_key() -> None:
    keys = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")

    spec = parse_sort([("sort", ",".join(keys))])

    assert spec.keys == keys == SORT_KEYS


# -- parse_filters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("in:a,b", {"a", "b"}),
        ('in:"a,b",c', {"a,b", "c"}),
        ('in:c,"a,b"', {"c", "a,b"}),
        ('in:"x, y","z"', {"x, y", "z"}),
        ("in:solo", {"solo"}),
        ("eq:a,b", {"a,b"}),
        ("plain", {"plain"}),
        ("eq:2024-01-01T10:00:00", {"2024-01-01T10:00:00"}),
        # Glance's split_filter_op: a bare ISO 8601 time is an equality, not an operator "2024-01-01T10".
        ("2024-01-01T10:00:00", {"2024-01-01T10:00:00"}),
    ],
)
def test_parse_filters__in_and_eq_operators__give_the_allowed_values(value: str, expected: set[str]) -> None:
    assert parse_filters([("name", value)]).one_of == {"name": frozenset(expected)}


@pytest.mark.parametrize("attr", ["name", "id", "status", "container_format", "disk_format"])
def test_parse_filters__every_in_attribute__accepts_in(attr: str) -> None:
    assert parse_filters([(attr, "in:x,y")]).one_of == {attr: frozenset({"x", "y"})}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('in:a"b"', "no comma before opening"),
        ('in:"a"b', "no comma after closing"),
        ('in:"a,b', "not closed"),
        ("like:a", "unknown operator 'like'"),
        ("neq:a", "unknown operator 'neq'"),
    ],
)
def test_parse_filters__bad_in_filter__is_invalid(value: str, message: str) -> None:
    with pytest.raises(InvalidFilterError, match=message):
        parse_filters([("name", value)])


@pytest.mark.parametrize("op", ["gt", "gte", "eq", "neq", "lt", "lte"])
@pytest.mark.parametrize("attr", ["created_at", "updated_at"])
def test_parse_filters__time_operators__parse_iso_8601(attr: str, op: str) -> None:
    filters = parse_filters([(attr, f"{op}:2024-05-01T12:00:00Z")])

    assert filters.times == ((attr, op, T0),)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", T0),
        ("2024-05-01T14:00:00+02:00", T0),
        ("2024-05-01T12:00:00", T0),
        ("gt:2024-05-01T14:00:00+02:00", T0),
    ],
)
def test_parse_filters__time_without_operator_or_zone__is_eq_in_utc(value: str, expected: datetime) -> None:
    (_, op, when) = parse_filters([("created_at", value)]).times[0]

    assert when == expected
    assert op == ("gt" if value.startswith("gt:") else "eq")


@pytest.mark.parametrize("value", ["gt:yesterday", "gt:", "2024-13-01T00:00:00Z", "after:2024-05-01T12:00:00Z"])
def test_parse_filters__bad_time_filter__is_invalid(value: str) -> None:
    with pytest.raises(InvalidFilterError):
        parse_filters([("updated_at", value)])


def test_parse_filters__size_range__is_numeric() -> None:
    filters = parse_filters([("size_min", "10"), ("size_max", "2048")])

    assert (filters.size_min, filters.size_max) == (10, 2048)


@pytest.mark.parametrize("name", ["size_min", "size_max"])
@pytest.mark.parametrize("value", ["ten", "1.5", ""])
def test_parse_filters__non_numeric_size_range__is_invalid(name: str, value: str) -> None:
    with pytest.raises(InvalidFilterError, match="non-numeric"):
        parse_filters([(name, value)])


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False)])
def test_parse_filters__protected__is_a_boolean(value: str, expected: bool) -> None:
    assert parse_filters([("protected", value)]).protected is expected


@pytest.mark.parametrize("value", ["yes", "1", "", "True"])
def test_parse_filters__protected_other_than_lowercase_true_false__is_invalid(value: str) -> None:
    with pytest.raises(InvalidFilterError):
        parse_filters([("protected", value)])


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("TRUE", True), ("False", False)])
def test_parse_filters__os_hidden__is_a_case_insensitive_boolean(value: str, expected: bool) -> None:
    assert parse_filters([("os_hidden", value)]).os_hidden is expected


def test_parse_filters__os_hidden_not_boolean__is_invalid() -> None:
    with pytest.raises(InvalidFilterError):
        parse_filters([("os_hidden", "maybe")])


def test_parse_filters__defaults__hide_hidden_images_any_protection_accepted_members() -> None:
    filters = parse_filters([])

    assert (filters.os_hidden, filters.protected, filters.visibility, filters.member_status) == (
        False,
        None,
        None,
        "accepted",
    )


@pytest.mark.parametrize("value", VISIBILITY_VALUES)
def test_parse_filters__visibility__accepts_glance_values(value: str) -> None:
    assert parse_filters([("visibility", value)]).visibility == value


@pytest.mark.parametrize("value", ["everyone", "PUBLIC", ""])
def test_parse_filters__unknown_visibility__is_invalid(value: str) -> None:
    with pytest.raises(InvalidInputError, match="Invalid visibility"):
        parse_filters([("visibility", value)])


@pytest.mark.parametrize("value", ["pending", "accepted", "rejected", "all"])
def test_parse_filters__member_status__accepts_glance_values(value: str) -> None:
    assert parse_filters([("member_status", value)]).member_status == value


def test_parse_filters__unknown_member_status__is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="Invalid status"):
        parse_filters([("member_status", "maybe")])


def test_parse_filters__changes_since__is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="changes-since"):
        parse_filters([("changes-since", "2024-05-01T12:00:00Z")])


def test_parse_filters__repeated_tags__are_all_kept_stripped() -> None:
    assert parse_filters([("tag", "x86 "), ("tag", " 64bit")]).tags == ("x86", "64bit")


def test_parse_filters__unknown_keys__become_property_filters() -> None:
    filters = parse_filters([("os_distro", "cirros"), ("hw_disk_bus", "virtio")])

    assert filters.properties == {"os_distro": "cirros", "hw_disk_bus": "virtio"}
    assert filters.equals == {}


@pytest.mark.parametrize(
    "attr", ["min_ram", "min_disk", "owner", "virtual_size", "size", "os_hash_algo", "checksum", "os_hash_value"]
)
def test_parse_filters__image_columns__are_equality_filters(attr: str) -> None:
    filters = parse_filters([(attr, "v:1")])

    assert (filters.equals, filters.properties) == ({attr: "v:1"}, {})


def test_parse_filters__paging_sorting_and_deleted_parameters__are_not_filters() -> None:
    params = [("limit", "3"), ("marker", "m"), ("sort", "name"), ("sort_key", "id"), ("sort_dir", "asc")]

    assert parse_filters([*params, ("deleted", "true")]) == ListFilters()


# -- ListFilters.matches --------------------------------------------------------------------------


def _keeps(query: list[tuple[str, str]], image: Image) -> bool:
    return parse_filters(query).matches(image)


def test_matches__tags__require_every_tag() -> None:
    image = _image(tags={"x86", "64bit"})

    assert _keeps([("tag", "x86"), ("tag", "64bit")], image)
    assert not _keeps([("tag", "x86"), ("tag", "arm")], image)


def test_matches__in_filter__compares_the_attribute_as_text() -> None:
    image = _image(name="cirros", status=ImageStatus.ACTIVE)

    assert _keeps([("name", 'in:"ubuntu",cirros'), ("status", "in:active,queued")], image)
    assert not _keeps([("status", "eq:queued")], image)


def test_matches__equality_on_numbers_and_properties__compares_text() -> None:
    image = _image(min_ram=512, extra_properties={"os_distro": "cirros"})

    assert _keeps([("min_ram", "512"), ("os_distro", "cirros")], image)
    assert not _keeps([("min_ram", "256")], image)
    assert not _keeps([("os_distro", "ubuntu")], image)
    assert not _keeps([("hw_disk_bus", "virtio")], image)


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ([("size_min", "100")], True),
        ([("size_min", "101")], False),
        ([("size_max", "100")], True),
        ([("size_max", "99")], False),
    ],
)
def test_matches__size_range__is_inclusive(query: list[tuple[str, str]], kept: bool) -> None:
    assert _keeps(query, _image(size=100)) is kept


def test_matches__size_range__excludes_images_without_size() -> None:
    assert not _keeps([("size_min", "0")], _image(size=None))


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ([("min_ram_min", "512")], True),
        ([("min_ram_max", "511")], False),
        ([("min_disk_min", "11")], False),
        ([("min_disk_max", "10")], True),
        ([("virtual_size_max", "4096")], True),
        ([("virtual_size_min", "4097")], False),
    ],
)
def test_matches__range_on_other_numeric_columns__works_like_glance(query: list[tuple[str, str]], kept: bool) -> None:
    assert _keeps(query, _image(min_ram=512, min_disk=10, virtual_size=4096)) is kept


def test_parse_filters__range_with_non_numeric_bound__is_invalid() -> None:
    with pytest.raises(InvalidFilterError):
        parse_filters([("min_ram_min", "lots")])


@pytest.mark.parametrize(
    ("op", "kept"), [("gt", False), ("gte", True), ("eq", True), ("neq", False), ("lt", False), ("lte", True)]
)
def test_matches__time_operator__compares_with_the_threshold(op: str, kept: bool) -> None:
    assert _keeps([("created_at", f"{op}:2024-05-01T12:00:00Z")], _image(created_at=T0)) is kept


def test_matches__protected_and_os_hidden__select_by_flag() -> None:
    hidden = _image(os_hidden=True, protected=True)

    assert not _keeps([], hidden)
    assert _keeps([("os_hidden", "true"), ("protected", "true")], hidden)
    assert not _keeps([("os_hidden", "true"), ("protected", "false")], hidden)
    assert not _keeps([("os_hidden", "true")], _image())


def test_matches__killed_images__are_never_listed() -> None:
    assert not _keeps([("status", "killed")], _image(status=ImageStatus.KILLED))


# -- sort_value -----------------------------------------------------------------------------------


def _population() -> list[Image]:
    """Images with NULLs, ties, shared prefixes and numbers of different widths."""
    names = [None, "", "a", "a b", "ab", "B", "a", None]
    sizes = [None, 0, 9, 10, 100, 9, None, 10**12]
    formats = [None, "raw", "qcow2", "raw", None, "iso", "raw", "qcow2"]
    images = []
    for i, (name, size, fmt) in enumerate(zip(names, sizes, formats, strict=True)):
        image = _image(name=name, size=size, disk_format=fmt, container_format=fmt and "bare")
        # Pairs of images share a created_at, so ties fall through to the id.
        image.created_at = T0 + timedelta(seconds=i // 2)
        image.updated_at = T0 - timedelta(seconds=i % 3)
        image.status = [ImageStatus.QUEUED, ImageStatus.ACTIVE][i % 2]
        images.append(image)
    return images


def _reference_key(image: Image, key: str) -> tuple[Any, ...]:
    """Glance's order (MySQL: NULL first) with created_at then id appended, in the same direction."""
    value = getattr(image, key)
    if key == "id":
        return (value,)
    null_first = (value is not None, value.value if isinstance(value, ImageStatus) else value)
    if key == "created_at":
        return (null_first, image.id)
    return (null_first, image.created_at, image.id)


@pytest.mark.parametrize("key", SORT_KEYS)
def test_sort_value__orders_like_glance_with_nulls_first_and_tie_breakers(key: str) -> None:
    images = _population()

    by_encoding = sorted(images, key=lambda img: sort_value(img, key))
    by_reference = sorted(images, key=lambda img: _reference_key(img, key))

    assert [i.id for i in by_encoding] == [i.id for i in by_reference]


def test_sort_value__null_name__sorts_before_any_name() -> None:
    assert sort_value(_image(name=None), "name") < sort_value(_image(name="A"), "name")


def test_sort_value__prefix__sorts_before_longer_names_whatever_the_created_at() -> None:
    later_a = _image(name="a", created_at=T0 + timedelta(days=1))
    earlier_ab = _image(name="a b", created_at=T0)

    assert sort_value(later_a, "name") < sort_value(earlier_ab, "name")


def test_sort_value__size__orders_numerically_not_as_text() -> None:
    sizes = [None, 0, 9, 10, 100, 2**40]
    values = [sort_value(_image(size=s, created_at=T0), "size") for s in reversed(sizes)]

    assert sorted(values) == list(reversed(values))


def test_sort_value__equal_names__break_ties_by_created_at_then_id() -> None:
    first = _image(name="same", created_at=T0)
    second = _image(name="same", created_at=T0 + timedelta(microseconds=1))
    third = _image(name="same", created_at=T0 + timedelta(microseconds=1))
    second.id, third.id = "0" + second.id[1:], "f" + third.id[1:]

    ordered = sorted([third, second, first], key=lambda img: sort_value(img, "name"))

    assert ordered == [first, second, third]


def test_sort_value__times_in_other_zones__are_normalised_to_utc() -> None:
    east = _image(created_at=datetime(2024, 5, 1, 13, 0, tzinfo=UTC).astimezone(timezone_plus_2()))
    west = _image(created_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC))

    assert sort_value(west, "created_at") < sort_value(east, "created_at")


def timezone_plus_2() -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=2))


# -- partitions -----------------------------------------------------------------------------------


def test_partitions_of__are_the_visibility_and_the_owner_partitions() -> None:
    image = _image(owner="project-b", visibility=Visibility.COMMUNITY)

    assert set(partitions_of(image)) == {visibility_partition("community"), owner_partition("project-b")}


def test_partitions_of__ownerless_image__is_only_in_its_visibility_partition() -> None:
    assert partitions_of(_image(owner=None, visibility=Visibility.PUBLIC)) == [visibility_partition("public")]  # type: ignore[arg-type]


V = visibility_partition
O = owner_partition  # noqa: E741
M = member_partition

PLANS: list[tuple[RequestContext, str | None, set[str]]] = [
    (ADMIN, None, {V("public"), V("shared"), V("private"), O("project-adm")}),
    (ADMIN, "all", {V("public"), V("shared"), V("private"), V("community")}),
    (ADMIN, "public", {V("public")}),
    (ADMIN, "community", {V("community")}),
    (ADMIN, "shared", {V("shared")}),
    (ADMIN, "private", {V("private")}),
    (MEMBER, None, {O("project-a"), V("public"), M("project-a", "accepted")}),
    (MEMBER, "all", {O("project-a"), V("public"), V("community"), M("project-a", "accepted")}),
    (MEMBER, "public", {V("public")}),
    (MEMBER, "community", {V("community")}),
    (MEMBER, "shared", {O("project-a"), M("project-a", "accepted")}),
    (MEMBER, "private", {O("project-a")}),
]


@pytest.mark.parametrize(("ctx", "visibility", "expected"), PLANS, ids=lambda p: getattr(p, "user_id", p))
def test_plan_partitions__per_role_and_visibility__is_the_smallest_covering_set(
    ctx: RequestContext, visibility: str | None, expected: set[str]
) -> None:
    query = [("visibility", visibility)] if visibility else []

    partitions = plan_partitions(ctx, parse_filters(query))

    assert len(partitions) == len(set(partitions))
    assert set(partitions) == expected


@pytest.mark.parametrize("visibility", [None, *VISIBILITY_VALUES])
def test_plan_partitions__admin_with_owner_filter__reads_only_that_owner(visibility: str | None) -> None:
    query = [("owner", "project-b")] + ([("visibility", visibility)] if visibility else [])

    assert plan_partitions(ADMIN, parse_filters(query)) == (owner_partition("project-b"),)


def test_plan_partitions__caller_without_project__reads_public_only() -> None:
    anonymous = RequestContext("req-x", None, "user-x", frozenset({"reader"}))

    assert plan_partitions(anonymous, parse_filters([])) == (visibility_partition("public"),)


# -- ImageQuery.keeps: Glance's visibility rules --------------------------------------------------------


def _everyone() -> dict[tuple[str, str], Image]:
    """One image per (owner, visibility): owners are the member's project, the admin's and a third one."""
    return {
        (owner, vis.value): _image(owner=owner, visibility=vis)
        for owner, vis in itertools.product(("project-a", "project-adm", "project-b"), Visibility)
    }


def _plan(ctx: RequestContext, query: list[tuple[str, str]]) -> ImageQuery:
    return ImageQuery(ctx, _admin(ctx), parse_filters(query), SortSpec(), limit=25, budget=100)


ALL_VIS = {v.value for v in Visibility}
OWNERS = ("project-a", "project-adm", "project-b")


def _pairs(owners: tuple[str, ...], visibilities: set[str]) -> set[tuple[str, str]]:
    return set(itertools.product(owners, visibilities))


KEEPS: list[tuple[RequestContext, str | None, set[tuple[str, str]]]] = [
    # Non-admin, no filter: own images of any visibility, others' public ones; others' community ones are left out.
    (MEMBER, None, _pairs(("project-a",), ALL_VIS) | _pairs(("project-adm", "project-b"), {"public"})),
    (MEMBER, "all", _pairs(("project-a",), ALL_VIS) | _pairs(OWNERS, {"public", "community"})),
    (MEMBER, "public", _pairs(OWNERS, {"public"})),
    (MEMBER, "community", _pairs(OWNERS, {"community"})),
    (MEMBER, "shared", {("project-a", "shared")}),
    (MEMBER, "private", {("project-a", "private")}),
    # Admin, no filter: everything but community images of other projects.
    (ADMIN, None, _pairs(OWNERS, ALL_VIS - {"community"}) | {("project-adm", "community")}),
    (ADMIN, "all", _pairs(OWNERS, ALL_VIS)),
    (ADMIN, "community", _pairs(OWNERS, {"community"})),
    (ADMIN, "private", _pairs(OWNERS, {"private"})),
    (ADMIN, "shared", _pairs(OWNERS, {"shared"})),
]


@pytest.mark.parametrize(("ctx", "visibility", "expected"), KEEPS, ids=lambda p: getattr(p, "user_id", p))
def test_keeps__applies_glances_visibility_rules(
    ctx: RequestContext, visibility: str | None, expected: set[tuple[str, str]]
) -> None:
    plan = _plan(ctx, [("visibility", visibility)] if visibility else [])

    kept = {key for key, image in _everyone().items() if plan.keeps(image)}

    assert kept == expected


@pytest.mark.parametrize(("ctx", "visibility", "_expected"), KEEPS, ids=lambda p: getattr(p, "user_id", p))
def test_keeps__only_keeps_images_from_the_planned_partitions(
    ctx: RequestContext, visibility: str | None, _expected: object
) -> None:
    plan = _plan(ctx, [("visibility", visibility)] if visibility else [])

    for image in _everyone().values():
        if plan.keeps(image):
            assert set(partitions_of(image)) & set(plan_partitions(ctx, plan.filters)), image


def test_keeps__admin_owner_filter__keeps_that_owners_images_but_not_their_community_ones() -> None:
    plan = _plan(ADMIN, [("owner", "project-b")])

    kept = {key for key, image in _everyone().items() if plan.keeps(image)}

    assert kept == _pairs(("project-b",), ALL_VIS - {"community"})


def test_keeps__deleted_images__are_never_kept() -> None:
    image = _image(owner="project-a", visibility=Visibility.PUBLIC)
    image.delete()

    assert not _plan(MEMBER, []).keeps(image)
    assert not _plan(ADMIN, [("visibility", "all")]).keeps(image)


def test_keeps__applies_the_filters_after_visibility() -> None:
    plan = _plan(MEMBER, [("os_distro", "cirros")])

    assert plan.keeps(_image(extra_properties={"os_distro": "cirros"}))
    assert not plan.keeps(_image(extra_properties={"os_distro": "ubuntu"}))
    assert not plan.keeps(_image(owner="project-b", extra_properties={"os_distro": "cirros"}))


def test_plan_partitions__member_status_all__merges_every_status_partition() -> None:
    filters = parse_filters([("member_status", "all")])
    expected = {O("project-a"), V("public")} | {M("project-a", s) for s in ("pending", "accepted", "rejected")}
    assert set(plan_partitions(MEMBER, filters)) == expected


def test_partitions_of__shared_image__adds_one_partition_per_member_and_its_status() -> None:
    image = _image(owner="project-b", visibility=Visibility.SHARED)
    image.add_member("project-a", limit=128)
    image.add_member("project-c", limit=128).set_status("accepted")

    assert set(partitions_of(image)) == {
        V("shared"), O("project-b"), M("project-a", "pending"), M("project-c", "accepted")
    }  # fmt: skip
    image.visibility = Visibility.PRIVATE
    assert M("project-a", "pending") not in partitions_of(image)


@pytest.mark.parametrize(
    ("status", "member_status", "listed"),
    [
        ("accepted", "accepted", True),
        ("pending", "accepted", False),
        ("rejected", "accepted", False),
        ("pending", "pending", True),
        ("rejected", "all", True),
    ],
)
def test_keeps__shared_image__lists_for_a_member_only_with_the_requested_member_status(
    status: str, member_status: str, listed: bool
) -> None:
    image = _image(owner="project-b", visibility=Visibility.SHARED)
    image.add_member("project-a", limit=128).set_status(status)

    assert _plan(MEMBER, [("member_status", member_status)]).keeps(image) is listed
    assert can_see(MEMBER, image, admin=False)  # visible whatever the status
