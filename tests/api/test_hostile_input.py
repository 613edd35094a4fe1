"""Hostile and odd input at create and PATCH, over HTTP against the local stack: never a 5xx, nothing lost.

Two halves. The named cases are the ones an independent probe found (each gave a 500, or an image nobody could
read, list or delete): each must get Glance's status with a JSON message. The property test throws arbitrary JSON
values, property names and patches at ``POST /v2/images`` and ``PATCH``, and holds every image it manages to
create to the same promise: it can be read, it shows in the admin and community listings (which must keep
answering for everyone), and it can be deleted. Examples are bounded (``max_examples``), so the test takes seconds.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.limits import IMAGE_METADATA_BYTES, MAX_DB_INT, MAX_JSON_DEPTH
from tests.api.support import A_MEMBER, ADMIN, B_MEMBER, PATCH_V20, PATCH_V21, GlanceHttp, Persona

pytestmark = pytest.mark.api

WIDE = "\U0001d518"  # four bytes in UTF-8
JSON_TYPE = {"Content-Type": "application/json"}


def _post(http: GlanceHttp, raw: str | bytes, persona: Persona = A_MEMBER) -> Any:
    return http.request("POST", "/v2/images", persona=persona, headers=JSON_TYPE, data=raw)


def _patch_raw(http: GlanceHttp, image_id: str, raw: str, media_type: str = PATCH_V21) -> Any:
    return http.request(
        "PATCH", f"/v2/images/{image_id}", persona=A_MEMBER, headers={"Content-Type": media_type}, data=raw
    )


def _json_error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"].startswith(f"{status} ") and body["message"], body
    return str(body["message"])


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# -- the probe's cases ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param(json.dumps({"": "x"}), 400, id="empty-property-name"),
        pytest.param(json.dumps({"name": "\ud800"}), 400, id="lone-surrogate-in-a-value"),
        pytest.param(json.dumps({"p\udfff": "x"}), 400, id="lone-surrogate-in-a-name"),
        pytest.param(json.dumps({"min_ram": 10**39}), 400, id="min_ram-of-40-digits"),
        pytest.param(json.dumps({"min_disk": MAX_DB_INT + 1}), 400, id="min_disk-past-a-db-integer"),
        pytest.param(json.dumps({"p": "x" * (IMAGE_METADATA_BYTES + 1)}), 413, id="property-past-the-item-budget"),
        pytest.param('{"p": ' + _nested(MAX_JSON_DEPTH + 1) + "}", 400, id="nested-past-the-depth"),
        pytest.param('{"p": ' + _nested(100_000) + "}", 400, id="nested-past-the-parser"),
    ],
)
def test_create__with_what_the_table_cannot_store__is_refused_with_glances_status(
    http: GlanceHttp, raw: str, status: int
) -> None:
    message = _json_error(_post(http, raw), status)

    assert "Traceback" not in message


def test_create__with_a_255_character_name_of_wide_characters__is_stored_read_listed_and_deleted(
    http: GlanceHttp, tag: str
) -> None:
    name = WIDE * 255
    image = http.create(A_MEMBER, name=name, tags=[tag])

    listed = http.request("GET", "/v2/images", persona=A_MEMBER, params={"tag": tag, "sort": "name:asc"})

    assert http.show(image["id"], A_MEMBER).json()["name"] == name
    assert [i["name"] for i in listed.json()["images"]] == [name]
    assert http.request("DELETE", f"/v2/images/{image['id']}", persona=A_MEMBER).status_code == 204


def test_patch__growing_an_image_past_the_item_budget__is_413_and_keeps_the_image(http: GlanceHttp, tag: str) -> None:
    image = http.create(A_MEMBER, tags=[tag])
    half = "v" * (IMAGE_METADATA_BYTES // 2)
    first = http.patch(image["id"], [{"op": "add", "path": "/p1", "value": half}], persona=A_MEMBER)

    second = http.patch(image["id"], [{"op": "add", "path": "/p2", "value": half}], persona=A_MEMBER)

    assert first.status_code == 200, first.text
    _json_error(second, 413)
    shown = http.show(image["id"], A_MEMBER).json()
    assert shown["p1"] == half and "p2" not in shown


@pytest.mark.parametrize(
    "ops",
    [
        pytest.param([{"op": "add", "path": "/", "value": "x"}], id="empty-name"),
        pytest.param([{"op": "add", "path": "/p", "value": "\ud800"}], id="lone-surrogate"),
        pytest.param([{"op": "replace", "path": "/min_ram", "value": 10**39}], id="min_ram-of-40-digits"),
        pytest.param([{"op": "add", "path": "/p", "value": [[[]]]}], id="not-a-string"),
    ],
)
def test_patch__with_what_the_table_cannot_store__is_400(http: GlanceHttp, tag: str, ops: list[Any]) -> None:
    image = http.create(A_MEMBER, tags=[tag])

    _json_error(_patch_raw(http, image["id"], json.dumps(ops)), 400)

    assert http.show(image["id"], A_MEMBER).status_code == 200


def test_patch__nested_past_the_parser__is_400(http: GlanceHttp, tag: str) -> None:
    image = http.create(A_MEMBER, tags=[tag])

    _json_error(_patch_raw(http, image["id"], _nested(100_000)), 400)


def test_member__with_an_id_too_long_for_a_key__is_400(http: GlanceHttp, tag: str) -> None:
    image = http.create(A_MEMBER, tags=[tag], visibility="shared")

    response = http.request("POST", f"/v2/images/{image['id']}/members", persona=A_MEMBER, json={"member": WIDE * 255})

    _json_error(response, 400)


# -- arbitrary input --------------------------------------------------------------------------------

_SPECIAL_NAMES = st.sampled_from(
    ["", " ", "\ud800", "a\udfff", "\x00", "~", "/", "~1", "location", "deleted", "os_glance_x", "id", "status",
     "name", "tags", "min_ram", "visibility", "protected", "os_hidden", "owner", "disk_format", "locations",
     "a" * 255, "a" * 256, WIDE * 255, WIDE * 256, "\u00e9" * 255]
)  # fmt: skip
_LONG_NAMES = st.text(alphabet=WIDE + "ab\u00e9", min_size=250, max_size=260)
_NAMES = st.one_of(_SPECIAL_NAMES, st.text(max_size=20), _LONG_NAMES)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**37, max_value=10**45),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(["", "\ud800", WIDE * 300, "raw", "qcow2", "bare", "public", "community", "shared"]),
)
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NAMES, inner, max_size=3),
                     max_leaves=8)  # fmt: skip
_BODIES = st.dictionaries(_NAMES, _JSON, max_size=6)
_OPS = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "replace", "remove", "test", "move", ""])},
    optional={"path": st.one_of(_NAMES.map(lambda n: "/" + n.replace("~", "~0").replace("/", "~1")), st.text()),
              "value": _JSON},
)  # fmt: skip
_PATCHES = st.lists(st.lists(_OPS, max_size=3), max_size=3)


def _raw_json(value: object) -> str:
    # ensure_ascii: lone surrogates travel as \\udXXX escapes, as a hostile client would send them.
    return json.dumps(value, ensure_ascii=True)


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(body=_BODIES, patches=_PATCHES, v20=st.booleans())
def test_arbitrary_create_and_patch__never_5xx__and_every_image_is_read_listed_and_deleted(
    http: GlanceHttp, body: dict[str, Any], patches: list[list[dict[str, Any]]], v20: bool
) -> None:
    marker = f"hyp-{uuid.uuid4().hex[:12]}"
    created = _post(http, _raw_json({**body, "marker_prop": marker}))
    assert created.status_code < 500, created.text
    if created.status_code != 201:
        return
    image_id = created.json()["id"]
    try:
        for ops in patches:
            patched = _patch_raw(http, image_id, _raw_json(ops), PATCH_V20 if v20 else PATCH_V21)
            assert patched.status_code < 500, patched.text
        _assert_readable_and_listed(http, image_id)
    finally:
        http.purge(image_id)
    assert http.show(image_id).status_code == 404


def _assert_readable_and_listed(http: GlanceHttp, image_id: str) -> None:
    shown = http.show(image_id, A_MEMBER)
    assert shown.status_code == 200, shown.text
    every = http.request("GET", "/v2/images", persona=ADMIN, params={"id": image_id, "visibility": "all"})
    assert every.status_code == 200, every.text
    assert [i["id"] for i in every.json()["images"]] == [image_id]
    for persona, params in ((ADMIN, {}), (ADMIN, {"visibility": "community"}), (B_MEMBER, {"visibility": "community"})):
        listed = http.request("GET", "/v2/images", persona=persona, params={**params, "limit": 5})
        assert listed.status_code == 200, listed.text
    sorted_by_name = http.request("GET", "/v2/images", persona=A_MEMBER, params={"sort": "name:desc", "limit": 5})
    assert sorted_by_name.status_code == 200, sorted_by_name.text


def test_metadef_namespace__past_the_item_budget__is_413(http: GlanceHttp) -> None:
    enum = [f"value-{i:06d}-" + "v" * 40 for i in range(8000)]  # about 440 KiB in one property: past an item
    body = {
        "namespace": f"hostile-{uuid.uuid4().hex[:8]}",
        "properties": {"p": {"title": "p", "type": "string", "enum": enum}},
    }

    response = http.request("POST", "/v2/metadefs/namespaces", persona=ADMIN, json=body)

    assert response.status_code == 413, response.text[:300]
    assert response.json()["message"].startswith("The metadata definition takes")
    assert http.request("GET", f"/v2/metadefs/namespaces/{body['namespace']}", persona=ADMIN).status_code == 404


def test_metadef_namespace__nested_past_the_depth__is_400(http: GlanceHttp) -> None:
    raw = '{"namespace": "deep", "properties": {"p": {"type": "array", "items": ' + _nested(MAX_JSON_DEPTH) + "}}}"

    response = http.request("POST", "/v2/metadefs/namespaces", persona=ADMIN, headers=JSON_TYPE, data=raw)

    _json_error(response, 400)
