"""Glance's notification payloads (glance/notifier.py). Locations are never included: they may carry credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.domain.image import Image, Visibility
from shared.domain.member import Member
from shared.domain.status import ImageStatus

if TYPE_CHECKING:
    from shared.domain.metadefs import MetadefObject, MetadefProperty, MetadefTag, Namespace, ResourceTypeAssociation
    from shared.domain.task import Task


def isotime(value: datetime | None) -> str | None:
    """Glance's timeutils.isotime: UTC, seconds precision, ``Z`` suffix."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_payload(image: Image) -> dict[str, Any]:
    """Glance's format_image_notification."""
    deleted = image.status is ImageStatus.DELETED
    return {
        "id": image.id,
        "name": image.name,
        "status": image.status.value,
        "created_at": isotime(image.created_at),
        "updated_at": isotime(image.updated_at),
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "protected": image.protected,
        "checksum": image.checksum,
        "owner": image.owner,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "is_public": image.visibility is Visibility.PUBLIC,
        "visibility": image.visibility.value,
        "properties": dict(image.extra_properties),
        "tags": sorted(image.tags),
        "deleted": deleted,
        "deleted_at": isotime(image.deleted_at) if deleted else None,
    }


def upload_payload(image: Image, backend: str | None) -> dict[str, Any]:
    """``image.prepare`` / ``image.upload``: the image plus the backend and the import-progress lists."""
    payload = image_payload(image)
    importing = image.extra_properties.get("os_glance_importing_to_stores", "")
    failed = image.extra_properties.get("os_glance_failed_import", "")
    payload["backend"] = backend
    payload["os_glance_importing_to_stores"] = [s for s in importing.split(",") if s]
    payload["os_glance_failed_import"] = [s for s in failed.split(",") if s]
    return payload


def send_payload(image: Image, bytes_sent: int, project_id: str | None, user_id: str | None) -> dict[str, Any]:
    """``image.send``: the metering hook."""
    return {
        "bytes_sent": bytes_sent,
        "image_id": image.id,
        "owner_id": image.owner,
        "receiver_tenant_id": project_id,
        "receiver_user_id": user_id,
    }


def member_payload(member: Member, deleted: bool = False) -> dict[str, Any]:
    """Glance's format_image_member_notification (``deleted`` for image.member.delete)."""
    return {
        "image_id": member.image_id,
        "member_id": member.member_id,
        "status": member.status.value,
        "created_at": isotime(member.created_at),
        "updated_at": isotime(member.updated_at),
        "deleted": deleted,
        "deleted_at": isotime(datetime.now(UTC)) if deleted else None,
    }


def task_payload(task: Task) -> dict[str, Any]:
    """Glance's format_task_notification: input, result and message left out (they may hold secrets)."""
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status.value,
        "result": None,
        "owner": task.owner,
        "message": None,
        "expires_at": isotime(task.expires_at),
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at),
        "deleted": False,
        "deleted_at": None,
    }


# -- the metadata definitions catalog (Glance's format_metadef_*_notification) ------------------------------------

_PROPERTY_PAYLOAD_KEYS = (
    "type", "title", "description", "default", "minimum", "maximum", "enum", "pattern", "minLength", "maxLength",
    "confidential", "items", "uniqueItems", "minItems", "maxItems", "additionalItems", "readonly",
)  # fmt: skip


def _deleted(deleted: bool) -> dict[str, Any]:
    return {"deleted": deleted, "deleted_at": isotime(datetime.now(UTC)) if deleted else None}


def metadef_namespace_payload(ns: Namespace, old_name: str | None = None, deleted: bool = False) -> dict[str, Any]:
    """A namespace (``namespace_old``: its name before a rename)."""
    return {
        "namespace": ns.namespace,
        "namespace_old": old_name or ns.namespace,
        "display_name": ns.display_name,
        "protected": ns.protected,
        "visibility": ns.visibility,
        "owner": ns.owner,
        "description": ns.description,
        "created_at": isotime(ns.created_at),
        "updated_at": isotime(ns.updated_at),
        **_deleted(deleted),
    }


def metadef_object_payload(
    namespace: str, obj: MetadefObject, old_name: str | None = None, deleted: bool = False
) -> dict[str, Any]:
    """An object; its properties as a list of ``{name, type, title, ...}``."""
    properties = [{"name": name, **{k: schema.get(k) for k in _PROPERTY_PAYLOAD_KEYS}}
                  for name, schema in obj.properties.items()]  # fmt: skip
    return {
        "namespace": namespace,
        "name": obj.name,
        "name_old": old_name or obj.name,
        "properties": properties,
        "required": list(obj.required),
        "description": obj.description,
        "created_at": isotime(obj.created_at),
        "updated_at": isotime(obj.updated_at),
        **_deleted(deleted),
    }


def metadef_property_payload(
    namespace: str, prop: MetadefProperty, old_name: str | None = None, deleted: bool = False
) -> dict[str, Any]:
    """A property: its definition's keys flattened."""
    return {
        "namespace": namespace,
        "name": prop.name,
        "name_old": old_name or prop.name,
        **{k: prop.schema.get(k) for k in _PROPERTY_PAYLOAD_KEYS},
        **_deleted(deleted),
    }


def metadef_tag_payload(
    namespace: str, tag: MetadefTag, old_name: str | None = None, deleted: bool = False
) -> dict[str, Any]:
    """A tag."""
    return {
        "namespace": namespace,
        "name": tag.name,
        "name_old": old_name or tag.name,
        "created_at": isotime(tag.created_at),
        "updated_at": isotime(tag.updated_at),
        **_deleted(deleted),
    }


def metadef_association_payload(
    namespace: str, association: ResourceTypeAssociation, deleted: bool = False
) -> dict[str, Any]:
    """A resource type association (Glance's metadef_resource_type payload)."""
    return {
        "namespace": namespace,
        "name": association.name,
        "name_old": association.name,
        "prefix": association.prefix,
        "properties_target": association.properties_target,
        "created_at": isotime(association.created_at),
        "updated_at": isotime(association.updated_at),
        **_deleted(deleted),
    }
