"""The image API driven by python-glanceclient, which fetches /v2/schemas/image and validates every image locally.

glanceclient turns an error response into a typed exception (``HTTPNotFound``, ``HTTPForbidden``, ...) only if it
can read the body: HTML and plain text always work, JSON only as a mapping of objects that hold a ``message``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from glanceclient import exc

from tests.api.support import A_MEMBER, B_MEMBER, PATCH_V20, PATCH_V21, GlanceHttp

pytestmark = pytest.mark.api


def _create(client: Any, name: str, tag: str, **attrs: Any) -> Any:
    attrs.setdefault("disk_format", "raw")
    attrs.setdefault("container_format", "bare")
    tags = [tag, *attrs.pop("tags", [])]
    return client.images.create(name=name, tags=tags, **attrs)


def test_image__create_show_update_tag_delete__round_trips(glance_a_member: Any, tag: str) -> None:
    image_id = str(uuid.uuid4())

    made = _create(glance_a_member, "gc-life", tag, id=image_id, min_disk=2, app_tier="web", obsolete="yes")
    shown = glance_a_member.images.get(image_id)
    updated = glance_a_member.images.update(
        image_id, remove_props=["obsolete"], name="gc-life-2", app_release="3", protected=True
    )
    glance_a_member.image_tags.update(image_id, "gold")
    tagged = glance_a_member.images.get(image_id)
    glance_a_member.image_tags.delete(image_id, "gold")
    glance_a_member.images.update(image_id, protected=False)
    glance_a_member.images.delete(image_id)

    assert made["id"] == image_id
    assert (shown["name"], shown["status"], shown["min_disk"], shown["app_tier"]) == ("gc-life", "queued", 2, "web")
    assert updated["name"] == "gc-life-2"
    assert updated["app_release"] == "3"
    assert updated["protected"] is True
    assert "obsolete" not in updated
    assert sorted(tagged["tags"]) == sorted([tag, "gold"])
    assert [image["id"] for image in glance_a_member.images.list(filters={"tag": [tag]})] == []


@pytest.fixture
def five_images(glance_a_member: Any, tag: str) -> dict[str, str]:
    """Five queued images under the test's tag, by name: c, a, e, b, d (created in that order)."""
    formats = {"c": "qcow2", "a": "raw", "e": "vhd", "b": "raw", "d": "iso"}
    return {name: _create(glance_a_member, name, tag, disk_format=fmt)["id"] for name, fmt in formats.items()}


def test_list__two_per_page__yields_every_image_exactly_once(
    glance_a_member: Any, tag: str, five_images: dict[str, str]
) -> None:
    ids = [image["id"] for image in glance_a_member.images.list(filters={"tag": [tag]}, page_size=2)]

    assert sorted(ids) == sorted(five_images.values())
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "sorting",
    [{"sort": "name:asc"}, {"sort_key": "name", "sort_dir": "asc"}],
    ids=["sort", "sort_key"],
)
def test_list__sorted_and_paged__keeps_the_order_across_pages(
    glance_a_member: Any, tag: str, five_images: dict[str, str], sorting: dict[str, str]
) -> None:
    names = [image["name"] for image in glance_a_member.images.list(filters={"tag": [tag]}, page_size=2, **sorting)]

    assert names == ["a", "b", "c", "d", "e"]


def test_list__with_a_limit__stops_after_that_many(glance_a_member: Any, tag: str, five_images: dict[str, str]) -> None:
    images = list(glance_a_member.images.list(filters={"tag": [tag]}, page_size=2, limit=3, sort="name:desc"))

    assert [image["name"] for image in images] == ["e", "d", "c"]


def test_list__with_filters__returns_the_matching_images(
    glance_a_member: Any, tag: str, five_images: dict[str, str]
) -> None:
    by_format = glance_a_member.images.list(filters={"tag": [tag], "disk_format": "in:raw,iso"}, sort="name:asc")
    by_name = glance_a_member.images.list(filters={"tag": [tag], "name": "in:a,e"}, sort="name:asc")
    by_sizes = glance_a_member.images.list(filters={"tag": [tag], "size_min": 0})

    assert [image["name"] for image in by_format] == ["a", "b", "d"]
    assert [image["name"] for image in by_name] == ["a", "e"]
    assert list(by_sizes) == []


@pytest.mark.parametrize("name", ["image", "images", "member", "members"])
def test_schemas__fetched_by_the_client__have_their_name_and_properties(glance_a_reader: Any, name: str) -> None:
    schema = glance_a_reader.schemas.get(name)

    assert schema.name == name
    assert schema.raw()["properties"]


def test_image_schema__marks_base_and_read_only_properties(glance_a_reader: Any) -> None:
    schema = glance_a_reader.schemas.get("image")

    assert schema.is_base_property("name")
    assert not schema.is_base_property("app_tier")
    assert schema.raw()["properties"]["status"]["readOnly"] is True


# -- raw HTTP for what glanceclient never sends ----------------------------------------------------------


def test_patch__v2_0_media_type__applies_draft_style_operations(
    glance_a_member: Any, http: GlanceHttp, tag: str
) -> None:
    image_id = _create(glance_a_member, "gc-v20", tag, obsolete="yes")["id"]

    response = http.patch(
        image_id,
        [{"replace": "/name", "value": "gc-v20-renamed"}, {"add": "/app_tier", "value": "db"}, {"remove": "/obsolete"}],
        persona=A_MEMBER,
        media_type=PATCH_V20,
    )
    shown = glance_a_member.images.get(image_id)

    assert response.status_code == 200, response.text
    assert response.json()["name"] == "gc-v20-renamed"
    assert (shown["name"], shown["app_tier"]) == ("gc-v20-renamed", "db")
    assert "obsolete" not in shown


