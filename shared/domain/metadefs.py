"""The metadata definitions catalog (Glance's metadefs): namespaces and what they hold, as plain values.

A namespace (``visibility`` public or private, ``protected``, an ``owner``) holds objects, properties and tags, and is
associated with resource types (``OS::Glance::Image``, ...) under an optional prefix. Resource types exist on their
own and are created by the first association that names them. Everything is addressed by name, as in Glance's API.

``visible`` is the data layer's rule: a public namespace is everyone's, a private one its owner's, and an admin
sees all. Request bodies become these values through ``shared.domain.metadef_requests``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.domain.errors import ProtectedMetadefError

VISIBILITIES = ("public", "private")
PROPERTY_TYPES = ("array", "boolean", "integer", "number", "object", "string", None)
# The keys a property definition may carry besides its name (Glance's PropertyType).
PROPERTY_KEYS = frozenset(
    {
        "title", "description", "operators", "type", "default", "readonly", "minimum", "maximum", "enum",
        "pattern", "minLength", "maxLength", "confidential", "items", "uniqueItems", "minItems", "maxItems",
        "additionalItems",
    }
)  # fmt: skip
NAMESPACE_SORT_KEYS = ("created_at", "updated_at", "namespace")


@dataclass(frozen=True)
class ResourceTypeAssociation:
    """A namespace's association with a resource type: property names get ``prefix`` for that type."""

    name: str
    prefix: str | None
    properties_target: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ResourceType:
    """A kind of resource that namespaces describe (``OS::Glance::Image``, ``OS::Nova::Flavor`` ...)."""

    name: str
    protected: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Namespace:
    """A namespace of definitions; ``version`` guards its writes, ``associations`` are keyed by resource type."""

    namespace: str
    owner: str | None
    visibility: str = "private"
    protected: bool = False
    display_name: str | None = None
    description: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.min)
    updated_at: datetime = field(default_factory=lambda: datetime.min)
    associations: Mapping[str, ResourceTypeAssociation] = field(default_factory=dict)
    version: int = 0

    def check_deletable(self, what: str = "namespace", name: str | None = None) -> None:
        """Refuse to delete a protected namespace or anything in it (403, as Glance's domain objects)."""
        if self.protected:
            raise ProtectedMetadefError(kind=what, name=name or self.namespace)


@dataclass(frozen=True)
class MetadefObject:
    """A named group of property definitions in a namespace."""

    name: str
    description: str | None
    required: tuple[str, ...]
    properties: Mapping[str, Mapping[str, Any]]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class MetadefProperty:
    """One property definition: its name and its JSON-schema-like definition (``title``, ``type``, ...)."""

    name: str
    schema: Mapping[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class MetadefTag:
    """A tag name a namespace suggests."""

    name: str
    created_at: datetime
    updated_at: datetime


# What a namespace holds, besides its resource type associations.
Child = MetadefObject | MetadefProperty | MetadefTag


@dataclass(frozen=True)
class NamespaceContent:
    """Everything a namespace holds (what ``GET /v2/metadefs/namespaces/{ns}`` shows)."""

    namespace: Namespace
    objects: list[MetadefObject]
    properties: list[MetadefProperty]
    tags: list[MetadefTag]


def visible(ns: Namespace, project_id: str | None, is_admin: bool) -> bool:
    """Whether the data layer shows ``ns`` to the caller: public, their own, or any for an admin."""
    return is_admin or ns.visibility == "public" or (ns.owner is not None and ns.owner == project_id)


def prefixed(content: NamespaceContent, resource_type: str) -> NamespaceContent:
    """The namespace as ``resource_type`` sees it: property names (and objects' ``required``) carry its prefix."""
    association = content.namespace.associations.get(resource_type)
    prefix = association.prefix if association is not None else None
    if not prefix:
        return content
    properties = [replace(p, name=prefix + p.name) for p in content.properties]
    objects = [
        replace(
            o,
            properties={prefix + k: v for k, v in o.properties.items()},
            required=tuple(prefix + r for r in o.required),
        )
        for o in content.objects
    ]
    return replace(content, properties=properties, objects=objects)
