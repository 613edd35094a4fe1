"""The image API driven by openstacksdk, as Nova, Terraform's provider and most tools do.

Images created here stay ``queued``: uploads are not built yet, so the happy paths of deactivate/reactivate (which
need an ``active`` image) belong to the unit tests of the domain and the controller; here only their 403s are run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import openstack.connection
import pytest
from openstack import exceptions

from tests.api.support import A_MEMBER, ADMIN, PROJECT_A, GlanceHttp, SdkFactory

pytestmark = [
    pytest.mark.api,
    # openstacksdk 4.22 warns about its own internals on every GET: Proxy._get_cache_key_prefix passes the
    # deprecated service_type argument to Proxy._extract_name.
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
]

Connection = openstack.connection.Connection


def _create(conn: Connection, name: str, tag: str, **attrs: Any) -> Any:
    """Register a queued image. ``allow_duplicates`` skips the SDK's find-by-name before the POST."""
    attrs.setdefault("disk_format", "raw")
    attrs.setdefault("container_format", "bare")
    tags = [tag, *attrs.pop("tags", [])]
    return conn.image.create_image(name, allow_duplicates=True, tags=tags, **attrs)


def _raw_names(conn: Connection, params: list[tuple[str, str]]) -> list[str]:
    """Names from ``GET /v2/images`` sent through the SDK's image proxy, for queries ``images()`` cannot express
    (it knows no ``disk_format`` query and turns a list of tags into one ``tag='[...]'``)."""
    response = conn.image.get("/images", params=params)
    exceptions.raise_from_response(response)
    return [image["name"] for image in response.json()["images"]]


def test_create_image__with_client_id_properties_and_tags__is_queued_and_reads_back(
    sdk_a_member: Connection, tag: str
) -> None:
    image_id = str(uuid.uuid4())

    made = _create(sdk_a_member, "sdk-create", tag, id=image_id, tags=["extra"], min_ram=512, flavor_hint="small")
    shown = sdk_a_member.image.get_image(image_id)

    assert made.id == image_id
    assert shown.name == "sdk-create"
    assert shown.status == "queued"
    assert shown.visibility == "shared"
    assert shown.owner == PROJECT_A
    assert (shown.disk_format, shown.container_format) == ("raw", "bare")
    assert shown.min_ram == 512
    assert shown.size is None
    assert shown.is_protected is False
    assert shown.is_hidden is False
    assert sorted(shown.tags) == sorted([tag, "extra"])
    assert shown.properties["flavor_hint"] == "small"


@pytest.mark.filterwarnings(
    # Image.find always calls Resource.find with ignore_missing=True, even when the caller passes False.
    "ignore::openstack.warnings.RemovedInSDK60Warning"
)
def test_find_image__by_name__finds_it_and_a_missing_name_raises_not_found(sdk_a_member: Connection, tag: str) -> None:
    name = f"sdk-find-{tag}"
    made = _create(sdk_a_member, name, tag)

    found = sdk_a_member.image.find_image(name, ignore_missing=False)

    assert found is not None
    assert found.id == made.id
    with pytest.raises(exceptions.NotFoundException):
        sdk_a_member.image.find_image(f"missing-{tag}", ignore_missing=False)


# -- listing ---------------------------------------------------------------------------------------


CATALOG = {
    # name: (disk_format, visibility, extra tags)
    "cat-alpha": ("raw", "private", ["red", "big"]),
    "cat-bravo": ("qcow2", "shared", ["red"]),
    "cat-charlie": ("vhd", "shared", ["big"]),
    "cat-delta": ("raw", "shared", []),
    "cat-echo": ("iso", "shared", ["red", "big"]),
}


