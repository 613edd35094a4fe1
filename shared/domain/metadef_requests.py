"""What a client sends to the metadata definitions catalog: request bodies checked into specs (``parse_*``: Glance's
schema checks, ``InvalidInputError`` 400, or ``ReadOnlyPropertyError`` 403 for a read-only attribute), and the
catalog's values a spec creates or updates (``new_*``, ``updated_namespace``). The values are
``shared.domain.metadefs``'.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.domain.errors import InvalidInputError, ReadOnlyPropertyError
from shared.domain.metadefs import (
    PROPERTY_KEYS,
    PROPERTY_TYPES,
    VISIBILITIES,
    MetadefObject,
    MetadefProperty,
    Namespace,
    ResourceTypeAssociation,
)

# Attributes the service sets: a body naming one is refused with 403, as Glance's deserializers do.
_NAMESPACE_READ_ONLY = ("self", "schema", "created_at", "updated_at")
_CHILD_READ_ONLY = ("created_at", "updated_at")
_OBJECT_READ_ONLY = ("self", "schema", "created_at", "updated_at")


@dataclass(frozen=True)
class NamespaceSpec:
    """A namespace as a client asked for it (create or full update)."""

    namespace: str
    display_name: str | None
    description: str | None
    visibility: str | None
    protected: bool | None
    owner: str | None
    associations: list[AssociationSpec]
    objects: list[ObjectSpec]
    properties: list[PropertySpec]
    tags: list[str]


@dataclass(frozen=True)
class ObjectSpec:
    """An object as a client described it."""

    name: str
    description: str | None
    required: tuple[str, ...]
    properties: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class PropertySpec:
    """A property definition as a client described it."""

    name: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class AssociationSpec:
    """A resource type association as a client described it."""

    name: str
    prefix: str | None
    properties_target: str | None


# -- parsing request bodies ----------------------------------------------------------------------


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInputError(f"Invalid {what}: the body must be a JSON object.")
    return body


def _read_only(body: Mapping[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if name in body:
            raise ReadOnlyPropertyError(name=name)


def _unknown(body: Mapping[str, Any], allowed: set[str] | frozenset[str], what: str) -> None:
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise InvalidInputError(f"Additional properties are not allowed ({', '.join(map(repr, extra))}) in {what}.")


def _string(body: Mapping[str, Any], key: str, what: str, max_length: int | None, required: bool = False) -> str | None:
    if key not in body or body[key] is None:
        if required:
            raise InvalidInputError(f"'{key}' is a required property of {what}.")
        if key in body:
            raise InvalidInputError(f"None is not of type 'string' ({what} {key}).")
        return None
    value = body[key]
    if not isinstance(value, str):
        raise InvalidInputError(f"{value!r} is not of type 'string' ({what} {key}).")
    if max_length is not None and len(value) > max_length:
        raise InvalidInputError(f"{value!r} is too long: {what} {key} takes at most {max_length} characters.")
    if required and not value.strip():
        raise InvalidInputError(f"{what} {key} must not be empty.")
    return value


def _string_list(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"{value!r} is not an array of strings ({what}).")
    if len(set(value)) != len(value):
        raise InvalidInputError(f"{value!r} has non-unique elements ({what}).")
    return tuple(value)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_list(value: Any) -> bool:
    return isinstance(value, list)


def _is_type(value: Any) -> bool:
    return value in PROPERTY_TYPES


def _is_regex(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        re.compile(value)
    except re.error:
        return False
    return True


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_items(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    return ("type" not in value or _is_type(value["type"])) and ("enum" not in value or _is_list(value["enum"]))


# What each key of a property definition must be (Glance's ``#/definitions/property``), and how to say so.
_DEFINITION_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "type": (_is_type, f"one of {list(PROPERTY_TYPES)}"),
    "title": (_is_str, "of type 'string'"),
    "description": (_is_str, "of type 'string'"),
    "pattern": (_is_regex, "a 'regex'"),
    "minimum": (_number, "of type 'number'"),
    "maximum": (_number, "of type 'number'"),
    "minLength": (_non_negative_int, "a non-negative integer"),
    "maxLength": (_non_negative_int, "a non-negative integer"),
    "minItems": (_non_negative_int, "a non-negative integer"),
    "maxItems": (_non_negative_int, "a non-negative integer"),
    "readonly": (_is_bool, "of type 'boolean'"),
    "uniqueItems": (_is_bool, "of type 'boolean'"),
    "additionalItems": (_is_bool, "of type 'boolean'"),
    "confidential": (_is_bool, "of type 'boolean'"),
    "enum": (_is_list, "of type 'array'"),
    "operators": (_is_string_list, "an array of strings"),
    "items": (_is_items, "an object with a valid 'type' and an array 'enum'"),
}


def _check_definition(name: str, schema: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A property definition: Glance's ``#/definitions/property`` item (``title`` and ``type`` required)."""
    where = f"{what} {name}"
    _unknown(schema, PROPERTY_KEYS | {"name"}, where)
    for key in ("title", "type"):
        if key not in schema:
            raise InvalidInputError(f"'{key}' is a required property of {where}.")
    for key, (check, expected) in _DEFINITION_CHECKS.items():
        if key in schema and not check(schema[key]):
            raise InvalidInputError(f"{schema[key]!r} is not {expected} ({where} {key}).")
    return {k: v for k, v in schema.items() if k != "name"}


