"""The metadata definitions catalog's controller: the caller's ``MetadefPolicy``, then one use case."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.services.metadefs import parse_list_query

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.domain import metadefs as md
    from shared.domain.context import RequestContext
    from shared.domain.listing import Page
    from shared.policy import Policies
    from shared.services.metadefs import MetadefService


class MetadefsController:
    """Namespaces, objects, properties, tags and resource types (Glance's metadef_*.py controllers)."""

    def __init__(self, service: MetadefService, policies: Policies, settings: Settings) -> None:
        self.service = service
        self.policies = policies
        self.settings = settings

    def list_namespaces(self, ctx: RequestContext, params: Mapping[str, str]) -> Page[md.Namespace]:
        """A page of namespaces."""
        query = parse_list_query(params, self.settings.limit_param_default, self.settings.api_limit_max)
        return self.service.list_namespaces(self.policies.metadefs(ctx), query)

    def create_namespace(self, ctx: RequestContext, body: Any) -> md.NamespaceContent:
        """Create a namespace (with content)."""
        return self.service.create_namespace(self.policies.metadefs(ctx), body)

    def show_namespace(self, ctx: RequestContext, name: str, resource_type: str | None) -> md.NamespaceContent:
        """A namespace with its content."""
        return self.service.show_namespace(self.policies.metadefs(ctx), name, resource_type)

    def update_namespace(self, ctx: RequestContext, name: str, body: Any) -> md.Namespace:
        """Replace a namespace's attributes."""
        return self.service.update_namespace(self.policies.metadefs(ctx), name, body)

    def delete_namespace(self, ctx: RequestContext, name: str) -> None:
        """Delete a namespace."""
        self.service.delete_namespace(self.policies.metadefs(ctx), name)

    def delete_all(self, ctx: RequestContext, name: str, kind: str) -> None:
        """Delete every object, property or tag of a namespace."""
        self.service.delete_all(self.policies.metadefs(ctx), name, kind)

    def list_children(self, ctx: RequestContext, name: str, kind: str) -> list[md.Child]:
        """A namespace's objects, properties or tags."""
        return self.service.list_children(self.policies.metadefs(ctx), name, kind)

    def show_child(self, ctx: RequestContext, name: str, kind: str, child_name: str) -> md.Child:
        """One object or tag."""
        return self.service.show_child(self.policies.metadefs(ctx), name, kind, child_name)

    def show_property(
        self, ctx: RequestContext, name: str, property_name: str, resource_type: str | None
    ) -> md.MetadefProperty:
        """One property (named with a resource type's prefix when ``resource_type`` is given)."""
        return self.service.show_property(self.policies.metadefs(ctx), name, property_name, resource_type)

    def create_object(self, ctx: RequestContext, name: str, body: Any) -> md.MetadefObject:
        """Create an object."""
        return self.service.create_object(self.policies.metadefs(ctx), name, body)

    def update_object(self, ctx: RequestContext, name: str, object_name: str, body: Any) -> md.MetadefObject:
        """Replace an object."""
        return self.service.update_object(self.policies.metadefs(ctx), name, object_name, body)

    def create_property(self, ctx: RequestContext, name: str, body: Any) -> md.MetadefProperty:
        """Create a property."""
        return self.service.create_property(self.policies.metadefs(ctx), name, body)

    def update_property(self, ctx: RequestContext, name: str, property_name: str, body: Any) -> md.MetadefProperty:
        """Replace a property."""
        return self.service.update_property(self.policies.metadefs(ctx), name, property_name, body)

    def delete_child(self, ctx: RequestContext, name: str, kind: str, child_name: str) -> None:
        """Delete one object, property or tag."""
        self.service.delete_child(self.policies.metadefs(ctx), name, kind, child_name)

    def create_tag(self, ctx: RequestContext, name: str, tag_name: str) -> md.MetadefTag:
        """Create one tag."""
        return self.service.create_tag(self.policies.metadefs(ctx), name, tag_name)

    def create_tags(self, ctx: RequestContext, name: str, body: Any, append: bool) -> list[md.MetadefTag]:
        """Create tags in bulk."""
        return self.service.create_tags(self.policies.metadefs(ctx), name, body, append)

    def update_tag(self, ctx: RequestContext, name: str, tag_name: str, body: Any) -> md.MetadefTag:
        """Rename a tag."""
        return self.service.update_tag(self.policies.metadefs(ctx), name, tag_name, body)

    def resource_types(self, ctx: RequestContext) -> list[md.ResourceType]:
        """Every resource type."""
        return self.service.resource_types(self.policies.metadefs(ctx))

    def associations(self, ctx: RequestContext, name: str) -> list[md.ResourceTypeAssociation]:
        """A namespace's resource type associations."""
        return self.service.associations(self.policies.metadefs(ctx), name)

    def associate(self, ctx: RequestContext, name: str, body: Any) -> md.ResourceTypeAssociation:
        """Associate a resource type with a namespace."""
        return self.service.associate(self.policies.metadefs(ctx), name, body)

    def dissociate(self, ctx: RequestContext, name: str, resource_type: str) -> None:
        """Remove a resource type association."""
        self.service.dissociate(self.policies.metadefs(ctx), name, resource_type)