@pytest.fixture(scope="module")
def catalog(sdk: SdkFactory, http: GlanceHttp) -> Iterator[str]:
    """Five queued images of project A under one tag, created once for the listing tests; yields the tag."""
    catalog_tag = f"api-catalog-{uuid.uuid4().hex[:12]}"
    conn = sdk(A_MEMBER)
    made = []
    try:
        for name, (disk_format, visibility, tags) in CATALOG.items():
            made.append(_create(conn, name, catalog_tag, disk_format=disk_format, visibility=visibility, tags=tags))
        yield catalog_tag
    finally:
        for image in made:
            http.purge(image.id)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"name": "cat-bravo"}, {"cat-bravo"}),
        ({"status": "queued"}, set(CATALOG)),
        ({"status": "active"}, set()),
        ({"visibility": "private"}, {"cat-alpha"}),
        ({"visibility": "shared"}, set(CATALOG) - {"cat-alpha"}),
        # Sizes are null until data is uploaded, and null never passes a size bound.
        ({"size_min": 0}, set()),
        ({"size_max": 10**12}, set()),
        ({"created_at": "gt:2000-01-01T00:00:00Z"}, set(CATALOG)),
        ({"created_at": "gt:2999-01-01T00:00:00Z"}, set()),
        ({"owner": PROJECT_A}, set(CATALOG)),
    ],
    ids=lambda value: "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None,
)
def test_images__with_a_filter__returns_exactly_the_matching_images(
    sdk_a_member: Connection, catalog: str, query: dict[str, Any], expected: set[str]
) -> None:
    names = [image.name for image in sdk_a_member.image.images(tag=catalog, **query)]

    assert sorted(names) == sorted(expected)


def test_images__with_repeated_tags__applies_them_all(sdk_a_member: Connection, catalog: str) -> None:
    names = _raw_names(sdk_a_member, [("tag", catalog), ("tag", "red"), ("tag", "big")])

    assert sorted(names) == ["cat-alpha", "cat-echo"]


def test_images__disk_format_in__returns_any_of_the_formats(sdk_a_member: Connection, catalog: str) -> None:
    names = _raw_names(sdk_a_member, [("tag", catalog), ("disk_format", "in:raw,vhd")])

    assert sorted(names) == ["cat-alpha", "cat-charlie", "cat-delta"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ({"sort_key": "name", "sort_dir": "asc"}, sorted(CATALOG)),
        ({"sort_key": "name", "sort_dir": "desc"}, sorted(CATALOG, reverse=True)),
        ({"sort": "name:asc"}, sorted(CATALOG)),
        ({"sort": "name:desc"}, sorted(CATALOG, reverse=True)),
    ],
    ids=["sort_key-asc", "sort_key-desc", "sort-asc", "sort-desc"],
)
def test_images__sorted_by_name__come_in_that_order(
    sdk_a_member: Connection, catalog: str, sort: dict[str, str], expected: list[str]
) -> None:
    names = [image.name for image in sdk_a_member.image.images(tag=catalog, **sort)]

    assert names == expected


def test_images__sorted_by_disk_format__orders_by_that_key(sdk_a_member: Connection, catalog: str) -> None:
    # Only the first key is asserted: later keys are a documented deviation (docs/api.md, "several sort keys").
    formats = [image.disk_format for image in sdk_a_member.image.images(tag=catalog, sort="disk_format:asc")]

    assert formats == sorted(disk_format for disk_format, _, _ in CATALOG.values())


def test_images__default_order__is_newest_first(sdk_a_member: Connection, catalog: str) -> None:
    images = list(sdk_a_member.image.images(tag=catalog))

    assert [image.name for image in images] == list(reversed(CATALOG))


@pytest.mark.parametrize("sort", [{}, {"sort": "name:asc"}, {"sort_key": "disk_format", "sort_dir": "desc"}])
def test_images__paged_two_at_a_time__yields_every_image_exactly_once_in_order(
    sdk_a_member: Connection, http: GlanceHttp, catalog: str, sort: dict[str, str]
) -> None:
    first_page = http.request("GET", "/v2/images", persona=A_MEMBER, params={"tag": catalog, "limit": 2, **sort})
    unpaged = [image.id for image in sdk_a_member.image.images(tag=catalog, **sort)]

    paged = [image.id for image in sdk_a_member.image.images(tag=catalog, limit=2, **sort)]

    assert len(first_page.json()["images"]) == 2
    assert "next" in first_page.json()
    assert len(paged) == len(CATALOG)
    assert paged == unpaged


# -- updates ---------------------------------------------------------------------------------------


