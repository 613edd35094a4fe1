"""Image property names: which a client may write, which are read-only or reserved, which are never shown."""

from __future__ import annotations

from shared.domain.errors import InvalidInputError, ReadOnlyPropertyError, ReservedPropertyError
from shared.domain.limits import check_property_name

# Field names clients may not set (Glance's RequestDeserializer + ImageFactory lists).
READ_ONLY_PROPERTIES = frozenset(
    {
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
    }
)
RESERVED_PROPERTIES = frozenset({"location", "deleted", "deleted_at"})
RESERVED_NAMESPACE = "os_glance"
# Properties the response never shows even if set internally.
HIDDEN_PROPERTIES = frozenset({"os_glance_stage_host", "os_glance_hash_op_host"})
# The base properties a client may write through create or PATCH.
WRITABLE_BASE_PROPERTIES = frozenset(
    {"name", "visibility", "protected", "os_hidden", "owner", "container_format", "disk_format", "min_ram", "min_disk"}
)


def check_extra_property_name(name: str) -> None:
    """Reject reserved names and over-long keys, as Glance does on create and PATCH.

    Raises:
        ReadOnlyPropertyError: the name is a read-only base property.
        ReservedPropertyError: the name is reserved or in the ``os_glance`` namespace.
        InvalidInputError: the name is empty (the table cannot hold it) or longer than 255 characters.
    """
    check_property_name(name)
    if name in READ_ONLY_PROPERTIES:
        raise ReadOnlyPropertyError(name=name)
    if name in RESERVED_PROPERTIES or name.startswith(RESERVED_NAMESPACE):
        raise ReservedPropertyError(name=name)
    if len(name) > 255:
        raise InvalidInputError(detail="Custom property should not be greater than 255 characters.")