def _definitions(value: Any, what: str) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict):
        raise InvalidInputError(f"{value!r} is not of type 'object' ({what} properties).")
    out: dict[str, dict[str, Any]] = {}
    for name, schema in value.items():
        if not isinstance(schema, dict):
            raise InvalidInputError(f"{schema!r} is not of type 'object' ({what} property {name}).")
        if len(name) > 80:
            raise InvalidInputError(f"Property name {name!r} is too long: at most 80 characters.")
        out[name] = _check_definition(name, schema, f"{what} property")
    return out


def parse_namespace(body: Any) -> NamespaceSpec:
    """A namespace body (create or update): Glance's namespace schema; read-only attributes are a 403."""
    body = _object(body, "namespace")
    _read_only(body, _NAMESPACE_READ_ONLY)
    allowed = {
        "namespace", "display_name", "description", "visibility", "protected", "owner",
        "resource_type_associations", "properties", "objects", "tags",
    }  # fmt: skip
    _unknown(body, allowed, "namespace")
    name = _string(body, "namespace", "namespace", 80, required=True)
    assert name is not None
    visibility = _string(body, "visibility", "namespace", None)
    if visibility is not None and visibility not in VISIBILITIES:
        raise InvalidInputError(f"{visibility!r} is not one of {list(VISIBILITIES)} (namespace visibility).")
    protected = body.get("protected")
    if "protected" in body and not isinstance(protected, bool):
        raise InvalidInputError(f"{protected!r} is not of type 'boolean' (namespace protected).")
    associations = [parse_association(a) for a in _list(body, "resource_type_associations")]
    objects = [parse_object(o, nested=True) for o in _list(body, "objects")]
    properties = [PropertySpec(n, s) for n, s in _definitions(body.get("properties", {}), "namespace").items()]
    tags = [parse_tag_name(t) for t in _list(body, "tags")]
    return NamespaceSpec(
        namespace=name,
        display_name=_string(body, "display_name", "namespace", 80),
        description=_string(body, "description", "namespace", 500),
        visibility=visibility,
        protected=protected,
        owner=_string(body, "owner", "namespace", 255),
        associations=associations,
        objects=objects,
        properties=properties,
        tags=tags,
    )


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key, [])
    if not isinstance(value, list):
        raise InvalidInputError(f"{value!r} is not of type 'array' (namespace {key}).")
    return value