def test_update_image__name_and_extra_properties__are_saved(sdk_a_member: Connection, tag: str) -> None:
    made = _create(sdk_a_member, "sdk-update", tag, app_tier="web", obsolete="yes")

    sdk_a_member.image.update_image(made.id, name="sdk-updated", app_release="12")
    current = sdk_a_member.image.get_image(made.id)
    kept = {k: v for k, v in current.properties.items() if k != "obsolete"}
    sdk_a_member.image.update_image(current, properties=kept)
    final = sdk_a_member.image.get_image(made.id)

    assert final.name == "sdk-updated"
    assert final.properties["app_tier"] == "web"
    assert final.properties["app_release"] == "12"
    assert "obsolete" not in final.properties
    assert final.updated_at >= made.updated_at


def test_delete_image__protected__is_forbidden_until_unprotected(sdk_a_member: Connection, tag: str) -> None:
    made = _create(sdk_a_member, "sdk-protected", tag)
    sdk_a_member.image.update_image(made.id, is_protected=True)

    with pytest.raises(exceptions.ForbiddenException):
        sdk_a_member.image.delete_image(made.id)
    assert sdk_a_member.image.get_image(made.id).is_protected is True

    sdk_a_member.image.update_image(made.id, is_protected=False)
    sdk_a_member.image.delete_image(made.id)
    with pytest.raises(exceptions.NotFoundException):
        sdk_a_member.image.get_image(made.id)


def test_delete_image__twice__the_second_is_not_found(sdk_a_member: Connection, tag: str) -> None:
    made = _create(sdk_a_member, "sdk-delete", tag)
    sdk_a_member.image.delete_image(made.id)

    with pytest.raises(exceptions.NotFoundException):
        sdk_a_member.image.delete_image(made.id, ignore_missing=False)
    assert made.id not in [image.id for image in sdk_a_member.image.images(tag=tag)]


def test_tags__added_and_removed__show_on_the_image(sdk_a_member: Connection, tag: str) -> None:
    made = _create(sdk_a_member, "sdk-tags", tag)

    sdk_a_member.image.add_tag(made.id, "gold")
    sdk_a_member.image.add_tag(made.id, "gold")
    with_gold = sdk_a_member.image.get_image(made.id).tags
    sdk_a_member.image.remove_tag(made.id, "gold")

    assert sorted(with_gold) == sorted([tag, "gold"])
    assert sdk_a_member.image.get_image(made.id).tags == [tag]
    with pytest.raises(exceptions.NotFoundException):
        sdk_a_member.image.remove_tag(made.id, "gold")


@pytest.mark.parametrize("action", ["deactivate", "reactivate"])
def test_status_action__on_a_queued_image__is_403_which_the_sdk_does_not_raise(
    sdk_a_member: Connection, tag: str, action: str
) -> None:
    made = _create(sdk_a_member, f"sdk-{action}", tag)

    # Image.deactivate/reactivate post through a proxy built with raise_exc=False and never look at the status.
    getattr(sdk_a_member.image, f"{action}_image")(made.id)
    response = sdk_a_member.image.post(f"/images/{made.id}/actions/{action}")

    assert response.status_code == 403
    with pytest.raises(exceptions.ForbiddenException):
        exceptions.raise_from_response(response)
    assert sdk_a_member.image.get_image(made.id).status == "queued"


def test_create_image__with_an_id_in_use__conflicts(sdk_a_member: Connection, tag: str) -> None:
    made = _create(sdk_a_member, "sdk-dup", tag)

    with pytest.raises(exceptions.ConflictException):
        _create(sdk_a_member, "sdk-dup-2", tag, id=made.id)


def test_create_image__with_the_id_of_a_deleted_image__conflicts(sdk_a_member: Connection, tag: str) -> None:
    made = _create(sdk_a_member, "sdk-reuse", tag)
    sdk_a_member.image.delete_image(made.id)

    with pytest.raises(exceptions.ConflictException):
        _create(sdk_a_member, "sdk-reuse-2", tag, id=made.id)


# -- visibility and roles ---------------------------------------------------------------------------


