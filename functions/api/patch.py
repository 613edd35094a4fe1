"""Parsing of Glance's JSON-patch dialects for ``PATCH /v2/images/{id}``.

Two media types: ``application/openstack-images-v2.1-json-patch`` (RFC 6902 style ``{op, path, value}``)
and the deprecated ``application/openstack-images-v2.0-json-patch`` (``{"replace": "/name", "value": ..}``).
Only ``add``, ``remove`` and ``replace``; paths are JSON pointers of depth 1 (``/locations/N`` depth 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from functions.api.wire import validate_image_fields
from shared.config import Settings
from shared.domain.errors import InvalidInputError, UnsupportedMediaTypeError
from shared.domain.properties import check_extra_property_name

PATCH_V21 = "application/openstack-images-v2.1-json-patch"
PATCH_V20 = "application/openstack-images-v2.0-json-patch"
PATCH_MEDIA_TYPES = (PATCH_V20, PATCH_V21)
OPERATIONS = ("add", "remove", "replace")
# Path depth per root and operation (Glance's _path_depth_limits); everything else has depth 1.
_PATH_DEPTHS = {"locations": {"add": 2, "remove": 2, "replace": 1}}


@dataclass(frozen=True)
class Change:
    """One validated patch operation."""

    op: str
    path: tuple[str, ...]
    value: Any = None
    # v2.0 ``add`` of an existing property is a conflict; v2.1 ``add`` replaces.
    strict_add: bool = False

    @property
    def root(self) -> str:
        """The property the operation targets."""
        return self.path[0]


def media_type(content_type: str | None) -> str:
    """The patch dialect named by a Content-Type header.

    Raises:
        UnsupportedMediaTypeError: not one of Glance's two patch media types (415 with ``Accept-Patch``).
    """
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base not in PATCH_MEDIA_TYPES:
        raise UnsupportedMediaTypeError(base or "none", PATCH_MEDIA_TYPES)
    return base


def _operation(raw: dict[str, Any], dialect: str) -> tuple[str, Any]:
    if dialect == PATCH_V21:
        op = raw.get("op")
        if op not in OPERATIONS:
            available = ", ".join(OPERATIONS)
            if op is None:
                raise InvalidInputError(f"Unable to find `op` in JSON Schema change. It must be one of: {available}.")
            raise InvalidInputError(f"Invalid operation: `{op}`. It must be one of the following: {available}.")
        if "path" not in raw:
            raise InvalidInputError("Unable to find 'path' in JSON Schema change")
        return op, raw["path"]
    present = [name for name in OPERATIONS if name in raw]
    if len(present) != 1:
        raise InvalidInputError(
            'Operation objects must contain exactly one member named "add", "remove", or "replace".'
        )
    return present[0], raw[present[0]]


def decode_pointer(pointer: object) -> tuple[str, ...]:
    """Split a JSON pointer into unescaped parts, accepting only Glance's restricted form."""
    if not isinstance(pointer, str):
        raise InvalidInputError(f"Pointer `{pointer}` must be a string.")
    if not pointer.startswith("/"):
        raise InvalidInputError(f'Pointer `{pointer}` does not start with "/".')
    if re.search(r"/\s*?/", pointer[1:]):
        raise InvalidInputError(f'Pointer `{pointer}` contains adjacent "/".')
    if len(pointer) > 1 and pointer.endswith("/"):
        raise InvalidInputError(f'Pointer `{pointer}` end with "/".')
    if pointer[1:].strip() == "/":
        raise InvalidInputError(f"Pointer `{pointer}` does not contains valid token.")
    if re.search("~[^01]", pointer) or pointer.endswith("~"):
        raise InvalidInputError(f'Pointer `{pointer}` contains "~" not part of a recognized escape sequence.')
    return tuple(part.replace("~1", "/").replace("~0", "~").strip() for part in pointer.lstrip("/").split("/"))


def parse_changes(content_type: str | None, body: Any, settings: Settings) -> list[Change]:
    """Validate a PATCH body into changes (400 for malformed operations, 403 for read-only/reserved paths)."""
    dialect = media_type(content_type)
    if not isinstance(body, list):
        raise InvalidInputError("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise InvalidInputError("Operations must be JSON objects.")
        op, pointer = _operation(raw, dialect)
        path = decode_pointer(pointer)
        if len(path) != _PATH_DEPTHS.get(path[0], {}).get(op, 1):
            raise InvalidInputError(f"Invalid JSON pointer for this resource: '/{'/'.join(path)}'")
        # Glance's order: a missing value (400) is reported before a read-only or reserved path (403).
        if op != "remove" and "value" not in raw:
            raise InvalidInputError(f'Operation "{op}" requires a member named "value".')
        check_extra_property_name(path[0])
        value = None if op == "remove" else raw["value"]
        if op != "remove" and len(path) == 1:
            validate_image_fields({path[0]: value}, settings)
        changes.append(Change(op, path, value, strict_add=dialect == PATCH_V20))
    return changes
