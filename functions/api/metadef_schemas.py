"""The metadata definitions schemas served under ``/v2/schemas/metadefs/{name}`` (the shapes of Glance's documents).

Clients (Horizon, python-glanceclient's ``md-*`` commands) read them to build forms and validate locally; the
server checks bodies with ``shared/domain/metadefs.py``, which follows the same rules.
"""

from __future__ import annotations

from functools import cache

from functions.api.schemas import Schema, collection_schema

_TYPES = ["array", "boolean", "integer", "number", "object", "string", None]


def _ro(description: str, fmt: str | None = "date-time") -> Schema:
    schema: Schema = {"type": "string", "readOnly": True, "description": description}
    if fmt:
        schema["format"] = fmt
    return schema


def _definitions() -> Schema:
    return {
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
        "stringArray": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "property": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["title", "type"],
                "properties": _property_fields(),
            },
        },
    }


def _property_fields() -> Schema:
    return {
        "name": {"type": "string", "maxLength": 80},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "operators": {"type": "array", "items": {"type": "string"}},
        "type": {"type": "string", "enum": _TYPES},
        "required": {"$ref": "#/definitions/stringArray"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "maxLength": {"$ref": "#/definitions/positiveInteger"},
        "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "pattern": {"type": "string", "format": "regex"},
        "enum": {"type": "array"},
        "readonly": {"type": "boolean"},
        "default": {},
        "items": {
            "type": "object",
            "properties": {"type": {"type": "string", "enum": _TYPES}, "enum": {"type": "array"}},
        },
        "maxItems": {"$ref": "#/definitions/positiveInteger"},
        "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
        "uniqueItems": {"type": "boolean", "default": False},
        "additionalItems": {"type": "boolean"},
    }


def _association() -> Schema:
    return {
        "name": "resource_type_association",
        "properties": {
            "name": {"type": "string", "maxLength": 80, "description": "The resource type, e.g. OS::Glance::Image."},
            "prefix": {"type": "string", "maxLength": 80, "description": "Prefix of its property names."},
            "properties_target": {"type": "string", "maxLength": 80,
                                  "description": "Which part of the resource the properties apply to."},
            "created_at": _ro("When the association was made"),
            "updated_at": _ro("When the association last changed"),
        },
        "additionalProperties": False,
        "required": ["name"],
        "definitions": _definitions(),
    }  # fmt: skip


def _object() -> Schema:
    return {
        "name": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 80},
            "description": {"type": "string"},
            "required": {"$ref": "#/definitions/stringArray"},
            "properties": {"$ref": "#/definitions/property"},
            "schema": {"type": "string", "readOnly": True},
            "self": {"type": "string", "readOnly": True},
            "created_at": _ro("When the object was created"),
            "updated_at": _ro("When the object last changed"),
        },
        "additionalProperties": False,
        "required": ["name"],
        "definitions": _definitions(),
    }


def _property() -> Schema:
    return {
        "name": "property",
        "properties": _property_fields(),
        "additionalProperties": False,
        "required": ["name", "title", "type"],
        "definitions": _definitions(),
    }


def _tag() -> Schema:
    return {
        "name": "tag",
        "properties": {
            "name": {"type": "string", "maxLength": 80},
            "created_at": _ro("When the tag was created"),
            "updated_at": _ro("When the tag last changed"),
        },
        "additionalProperties": False,
        "required": ["name"],
    }


def _namespace() -> Schema:
    return {
        "name": "namespace",
        "properties": {
            "namespace": {"type": "string", "maxLength": 80, "description": "Unique name of the namespace."},
            "display_name": {"type": "string", "maxLength": 80, "description": "Name shown in user interfaces."},
            "description": {"type": "string", "maxLength": 500, "description": "What the namespace describes."},
            "visibility": {"type": "string", "enum": ["public", "private"],
                           "description": "Who can see the namespace."},
            "protected": {"type": "boolean", "description": "Whether the namespace (and its content) can be deleted."},
            "owner": {"type": "string", "maxLength": 255, "description": "Project that owns the namespace."},
            "created_at": _ro("When the namespace was created"),
            "updated_at": _ro("When the namespace last changed"),
            "schema": {"type": "string", "readOnly": True},
            "self": {"type": "string", "readOnly": True},
            "resource_type_associations": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "prefix": {"type": "string"},
                                                           "properties_target": {"type": "string"}}},
            },
            "properties": {"$ref": "#/definitions/property"},
            "objects": {
                "type": "array",
                "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "description": {"type": "string"},
                    "required": {"$ref": "#/definitions/stringArray"},
                    "properties": {"$ref": "#/definitions/property"},
                }},
            },
            "tags": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        },
        "additionalProperties": False,
        "required": ["namespace"],
        "definitions": _definitions(),
    }  # fmt: skip


@cache
def metadef_schemas() -> dict[str, Schema]:
    """Every metadefs schema by its name under ``/v2/schemas/metadefs/`` (built once; callers must not mutate)."""
    namespace, obj, association, tag = _namespace(), _object(), _association(), _tag()
    namespaces = collection_schema("namespaces", namespace)
    namespaces["definitions"] = _definitions()
    objects = collection_schema("objects", obj)
    objects["definitions"] = _definitions()
    associations = collection_schema("resource_type_associations", association)
    # The properties collection is keyed by name: a map of property types where the others hold an array.
    properties = collection_schema("properties", {})
    properties["properties"]["properties"] = {"$ref": "#/definitions/property_type"}
    properties["definitions"] = {**_definitions(), "property_type": _definitions()["property"]}
    return {
        "namespace": namespace,
        "namespaces": namespaces,
        "object": obj,
        "objects": objects,
        "property": _property(),
        "properties": properties,
        "resource_type": association,
        "resource_types": associations,
        "tag": tag,
        "tags": collection_schema("tags", tag),
    }