@pytest.mark.parametrize("visibility", ["private", "shared"])
def test_other_projects_image__is_not_found_rather_than_forbidden(
    sdk_a_member: Connection, sdk_b_member: Connection, sdk_b_reader: Connection, tag: str, visibility: str
) -> None:
    made = _create(sdk_a_member, f"sdk-{visibility}", tag, visibility=visibility)

    for outsider in (sdk_b_member, sdk_b_reader):
        with pytest.raises(exceptions.NotFoundException):
            outsider.image.get_image(made.id)
        assert list(outsider.image.images(tag=tag)) == []
    with pytest.raises(exceptions.NotFoundException):
        sdk_b_member.image.update_image(made.id, name="stolen")
    with pytest.raises(exceptions.NotFoundException):
        sdk_b_member.image.delete_image(made.id, ignore_missing=False)
    assert sdk_a_member.image.get_image(made.id).name == f"sdk-{visibility}"


def test_publicize__by_a_member__is_forbidden(sdk_a_member: Connection, tag: str) -> None:
    made = _create(sdk_a_member, "sdk-not-public", tag)

    with pytest.raises(exceptions.ForbiddenException):
        _create(sdk_a_member, "sdk-public-attempt", tag, visibility="public")
    with pytest.raises(exceptions.ForbiddenException):
        sdk_a_member.image.update_image(made.id, visibility="public")
    assert sdk_a_member.image.get_image(made.id).visibility == "shared"


def test_public_image__made_public_by_admin__is_seen_but_not_changed_by_other_projects(
    sdk_a_member: Connection, sdk_admin: Connection, sdk_b_member: Connection, sdk_b_reader: Connection, tag: str
) -> None:
    made = _create(sdk_a_member, "sdk-public", tag)
    assert list(sdk_b_reader.image.images(tag=tag)) == []

    sdk_admin.image.update_image(made.id, visibility="public")

    assert sdk_b_reader.image.get_image(made.id).visibility == "public"
    assert [image.id for image in sdk_b_reader.image.images(tag=tag)] == [made.id]
    assert [image.id for image in sdk_b_reader.image.images(tag=tag, visibility="public")] == [made.id]
    with pytest.raises(exceptions.ForbiddenException):
        sdk_b_member.image.update_image(made.id, name="defaced")
    with pytest.raises(exceptions.ForbiddenException):
        sdk_b_member.image.delete_image(made.id)


def test_reader__sees_its_projects_images_but_cannot_write(
    sdk_a_member: Connection, sdk_a_reader: Connection, tag: str
) -> None:
    made = _create(sdk_a_member, "sdk-read-only", tag)

    assert sdk_a_reader.image.get_image(made.id).name == "sdk-read-only"
    assert [image.id for image in sdk_a_reader.image.images(tag=tag)] == [made.id]
    with pytest.raises(exceptions.ForbiddenException):
        _create(sdk_a_reader, "sdk-reader-create", tag)
    with pytest.raises(exceptions.ForbiddenException):
        sdk_a_reader.image.update_image(made.id, name="renamed")
    with pytest.raises(exceptions.ForbiddenException):
        sdk_a_reader.image.add_tag(made.id, "nope")


def test_hidden_image__is_left_out_of_lists_unless_asked_for(sdk_a_member: Connection, tag: str) -> None:
    # create_image turns every keyword it does not know into a string ("True"); meta passes values through.
    hidden = _create(sdk_a_member, "sdk-hidden", tag, meta={"is_hidden": True})
    shown = _create(sdk_a_member, "sdk-shown", tag)

    default = [image.id for image in sdk_a_member.image.images(tag=tag)]
    only_hidden = [image.id for image in sdk_a_member.image.images(tag=tag, is_hidden=True)]

    assert default == [shown.id]
    assert only_hidden == [hidden.id]
    assert sdk_a_member.image.get_image(hidden.id).is_hidden is True


def test_admin__sees_every_projects_images(sdk_a_member: Connection, sdk_admin: Connection, tag: str) -> None:
    made = _create(sdk_a_member, "sdk-admin-view", tag, visibility="private")

    assert sdk_admin.image.get_image(made.id).owner == PROJECT_A
    assert [image.id for image in sdk_admin.image.images(tag=tag)] == [made.id]
    assert [image.id for image in sdk_admin.image.images(tag=tag, owner=ADMIN.project_id)] == []