def parse_object(body: Any, nested: bool = False) -> ObjectSpec:
    """An object body: ``name`` required, ``properties`` are property definitions."""
    body = _object(body, "object")
    if not nested:
        _read_only(body, _OBJECT_READ_ONLY)
    _unknown(body, {"name", "description", "required", "properties", "self", "schema", "created_at", "updated_at"},
             "object")  # fmt: skip
    name = _string(body, "name", "object", 80, required=True)
    assert name is not None
    required = _string_list(body["required"], "object required") if "required" in body else ()
    return ObjectSpec(
        name=name,
        description=_string(body, "description", "object", None),
        required=required,
        properties=_definitions(body.get("properties", {}), "object"),
    )


def parse_property(body: Any) -> PropertySpec:
    """A property body: ``name``, ``title`` and ``type`` required."""
    body = _object(body, "property")
    _read_only(body, _CHILD_READ_ONLY)
    name = _string(body, "name", "property", 80, required=True)
    assert name is not None
    return PropertySpec(name, _check_definition(name, body, "property"))


def parse_tag_name(body: Any) -> str:
    """A tag body ``{"name": ...}`` (also an item of a bulk create)."""
    body = _object(body, "tag")
    _read_only(body, _CHILD_READ_ONLY)
    _unknown(body, {"name"}, "tag")
    name = _string(body, "name", "tag", 80, required=True)
    assert name is not None
    return name


def check_tag_name(name: str) -> str:
    """A tag name from a URL."""
    if not name.strip() or len(name) > 80:
        raise InvalidInputError(f"Invalid tag name {name!r}: 1 to 80 characters.")
    return name


def parse_tags(body: Any) -> list[str]:
    """A bulk tags body ``{"tags": [{"name": ...}, ...]}``."""
    body = _object(body, "tags")
    _unknown(body, {"tags"}, "tags")
    if "tags" not in body:
        raise InvalidInputError("'tags' is a required property.")
    if not isinstance(body["tags"], list):
        raise InvalidInputError(f"{body['tags']!r} is not of type 'array' (tags).")
    return [parse_tag_name(t) for t in body["tags"]]


def parse_association(body: Any) -> AssociationSpec:
    """A resource type association body: ``name`` required, optional ``prefix`` and ``properties_target``."""
    body = _object(body, "resource type association")
    _read_only(body, _CHILD_READ_ONLY)
    _unknown(body, {"name", "prefix", "properties_target"}, "resource type association")
    name = _string(body, "name", "resource type association", 80, required=True)
    assert name is not None
    return AssociationSpec(
        name=name,
        prefix=_string(body, "prefix", "resource type association", 80),
        properties_target=_string(body, "properties_target", "resource type association", 80),
    )


def new_namespace(spec: NamespaceSpec, owner: str | None, now: datetime) -> Namespace:
    """The namespace ``spec`` creates (owner: the caller's project unless given)."""
    return Namespace(
        namespace=spec.namespace,
        owner=spec.owner if spec.owner is not None else owner,
        visibility=spec.visibility or "private",
        protected=bool(spec.protected),
        display_name=spec.display_name,
        description=spec.description,
        created_at=now,
        updated_at=now,
    )


def updated_namespace(ns: Namespace, spec: NamespaceSpec, caller_owner: str | None, now: datetime) -> Namespace:
    """A full update (PUT): unset optional fields fall back to the create defaults, as in Glance."""
    return replace(
        ns,
        namespace=spec.namespace,
        display_name=spec.display_name,
        description=spec.description,
        visibility=spec.visibility or "private",
        protected=bool(spec.protected),
        owner=spec.owner or caller_owner,
        updated_at=now,
    )


def new_association(spec: AssociationSpec, now: datetime) -> ResourceTypeAssociation:
    """The association ``spec`` creates."""
    return ResourceTypeAssociation(spec.name, spec.prefix, spec.properties_target, now, now)


def new_object(spec: ObjectSpec, now: datetime) -> MetadefObject:
    """The object ``spec`` creates."""
    return MetadefObject(spec.name, spec.description, spec.required, spec.properties, now, now)


def new_property(spec: PropertySpec, now: datetime) -> MetadefProperty:
    """The property ``spec`` creates."""
    return MetadefProperty(spec.name, spec.schema, now, now)