def test_patch__add_of_an_existing_property__conflicts_in_v2_0_and_replaces_in_v2_1(
    glance_a_member: Any, http: GlanceHttp, tag: str
) -> None:
    image_id = _create(glance_a_member, "gc-add", tag, app_tier="web")["id"]

    v20 = http.patch(image_id, [{"add": "/app_tier", "value": "db"}], persona=A_MEMBER, media_type=PATCH_V20)
    v21 = http.patch(image_id, [{"op": "add", "path": "/app_tier", "value": "db"}], persona=A_MEMBER)

    assert v20.status_code == 409
    assert v21.status_code == 200
    assert glance_a_member.images.get(image_id)["app_tier"] == "db"


@pytest.mark.parametrize("content_type", ["application/json", "application/json-patch+json", None])
def test_patch__other_media_type__is_415_naming_the_accepted_ones(
    glance_a_member: Any, http: GlanceHttp, tag: str, content_type: str | None
) -> None:
    image_id = _create(glance_a_member, "gc-415", tag)["id"]
    headers = {"Content-Type": content_type} if content_type else {}

    response = http.request(
        "PATCH",
        f"/v2/images/{image_id}",
        persona=A_MEMBER,
        headers=headers,
        data=b'[{"op": "replace", "path": "/name", "value": "x"}]',
    )

    assert response.status_code == 415
    accepted = {value.strip() for value in response.headers["Accept-Patch"].split(",")}
    assert accepted == {PATCH_V20, PATCH_V21}
    assert glance_a_member.images.get(image_id)["name"] == "gc-415"


# -- errors as glanceclient raises them -----------------------------------------------------------------


def test_get__unknown_id__raises_http_not_found(glance_a_member: Any) -> None:
    missing = str(uuid.uuid4())

    with pytest.raises(exc.HTTPNotFound) as raised:
        glance_a_member.images.get(missing)

    assert missing in str(raised.value)


def test_get__another_projects_image__raises_http_not_found(
    glance_a_member: Any, glance_b_member: Any, tag: str
) -> None:
    image_id = _create(glance_b_member, "gc-b-private", tag, visibility="private")["id"]

    with pytest.raises(exc.HTTPNotFound):
        glance_a_member.images.get(image_id)
    with pytest.raises(exc.HTTPNotFound):
        glance_a_member.images.delete(image_id)


def test_create__as_a_reader__raises_http_forbidden(glance_a_reader: Any, tag: str) -> None:
    with pytest.raises(exc.HTTPForbidden):
        _create(glance_a_reader, "gc-reader", tag)


def test_delete__protected_image__raises_http_forbidden(glance_a_member: Any, tag: str) -> None:
    image_id = _create(glance_a_member, "gc-protected", tag, protected=True)["id"]

    with pytest.raises(exc.HTTPForbidden):
        glance_a_member.images.delete(image_id)


def test_publicize__as_a_member__raises_http_forbidden(glance_a_member: Any, tag: str) -> None:
    with pytest.raises(exc.HTTPForbidden):
        _create(glance_a_member, "gc-public", tag, visibility="public")


def test_create__with_an_id_in_use__raises_http_conflict(glance_a_member: Any, tag: str) -> None:
    image_id = _create(glance_a_member, "gc-dup", tag)["id"]

    with pytest.raises(exc.HTTPConflict):
        _create(glance_a_member, "gc-dup-2", tag, id=image_id)


def test_delete_tag__the_image_does_not_have__raises_http_not_found(glance_a_member: Any, tag: str) -> None:
    image_id = _create(glance_a_member, "gc-tags", tag)["id"]

    with pytest.raises(exc.HTTPNotFound):
        glance_a_member.image_tags.delete(image_id, "never-added")


@pytest.mark.parametrize(
    "query",
    [
        {"sort_key": "bogus"},
        {"sort_dir": "sideways"},
        {"marker": "00000000-0000-4000-8000-000000000000"},
        {"page_size": -1},
        {"filters": {"size_min": "big"}},
        {"filters": {"created_at": "after:2020-01-01T00:00:00Z"}},
    ],
    ids=["sort-key", "sort-dir", "marker", "limit", "size-min", "time-operator"],
)
def test_list__bad_query__raises_http_bad_request(glance_a_member: Any, query: dict[str, Any]) -> None:
    with pytest.raises(exc.HTTPBadRequest):
        list(glance_a_member.images.list(**query))


def test_other_projects_member__cannot_change_a_visible_image(
    glance_a_member: Any, glance_admin: Any, glance_b_member: Any, tag: str
) -> None:
    image_id = _create(glance_a_member, "gc-public", tag)["id"]
    glance_admin.images.update(image_id, visibility="public")

    assert glance_b_member.images.get(image_id)["visibility"] == "public"
    with pytest.raises(exc.HTTPForbidden):
        glance_b_member.images.update(image_id, name="defaced")


def test_identity__of_other_persona__is_what_the_server_records(glance_b_member: Any, tag: str) -> None:
    image = _create(glance_b_member, "gc-owner", tag)

    assert image["owner"] == B_MEMBER.project_id
