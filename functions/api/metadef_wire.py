"""Glance's JSON shapes of the metadata definitions catalog (absent values are left out, as Glance's wsme models do)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from shared.domain import metadefs as md

NAMESPACES = "/v2/metadefs/namespaces"


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _href(*parts: str) -> str:
    # Glance puts names in links as they are (``OS::Compute::Watchdog``); only what breaks a path is escaped.
    return "/".join([NAMESPACES, *(quote(p, safe=":@!$&'()*+,;=") for p in parts)])


def _clean(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if v is not None}


def association_view(a: md.ResourceTypeAssociation) -> dict[str, Any]:
    """One resource type association."""
    return _clean({"name": a.name, "prefix": a.prefix, "properties_target": a.properties_target,
                   "created_at": _time(a.created_at), "updated_at": _time(a.updated_at)})  # fmt: skip


def resource_type_view(rt: md.ResourceType) -> dict[str, Any]:
    """One resource type."""
    return {"name": rt.name, "created_at": _time(rt.created_at), "updated_at": _time(rt.updated_at)}


def namespace_view(ns: md.Namespace) -> dict[str, Any]:
    """A namespace's own attributes, its associations, links."""
    view = _clean(
        {
            "namespace": ns.namespace,
            "display_name": ns.display_name,
            "description": ns.description,
            "visibility": ns.visibility,
            "protected": ns.protected,
            "owner": ns.owner,
            "created_at": _time(ns.created_at),
            "updated_at": _time(ns.updated_at),
        }
    )
    if ns.associations:
        view["resource_type_associations"] = [association_view(a) for _, a in sorted(ns.associations.items())]
    view["self"] = _href(ns.namespace)
    view["schema"] = "/v2/schemas/metadefs/namespace"
    return view


def property_definition(prop: md.MetadefProperty) -> dict[str, Any]:
    """A property as it appears in a properties map (keyed by its name)."""
    return dict(prop.schema)


def property_view(prop: md.MetadefProperty) -> dict[str, Any]:
    """One property (``GET .../properties/{name}``)."""
    return {"name": prop.name, **prop.schema}


def properties_view(props: list[md.MetadefProperty]) -> dict[str, Any]:
    """A namespace's properties (``GET .../properties``)."""
    return {"properties": {p.name: property_definition(p) for p in props}}


def object_view(namespace: str, obj: md.MetadefObject) -> dict[str, Any]:
    """One object."""
    return _clean(
        {
            "name": obj.name,
            "description": obj.description,
            "required": list(obj.required) or None,
            "properties": dict(obj.properties) or None,
            "created_at": _time(obj.created_at),
            "updated_at": _time(obj.updated_at),
            "self": _href(namespace, "objects", obj.name),
            "schema": "/v2/schemas/metadefs/object",
        }
    )


def objects_view(namespace: str, objects: list[md.MetadefObject]) -> dict[str, Any]:
    """A namespace's objects."""
    return {"objects": [object_view(namespace, o) for o in objects], "schema": "v2/schemas/metadefs/objects"}


def tag_view(tag: md.MetadefTag) -> dict[str, Any]:
    """One tag."""
    return {"name": tag.name, "created_at": _time(tag.created_at), "updated_at": _time(tag.updated_at)}


def content_view(content: md.NamespaceContent) -> dict[str, Any]:
    """A namespace with everything in it (``GET /v2/metadefs/namespaces/{ns}``)."""
    view = namespace_view(content.namespace)
    name = content.namespace.namespace
    if content.properties:
        view["properties"] = {p.name: property_definition(p) for p in content.properties}
    if content.objects:
        view["objects"] = [object_view(name, o) for o in content.objects]
    if content.tags:
        view["tags"] = [{"name": t.name} for t in content.tags]
    return view
