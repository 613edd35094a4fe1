"""JSON schemas served under ``/v2/schemas`` (python-glanceclient validates against them).

The image schema is also what request bodies are validated against (``wire.validate_image_fields``), so
what clients download and what the server enforces cannot drift apart.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from shared.config import Settings

UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
IMAGE_STATUSES = ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete",
                  "deactivated"]  # fmt: skip

Schema = dict[str, Any]


def _ro(schema: Schema) -> Schema:
    return {**schema, "readOnly": True}


@lru_cache(maxsize=4)
def image_properties(settings: Settings) -> dict[str, Schema]:
    """The base properties of an image, with the configured disk and container formats (built once per settings;
    callers must not mutate the result)."""
    nullable_str: Schema = {"type": ["null", "string"]}
    return {
        "id": {"type": "string", "pattern": UUID_PATTERN, "description": "Image identifier (UUID)"},
        "name": {**nullable_str, "maxLength": 255, "description": "Descriptive name for the image"},
        "status": _ro({"type": "string", "enum": IMAGE_STATUSES, "description": "Image status"}),
        "visibility": {
            "type": "string",
            "enum": ["community", "public", "private", "shared"],
            "description": "Scope of image accessibility",
        },
        "protected": {"type": "boolean", "description": "If true, the image cannot be deleted"},
        "os_hidden": {"type": "boolean", "description": "If true, the image is left out of default listings"},
        "checksum": _ro({**nullable_str, "maxLength": 32, "description": "MD5 of the image data"}),
        "os_hash_algo": _ro({**nullable_str, "maxLength": 64, "description": "Algorithm of os_hash_value"}),
        "os_hash_value": _ro({**nullable_str, "maxLength": 128, "description": "Secure hash of the image data"}),
        "owner": {**nullable_str, "maxLength": 255, "description": "Project that owns the image"},
        "size": _ro({"type": ["null", "integer"], "description": "Size of the image data in bytes"}),
        "virtual_size": _ro({"type": ["null", "integer"], "description": "Virtual size of the image in bytes"}),
        "container_format": {
            **nullable_str,
            "enum": [None, *settings.container_formats],
            "description": "Format of the container",
        },
        "disk_format": {**nullable_str, "enum": [None, *settings.disk_formats], "description": "Format of the disk"},
        "created_at": _ro({"type": "string", "description": "Date and time of image registration"}),
        "updated_at": _ro({"type": "string", "description": "Date and time of the last image modification"}),
        "tags": {
            "type": "array",
            "items": {"type": "string", "maxLength": 255},
            "description": "List of strings related to the image",
        },
        "direct_url": _ro({"type": "string", "description": "URL to access the image file in the store"}),
        "min_ram": {"type": "integer", "description": "Amount of RAM in MB required to boot the image"},
        "min_disk": {"type": "integer", "description": "Amount of disk space in GB required to boot the image"},
        "self": _ro({"type": "string", "description": "URL of this image"}),
        "file": _ro({"type": "string", "description": "URL of the image data"}),
        "stores": _ro({"type": "string", "description": "Comma-separated ids of the stores holding the data"}),
        "schema": _ro({"type": "string", "description": "URL of this schema"}),
        "locations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "maxLength": 255},
                    "metadata": {"type": "object"},
                    "validation_data": {
                        "type": "object",
                        "writeOnly": True,
                        "additionalProperties": False,
                        "properties": {
                            "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                            "os_hash_algo": {"type": "string", "maxLength": 64},
                            "os_hash_value": {"type": "string", "maxLength": 128},
                        },
                        "required": ["os_hash_algo", "os_hash_value"],
                    },
                },
                "required": ["url", "metadata"],
            },
            "description": "Store locations of the image data (shown when SGLANCE_SHOW_MULTIPLE_LOCATIONS is on)",
        },
    }


def image_schema(settings: Settings) -> Schema:
    """``GET /v2/schemas/image``: permissive, extra properties are strings."""
    return {
        "name": "image",
        "properties": image_properties(settings),
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def collection_schema(name: str, item: Schema) -> Schema:
    """A paged collection of ``item`` (Glance's CollectionSchema)."""
    return {
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


MEMBER_PROPERTIES: dict[str, Schema] = {
    "member_id": {"type": "string", "description": "Project the image is shared with"},
    "image_id": {"type": "string", "pattern": UUID_PATTERN, "description": "Shared image"},
    "created_at": {"type": "string", "description": "Date and time of membership creation"},
    "updated_at": {"type": "string", "description": "Date and time of the last membership change"},
    "status": {"type": "string", "enum": ["pending", "accepted", "rejected"], "description": "Membership status"},
    "schema": {"type": "string", "readOnly": True},
}

TASK_PROPERTIES: dict[str, Schema] = {
    "id": {"description": "An identifier for the task", "pattern": UUID_PATTERN, "type": "string"},
    "type": {
        "description": "The type of task represented by this content",
        "enum": ["import", "api_image_import", "location_import"],
        "type": "string",
    },
    "status": {
        "description": "The current status of this task",
        "enum": ["pending", "processing", "success", "failure"],
        "type": "string",
    },
    "input": {"description": "The parameters required by task, JSON blob", "type": ["null", "object"]},
    "result": {"description": "The result of current task, JSON blob", "type": ["null", "object"]},
    "owner": {"description": "An identifier for the owner of this task", "type": "string"},
    "message": {
        "description": "Human-readable informative message only included when appropriate (usually on failure)",
        "type": "string",
    },
    "image_id": {"description": "Image associated with the task", "type": "string"},
    "request_id": {"description": "Human-readable informative request-id", "type": "string"},
    "user_id": {"description": "User associated with the task", "type": "string"},
    "expires_at": {
        "description": "Datetime when this resource would be subject to removal",
        "type": ["null", "string"],
    },
    "created_at": {"description": "Datetime when this resource was created", "type": "string"},
    "updated_at": {"description": "Datetime when this resource was updated", "type": "string"},
    "self": {"readOnly": True, "type": "string"},
    "schema": {"readOnly": True, "type": "string"},
}


def strict_schema(name: str, properties: dict[str, Schema]) -> Schema:
    """A schema with no extra properties (Glance's Schema.raw)."""
    return {"name": name, "properties": properties, "additionalProperties": False}


def all_schemas(settings: Settings) -> dict[str, Schema]:
    """Every schema document by its name under ``/v2/schemas/``."""
    member = strict_schema("member", MEMBER_PROPERTIES)
    task = strict_schema("task", TASK_PROPERTIES)
    task_summary = strict_schema(
        "task", {k: v for k, v in TASK_PROPERTIES.items() if k not in ("input", "result", "message")}
    )
    image = image_schema(settings)
    return {
        "image": image,
        "images": collection_schema("images", image),
        "member": member,
        "members": collection_schema("members", member),
        "task": task,
        "tasks": collection_schema("tasks", task_summary),
    }
