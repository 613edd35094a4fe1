"""Parsing of Glance's two JSON-patch dialects (glance/api/v2/images.py RequestDeserializer.update)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.api.patch import PATCH_V20, PATCH_V21, Change, decode_pointer, media_type, parse_changes
from shared.config import Settings
from shared.domain.errors import (
    ForbiddenError,
    InvalidInputError,
    ReadOnlyPropertyError,
    ReservedPropertyError,
    UnsupportedMediaTypeError,
)

SETTINGS = Settings()


def _v21(*ops: dict[str, Any]) -> list[Change]:
    return parse_changes(PATCH_V21, list(ops), SETTINGS)


def _v20(*ops: dict[str, Any]) -> list[Change]:
    return parse_changes(PATCH_V20, list(ops), SETTINGS)


# -- media types ----------------------------------------------------------------------------------


def test_parse_changes__v21_media_type__reads_op_path_value() -> None:
    changes = _v21(
        {"op": "replace", "path": "/name", "value": "cirros"},
        {"op": "add", "path": "/os_distro", "value": "cirros"},
        {"op": "remove", "path": "/hw_disk_bus"},
    )

    assert changes == [
        Change("replace", ("name",), "cirros"),
        Change("add", ("os_distro",), "cirros"),
        Change("remove", ("hw_disk_bus",), None),
    ]


def test_parse_changes__v20_media_type__reads_the_op_member_and_marks_add_strict() -> None:
    changes = _v20(
        {"replace": "/name", "value": "cirros"},
        {"add": "/os_distro", "value": "cirros"},
        {"remove": "/hw_disk_bus"},
    )

    assert [(c.op, c.path, c.value) for c in changes] == [
        ("replace", ("name",), "cirros"),
        ("add", ("os_distro",), "cirros"),
        ("remove", ("hw_disk_bus",), None),
    ]
    assert all(c.strict_add for c in changes)


def test_parse_changes__v21__does_not_mark_add_strict() -> None:
    assert not _v21({"op": "add", "path": "/os_distro", "value": "x"})[0].strict_add


@pytest.mark.parametrize(
    "content_type",
    [f"{PATCH_V21}; charset=UTF-8", PATCH_V21.upper(), f" {PATCH_V20} "],
)
def test_media_type__with_parameters_case_or_spaces__is_accepted(content_type: str) -> None:
    assert media_type(content_type) in (PATCH_V20, PATCH_V21)


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "application/json-patch+json", "application/openstack-images-v2.2-json-patch"],
)
def test_parse_changes__with_other_media_type__raises_unsupported_media_type(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as raised:
        parse_changes(content_type, [], SETTINGS)

    assert set(raised.value.allowed) == {PATCH_V20, PATCH_V21}


def test_parse_changes__media_type_is_checked_before_the_body() -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        parse_changes("application/json", {"not": "a list"}, SETTINGS)


# -- body and operations --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{"op": "add"}, "add", None, 3])
def test_parse_changes__with_body_not_a_list__is_invalid(body: Any) -> None:
    with pytest.raises(InvalidInputError, match="JSON array"):
        parse_changes(PATCH_V21, body, SETTINGS)


@pytest.mark.parametrize("item", ["replace", ["op", "replace"], None])
def test_parse_changes__with_operation_not_an_object__is_invalid(item: Any) -> None:
    with pytest.raises(InvalidInputError, match="JSON objects"):
        parse_changes(PATCH_V21, [item], SETTINGS)


def test_parse_changes__with_empty_list__returns_no_changes() -> None:
    assert _v21() == []


def test_parse_changes__v21_without_op__is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="Unable to find `op`"):
        _v21({"path": "/name", "value": "x"})


@pytest.mark.parametrize("op", ["test", "move", "copy", "ADD", ""])
def test_parse_changes__v21_with_unsupported_op__is_invalid(op: str) -> None:
    with pytest.raises(InvalidInputError, match="Invalid operation"):
        _v21({"op": op, "path": "/name", "value": "x"})


def test_parse_changes__v21_without_path__is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="path"):
        _v21({"op": "replace", "value": "x"})


def test_parse_changes__v20_without_op_member__is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="exactly one member"):
        _v20({"op": "replace", "path": "/name", "value": "x"})


def test_parse_changes__v20_with_several_op_members__is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="one member"):
        _v20({"add": "/name", "replace": "/name", "value": "x"})


# -- JSON pointers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pointer", "message"),
    [
        ("name", 'does not start with "/"'),
        ("", 'does not start with "/"'),
        ("//", 'end with "/"'),
        ("/locations//0", 'adjacent "/"'),
        ("/locations/ /0", 'adjacent "/"'),
        ("/name/", 'end with "/"'),
        ("/a~2b", "recognized escape"),
        ("/a~", "recognized escape"),
        ("/~", "recognized escape"),
    ],
)
def test_decode_pointer__with_malformed_pointer__is_invalid(pointer: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        decode_pointer(pointer)


@pytest.mark.parametrize("pointer", [1, None, ["/name"]])
def test_decode_pointer__with_non_string__is_invalid(pointer: object) -> None:
    with pytest.raises(InvalidInputError, match="must be a string"):
        decode_pointer(pointer)


@pytest.mark.parametrize(
    ("pointer", "parts"),
    [
        ("/name", ("name",)),
        ("/a~1b", ("a/b",)),
        ("/a~0b", ("a~b",)),
        ("/a~01", ("a~1",)),
        ("/a~10", ("a/0",)),
        ("/locations/0", ("locations", "0")),
        ("/ name ", ("name",)),
        # Glance strips every leading "/" before splitting, so a doubled first slash is accepted.
        ("//name", ("name",)),
    ],
)
def test_decode_pointer__unescapes_and_splits(pointer: str, parts: tuple[str, ...]) -> None:
    assert decode_pointer(pointer) == parts


def test_parse_changes__with_escaped_property_name__targets_the_decoded_name() -> None:
    change = _v21({"op": "add", "path": "/x~1y~0z", "value": "v"})[0]

    assert change.root == "x/y~z"


@pytest.mark.parametrize(
    ("op", "path"),
    [("add", "/locations/0"), ("add", "/locations/-"), ("remove", "/locations/1")],
)
def test_parse_changes__locations_index__is_allowed_for_add_and_remove(op: str, path: str) -> None:
    raw = {"op": op, "path": path, "value": {"url": "s3://b/k", "metadata": {}}}

    change = _v21(raw)[0]

    assert change.path == ("locations", path.rsplit("/", 1)[1])


@pytest.mark.parametrize(
    ("op", "path"),
    [
        ("replace", "/locations/0"),
        ("add", "/locations"),
        ("remove", "/locations"),
        ("add", "/name/x"),
        ("replace", "/tags/0"),
        ("remove", "/os_distro/x"),
        ("add", "/locations/0/url"),
    ],
)
def test_parse_changes__with_path_of_wrong_depth__is_invalid(op: str, path: str) -> None:
    with pytest.raises(InvalidInputError, match="Invalid JSON pointer"):
        _v21({"op": op, "path": path, "value": []})


# -- values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["add", "replace"])
def test_parse_changes__add_or_replace_without_value__is_invalid(op: str) -> None:
    with pytest.raises(InvalidInputError, match='requires a member named "value"'):
        _v21({"op": op, "path": "/name"})


def test_parse_changes__read_only_path_without_value__is_invalid_before_forbidden() -> None:
    with pytest.raises(InvalidInputError, match='requires a member named "value"'):
        _v21({"op": "replace", "path": "/status"})


def test_parse_changes__remove_without_value__is_valid() -> None:
    assert _v21({"op": "remove", "path": "/os_distro"}) == [Change("remove", ("os_distro",))]


def test_parse_changes__v20_add_without_value__is_invalid() -> None:
    with pytest.raises(InvalidInputError, match='requires a member named "value"'):
        _v20({"add": "/name"})


@pytest.mark.parametrize(
    "name",
    [
        "created_at",
        "updated_at",
        "status",
        "checksum",
        "size",
        "virtual_size",
        "direct_url",
        "self",
        "file",
        "schema",
        "id",
        "os_hash_algo",
        "os_hash_value",
    ],
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_parse_changes__on_read_only_property__is_forbidden(name: str, op: str) -> None:
    with pytest.raises(ReadOnlyPropertyError):
        _v21({"op": op, "path": f"/{name}", "value": "x"})


@pytest.mark.parametrize("name", ["location", "deleted", "deleted_at", "os_glance_import_task", "os_glance"])
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_parse_changes__on_reserved_property__is_forbidden(name: str, op: str) -> None:
    with pytest.raises(ReservedPropertyError):
        _v21({"op": op, "path": f"/{name}", "value": "x"})


def test_read_only_and_reserved_errors__are_forbidden_errors() -> None:
    assert issubclass(ReadOnlyPropertyError, ForbiddenError)
    assert issubclass(ReservedPropertyError, ForbiddenError)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/os_distro", 1),
        ("/os_distro", None),
        ("/os_distro", True),
        ("/os_distro", ["a"]),
        ("/min_ram", True),
        ("/min_ram", "512"),
        ("/min_ram", 1.5),
        ("/min_disk", None),
        ("/name", "x" * 256),
        ("/name", 3),
        ("/disk_format", "floppy"),
        ("/container_format", "zip"),
        ("/visibility", "everyone"),
        ("/visibility", None),
        ("/protected", "true"),
        ("/os_hidden", 1),
        ("/owner", "o" * 256),
        ("/tags", "a,b"),
        ("/tags", ["t" * 256]),
        ("/tags", [1]),
    ],
)
def test_parse_changes__with_value_of_wrong_type_or_shape__is_invalid(path: str, value: Any) -> None:
    with pytest.raises(InvalidInputError, match="Invalid value"):
        _v21({"op": "replace", "path": path, "value": value})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/os_distro", "cirros"),
        ("/min_ram", 0),
        ("/min_disk", 20),
        ("/name", "x" * 255),
        ("/name", None),
        ("/disk_format", "qcow2"),
        ("/disk_format", None),
        ("/container_format", "bare"),
        ("/visibility", "community"),
        ("/protected", True),
        ("/os_hidden", False),
        ("/tags", ["a", "t" * 255]),
    ],
)
def test_parse_changes__with_value_the_schema_accepts__keeps_the_value(path: str, value: Any) -> None:
    change = _v21({"op": "replace", "path": path, "value": value})[0]

    assert change.value == value


def test_parse_changes__with_property_name_over_255_characters__is_invalid() -> None:
    with pytest.raises(InvalidInputError, match="255"):
        _v21({"op": "add", "path": "/" + "k" * 256, "value": "v"})
