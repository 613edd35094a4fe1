"""Glance v2 JSON shapes: validating request bodies against the image schema, and rendering images."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from functions.api.schemas import UUID_PATTERN, Schema, image_properties
from shared.config import Settings
from shared.domain.errors import InvalidInputError
from shared.domain.image import Image
from shared.domain.location import LocationStatus
from shared.domain.member import Member
from shared.domain.properties import HIDDEN_PROPERTIES
from shared.domain.upload import UploadSession
from shared.upload_bucket import PresignedRequest

if TYPE_CHECKING:
    from shared.services.uploads import OpenedUpload, PartUrl, UploadStatus

_UUID = re.compile(UUID_PATTERN)
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def _type_ok(value: object, types: list[str]) -> bool:
    for name in types:
        # JSON booleans are not integers, although Python's are.
        if name == "integer" and isinstance(value, bool):
            continue
        if isinstance(value, _JSON_TYPES[name]):
            return True
    return False


def _check(name: str, value: object, schema: Schema) -> None:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if not _type_ok(value, types):
        raise InvalidInputError(f"Invalid value for '{name}': {value!r} is not of type {' or '.join(types)}")
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"] if v is not None)
        raise InvalidInputError(f"Invalid value for '{name}': {value!r} is not one of [{allowed}]")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise InvalidInputError(f"Invalid value for '{name}': longer than {schema['maxLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise InvalidInputError(f"Invalid value for '{name}': {value!r} does not match {schema['pattern']}")
    if isinstance(value, list) and "items" in schema:
        for item in value:
            _check(name, item, schema["items"])


def validate_image_fields(body: Mapping[str, Any], settings: Settings) -> None:
    """Validate a (partial) image against the image schema: base properties by type, others must be strings.

    Raises:
        InvalidInputError: a value has the wrong type, length, pattern or enum value (400).
    """
    properties = image_properties(settings)
    for name, value in body.items():
        schema = properties.get(name)
        if schema is None:
            if not isinstance(value, str):
                raise InvalidInputError(f"Invalid value for '{name}': extra properties must be strings")
            continue
        if name == "locations":
            if not isinstance(value, list):
                raise InvalidInputError("Invalid value for 'locations': must be an array")
            continue
        _check(name, value, schema)


def is_uuid(value: str) -> bool:
    """Whether ``value`` has the shape of an image id."""
    return bool(_UUID.match(value))


def isotime(value: datetime) -> str:
    """Glance's timestamp format: second precision, ``Z`` suffix."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def page_view(
    key: str, items: list[Any], path: str, schema: str, params: Iterable[tuple[str, str]], next_marker: str | None
) -> dict[str, Any]:
    """A page of a collection under ``key`` with Glance's links: ``first`` is the request's query without its
    ``marker``, ``next`` (while a page follows) the same query with the next page's marker."""
    kept = [(k, v) for k, v in params if k != "marker"]
    body: dict[str, Any] = {key: items, "first": path + (f"?{urlencode(kept)}" if kept else ""), "schema": schema}
    if next_marker is not None:
        body["next"] = f"{path}?{urlencode([*kept, ('marker', next_marker)])}"
    return body


def image_view(
    image: Image,
    properties: Mapping[str, str] | None = None,
    store_weights: Mapping[str, int] | None = None,
    *,
    show_locations: bool | None = None,
) -> dict[str, Any]:
    """The JSON body of one image, as Glance's ResponseSerializer renders it; ``properties`` replaces the
    image's extra properties (the ones the caller may read); ``stores`` and ``locations`` are ordered by
    ``store_weights``; ``show_locations``: None leaves ``locations`` out (show_multiple_locations off), False lists
    none (the caller may not read them), True lists the complete copies.

    ``store_weights`` holds every store of the deployment: ``stores`` is shown only where there are several, as
    Glance shows it only with ``enabled_backends`` (multi-store). With one store it is absent, so clients that
    rewrite every property (openstacksdk's ``update_image``) never try to remove it."""
    extra = image.extra_properties if properties is None else properties
    view: dict[str, Any] = {k: v for k, v in extra.items() if k not in HIDDEN_PROPERTIES}
    view.update(image.import_progress())
    view.update(
        {
            "name": image.name,
            "disk_format": image.disk_format,
            "container_format": image.container_format,
            "visibility": image.visibility.value,
            "size": image.size,
            "virtual_size": image.virtual_size,
            "status": image.status.value,
            "checksum": image.checksum,
            "protected": image.protected,
            "min_ram": image.min_ram,
            "min_disk": image.min_disk,
            "owner": image.owner,
            "os_hidden": image.os_hidden,
            "os_hash_algo": image.os_hash_algo,
            "os_hash_value": image.os_hash_value,
            "id": image.id,
            "created_at": isotime(image.created_at),
            "updated_at": isotime(image.updated_at),
            "tags": sorted(image.tags),
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
        }
    )
    # Glance sorts locations by store weight, highest first (a stable sort; unknown stores weigh 0).
    weights = store_weights or {}
    stores = image.stores
    if stores and (store_weights is None or len(store_weights) > 1):
        view["stores"] = ",".join(sorted(stores, key=lambda store: -weights.get(store, 0)))
    if show_locations is not None:
        complete = [loc for loc in image.locations if show_locations and loc.status is LocationStatus.ACTIVE]
        complete.sort(key=lambda loc: -weights.get(loc.store, 0))
        view["locations"] = [{"url": loc.url, "metadata": {"store": loc.store}} for loc in complete]
    return view


def _presigned(request: PresignedRequest) -> dict[str, Any]:
    return {"method": request.method, "url": request.url, "headers": request.headers}


def _parts(parts: list[PartUrl]) -> list[dict[str, Any]]:
    return [{"part_number": p.number, "size": p.size, **_presigned(p.request)} for p in parts]


def _session_view(image: Image, session: UploadSession) -> dict[str, Any]:
    return {
        "upload_id": session.id,
        "image_id": image.id,
        "method": session.method.value,
        "size": session.size,
        "part_size": session.part_size,
        "parts_count": session.parts_count,
        "expires_at": isotime(session.expires_at),
        "image_status": image.status.value,
    }


def opened_upload_view(opened: OpenedUpload) -> dict[str, Any]:
    """Response of POST /v2/images/{id}/upload."""
    view = _session_view(opened.image, opened.session)
    if opened.single is not None:
        view["request"] = _presigned(opened.single)
    else:
        view["parts"] = _parts(opened.parts)
    return view


def upload_status_view(status: UploadStatus) -> dict[str, Any]:
    """Response of GET /v2/images/{id}/upload."""
    view = _session_view(status.image, status.session)
    done = {p.number for p in status.uploaded}
    view["uploaded_parts"] = [{"part_number": p.number, "size": p.size, "etag": p.etag} for p in status.uploaded]
    view["missing_parts"] = [n for n in range(1, status.session.parts_count + 1) if n not in done][:1000]
    return view


def part_urls_view(parts: list[PartUrl]) -> dict[str, Any]:
    """Response of POST /v2/images/{id}/upload/parts."""
    return {"parts": _parts(parts)}


def member_view(member: Member) -> dict[str, Any]:
    """The JSON body of one membership."""
    return {
        "member_id": member.member_id,
        "image_id": member.image_id,
        "status": member.status.value,
        "created_at": isotime(member.created_at),
        "updated_at": isotime(member.updated_at),
        "schema": "/v2/schemas/member",
    }
