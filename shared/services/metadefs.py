"""Use cases of the metadata definitions catalog (Glance's glance/api/v2/metadef_*.py controllers' logic).

Every call names its caller's ``MetadefPolicy``. The order is Glance's: find the namespace (404 if the caller cannot
see it), enforce the rule on it (404 when the caller may not even read it, else 403), then read or write, then send
the ``metadef_*`` events once the write committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.data.metadefs import MetadefRepository
from shared.domain import metadefs as md
from shared.domain.errors import InvalidInputError, MetadefDuplicateError, NotFoundError
from shared.domain.listing import Page
from shared.notifications import payloads as p

if TYPE_CHECKING:
    from shared.notifications.events import Events
    from shared.policy.metadefs import MetadefPolicy

# What showing a namespace reads besides the namespace itself, each with its own rule (as Glance checks them).
_SHOW_RULES = ("list_metadef_resource_types", "get_metadef_objects", "get_metadef_properties", "get_metadef_tags")
_KIND_NAMES = {"object": "object", "property": "property", "tag": "tag"}


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NamespaceListQuery:
    """A parsed ``GET /v2/metadefs/namespaces``."""

    limit: int
    marker: str | None
    sort_key: str
    descending: bool
    visibility: str | None
    resource_types: tuple[str, ...]


def parse_list_query(params: Mapping[str, str], default_limit: int, max_limit: int) -> NamespaceListQuery:
    """Glance's namespace list parameters (400 for a bad limit, sort direction, sort key or visibility)."""
    raw_limit = params.get("limit")
    try:
        limit = default_limit if raw_limit is None else int(raw_limit)
    except ValueError:
        raise InvalidInputError("limit param must be an integer") from None
    if limit < 0:
        raise InvalidInputError("limit param must be positive")
    sort_dir = params.get("sort_dir", "desc")
    if sort_dir not in ("asc", "desc"):
        raise InvalidInputError(f"Invalid sort direction: {sort_dir}")
    sort_key = params.get("sort_key", "created_at")
    if sort_key not in md.NAMESPACE_SORT_KEYS:
        raise InvalidInputError(f"Invalid sort key: {sort_key}. It must be one of {', '.join(md.NAMESPACE_SORT_KEYS)}.")
    visibility = params.get("visibility") or None
    if visibility is not None and visibility not in md.VISIBILITIES:
        raise InvalidInputError(f"Invalid visibility value: {visibility}")
    resource_types = tuple(t.strip() for t in params.get("resource_types", "").split(",") if t.strip())
    return NamespaceListQuery(
        min(limit, max_limit), params.get("marker"), sort_key, sort_dir == "desc", visibility, resource_types
    )


def _kind(child: md.Child) -> str:
    if isinstance(child, md.MetadefObject):
        return "object"
    return "property" if isinstance(child, md.MetadefProperty) else "tag"


def _payload(namespace: str, child: md.Child, old_name: str | None = None, deleted: bool = False) -> dict[str, Any]:
    if isinstance(child, md.MetadefObject):
        return p.metadef_object_payload(namespace, child, old_name, deleted)
    if isinstance(child, md.MetadefProperty):
        return p.metadef_property_payload(namespace, child, old_name, deleted)
    return p.metadef_tag_payload(namespace, child, old_name, deleted)


def _unique(names: Sequence[str], kind: str, namespace: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise MetadefDuplicateError(kind=kind, name=name, where=f" in namespace={namespace}")
        seen.add(name)


class MetadefService:
    """The catalog's use cases over one repository; events go out through ``events``."""

    def __init__(self, repo: MetadefRepository, events: Events, clock: Callable[[], datetime] = _utcnow) -> None:
        self.repo = repo
        self.events = events
        self.clock = clock

    # -- helpers -----------------------------------------------------------------------------------------------------

    def _namespace(self, policy: MetadefPolicy, name: str) -> md.Namespace:
        ns = self.repo.get_namespace(name)
        if ns is None or not policy.visible(ns):
            raise NotFoundError(f"Metadata definition namespace={name} was not found.")
        return ns

    def _send(self, policy: MetadefPolicy, event_type: str, payload: dict[str, Any]) -> None:
        self.events.metadef(event_type, payload, policy.ctx.request_id)

    def _child(self, ns: md.Namespace, kind: str, name: str) -> md.Child:
        child = self.repo.get_child(ns, kind, name)
        if child is None:
            raise NotFoundError(
                f"The metadata definition {_KIND_NAMES[kind]} with name={name} was not found in "
                f"namespace={ns.namespace}."
            )
        return child

    def _put_child[C: md.Child](
        self,
        policy: MetadefPolicy,
        name: str,
        kind: str,
        rule: str,
        build: Callable[[datetime], C],
        old_name: str | None = None,
    ) -> C:
        """Create the child ``build(now)`` makes or, with ``old_name``, replace that one (keeping its
        ``created_at``), then send ``metadef_<kind>.create`` or ``.update``."""
        ns = self._namespace(policy, name)
        policy.enforce(rule, ns)
        current = None if old_name is None else self._child(ns, kind, old_name)
        child = build(self.clock())
        if current is not None:
            child = replace(child, created_at=current.created_at)
        self.repo.put_child(ns, child, old_name=old_name)
        self._send(
            policy, f"metadef_{kind}.{'create' if old_name is None else 'update'}", _payload(name, child, old_name)
        )
        return child

    def _association(self, ns: md.Namespace, resource_type: str) -> md.ResourceTypeAssociation:
        association = ns.associations.get(resource_type)
        if association is None:
            raise NotFoundError(
                f"The metadata definition resource-type association of resource-type={resource_type} to "
                f"namespace={ns.namespace}, was not found."
            )
        return association

    # -- namespaces --------------------------------------------------------------------------------------------------

    def list_namespaces(self, policy: MetadefPolicy, query: NamespaceListQuery) -> Page[md.Namespace]:
        """A page of the namespaces the caller may read, with their associations."""
        policy.enforce("get_metadef_namespaces")
        policy.enforce("list_metadef_resource_types")
        marker = None
        if query.marker is not None:
            marker = self._namespace(policy, query.marker)
        page = self.repo.list_namespaces(
            policy.ctx.project_id,
            policy.is_admin,
            query.visibility,
            query.sort_key,
            query.descending,
            query.limit,
            marker,
            query.resource_types,
        )
        kept = [ns for ns in page.items if policy.check("get_metadef_namespace", ns)]
        return Page(kept, page.next_marker)

    def create_namespace(self, policy: MetadefPolicy, body: Any) -> md.NamespaceContent:
        """Create a namespace, with any associations, objects, properties and tags the body holds."""
        spec = md.parse_namespace(body)
        policy.enforce("add_metadef_namespace")
        for present, rule in (
            (spec.associations, "add_metadef_resource_type_association"),
            (spec.objects, "add_metadef_object"),
            (spec.properties, "add_metadef_property"),
            (spec.tags, "add_metadef_tag"),
        ):
            if present:
                policy.enforce(rule)
        _unique([a.name for a in spec.associations], "resource type association", spec.namespace)
        _unique([o.name for o in spec.objects], "object", spec.namespace)
        _unique([pr.name for pr in spec.properties], "property", spec.namespace)
        _unique(spec.tags, "tag", spec.namespace)
        now = self.clock()
        associations = {a.name: md.new_association(a, now) for a in spec.associations}
        ns = replace(md.new_namespace(spec, policy.ctx.owner, now), associations=associations)
        objects = [md.new_object(o, now) for o in spec.objects]
        properties = [md.new_property(pr, now) for pr in spec.properties]
        tags = [md.MetadefTag(t, now, now) for t in spec.tags]
        children: list[md.Child] = [*objects, *properties, *tags]
        stored = self.repo.add_namespace(ns, children)
        self._send(policy, "metadef_namespace.create", p.metadef_namespace_payload(stored))
        for association in associations.values():
            self._send(policy, "metadef_resource_type.create", p.metadef_association_payload(ns.namespace, association))
        for child in children:
            self._send(policy, f"metadef_{_kind(child)}.create", _payload(ns.namespace, child))
        return md.NamespaceContent(stored, objects, properties, tags)

    def show_namespace(self, policy: MetadefPolicy, name: str, resource_type: str | None) -> md.NamespaceContent:
        """A namespace with everything in it; with ``resource_type``, property names carry its prefix."""
        ns = self._namespace(policy, name)
        policy.enforce("get_metadef_namespace", ns)
        for rule in _SHOW_RULES:
            policy.enforce(rule, ns)
        content = self.repo.content(name)
        if content is None:
            raise NotFoundError(f"Metadata definition namespace={name} was not found.")
        return md.prefixed(content, resource_type) if resource_type else content

    def update_namespace(self, policy: MetadefPolicy, name: str, body: Any) -> md.Namespace:
        """Replace a namespace's attributes (PUT); a new ``namespace`` renames it."""
        spec = md.parse_namespace(body)
        ns = self._namespace(policy, name)
        policy.enforce("modify_metadef_namespace", ns)
        updated = md.updated_namespace(ns, spec, policy.ctx.owner, self.clock())
        stored = self.repo.save_namespace(updated, old_name=name)
        self._send(policy, "metadef_namespace.update", p.metadef_namespace_payload(stored, old_name=name))
        return stored

    def delete_namespace(self, policy: MetadefPolicy, name: str) -> None:
        """Delete a namespace and its content (403 when protected)."""
        ns = self._namespace(policy, name)
        policy.enforce("delete_metadef_namespace", ns)
        ns.check_deletable()
        self.repo.delete_namespace(ns)
        self._send(policy, "metadef_namespace.delete", p.metadef_namespace_payload(ns, deleted=True))

    def delete_all(self, policy: MetadefPolicy, name: str, kind: str) -> None:
        """Delete every object, property or tag of a namespace (``DELETE .../objects`` and the like)."""
        ns = self._namespace(policy, name)
        policy.enforce("delete_metadef_namespace", ns)
        if kind == "tag":
            policy.enforce("delete_metadef_tags", ns)
        ns.check_deletable()
        self.repo.delete_children(ns, kind)
        event = {"object": "delete_objects", "property": "delete_properties", "tag": "delete_tags"}[kind]
        self._send(policy, f"metadef_namespace.{event}", p.metadef_namespace_payload(ns))

    # -- objects and properties --------------------------------------------------------------------------------------

    def list_children(self, policy: MetadefPolicy, name: str, kind: str) -> list[md.Child]:
        """Every object, property or tag of a namespace."""
        ns = self._namespace(policy, name)
        policy.enforce({"object": "get_metadef_objects", "property": "get_metadef_properties",
                        "tag": "get_metadef_tags"}[kind], ns)  # fmt: skip
        return self.repo.children(ns, kind)

    def show_child(self, policy: MetadefPolicy, name: str, kind: str, child_name: str) -> md.Child:
        """One object, property or tag."""
        ns = self._namespace(policy, name)
        policy.enforce({"object": "get_metadef_object", "property": "get_metadef_property",
                        "tag": "get_metadef_tag"}[kind], ns)  # fmt: skip
        return self._child(ns, kind, child_name)

    def show_property(
        self, policy: MetadefPolicy, name: str, property_name: str, resource_type: str | None
    ) -> md.MetadefProperty:
        """One property; with ``resource_type``, ``property_name`` carries that association's prefix."""
        ns = self._namespace(policy, name)
        policy.enforce("get_metadef_property", ns)
        if resource_type:
            policy.enforce("get_metadef_resource_type", ns)
            prefix = self._association(ns, resource_type).prefix
            if not prefix or not property_name.startswith(prefix):
                raise NotFoundError(
                    f"Property {property_name} does not start with the expected resource type association "
                    f"prefix of '{prefix}'."
                )
            property_name = property_name[len(prefix) :]
        child = self._child(ns, "property", property_name)
        assert isinstance(child, md.MetadefProperty)
        return child

    def create_object(self, policy: MetadefPolicy, name: str, body: Any) -> md.MetadefObject:
        """Create an object in a namespace."""
        spec = md.parse_object(body)
        return self._put_child(policy, name, "object", "add_metadef_object", lambda now: md.new_object(spec, now))

    def update_object(self, policy: MetadefPolicy, name: str, object_name: str, body: Any) -> md.MetadefObject:
        """Replace an object (a new ``name`` renames it)."""
        spec = md.parse_object(body)
        return self._put_child(
            policy, name, "object", "modify_metadef_object", lambda now: md.new_object(spec, now), object_name
        )

    def create_property(self, policy: MetadefPolicy, name: str, body: Any) -> md.MetadefProperty:
        """Create a property in a namespace."""
        spec = md.parse_property(body)
        return self._put_child(policy, name, "property", "add_metadef_property", lambda now: md.new_property(spec, now))

    def update_property(self, policy: MetadefPolicy, name: str, property_name: str, body: Any) -> md.MetadefProperty:
        """Replace a property (a new ``name`` renames it)."""
        spec = md.parse_property(body)
        return self._put_child(
            policy, name, "property", "modify_metadef_property", lambda now: md.new_property(spec, now), property_name
        )

    def delete_child(self, policy: MetadefPolicy, name: str, kind: str, child_name: str) -> None:
        """Delete one object, property or tag (403 in a protected namespace)."""
        ns = self._namespace(policy, name)
        rule = {"object": "delete_metadef_object", "property": "remove_metadef_property", "tag": "delete_metadef_tag"}
        policy.enforce(rule[kind], ns)
        child = self._child(ns, kind, child_name)
        ns.check_deletable(kind, child_name)
        self.repo.delete_child(ns, kind, child_name)
        self._send(policy, f"metadef_{kind}.delete", _payload(name, child, deleted=True))

    # -- tags --------------------------------------------------------------------------------------------------------

    def create_tag(self, policy: MetadefPolicy, name: str, tag_name: str) -> md.MetadefTag:
        """Create one tag (``POST .../tags/{tag}``)."""
        return self._put_child(
            policy, name, "tag", "add_metadef_tag", lambda now: md.MetadefTag(md.check_tag_name(tag_name), now, now)
        )

    def create_tags(self, policy: MetadefPolicy, name: str, body: Any, append: bool) -> list[md.MetadefTag]:
        """Create tags in bulk; they replace the namespace's tags unless ``append``."""
        names = md.parse_tags(body)
        ns = self._namespace(policy, name)
        policy.enforce("add_metadef_tags", ns)
        _unique(names, "tag", name)
        now = self.clock()
        tags = [md.MetadefTag(n, now, now) for n in names]
        self.repo.replace_tags(ns, tags, append)
        for tag in tags:
            self._send(policy, "metadef_tag.create", p.metadef_tag_payload(name, tag))
        return tags

    def update_tag(self, policy: MetadefPolicy, name: str, tag_name: str, body: Any) -> md.MetadefTag:
        """Rename a tag (``PUT .../tags/{tag}`` with ``{"name": ...}``)."""
        new_name = md.parse_tag_name(body)
        return self._put_child(
            policy, name, "tag", "modify_metadef_tag", lambda now: md.MetadefTag(new_name, now, now), tag_name
        )

    # -- resource types ----------------------------------------------------------------------------------------------

    def resource_types(self, policy: MetadefPolicy) -> list[md.ResourceType]:
        """Every resource type."""
        policy.enforce("list_metadef_resource_types")
        return self.repo.resource_types()

    def associations(self, policy: MetadefPolicy, name: str) -> list[md.ResourceTypeAssociation]:
        """A namespace's resource type associations."""
        ns = self._namespace(policy, name)
        policy.enforce("list_metadef_resource_types", ns)
        return sorted(ns.associations.values(), key=lambda a: a.name)

    def associate(self, policy: MetadefPolicy, name: str, body: Any) -> md.ResourceTypeAssociation:
        """Associate a resource type with a namespace (the resource type is created if it does not exist)."""
        spec = md.parse_association(body)
        ns = self._namespace(policy, name)
        policy.enforce("add_metadef_resource_type_association", ns)
        if spec.name in ns.associations:
            raise MetadefDuplicateError(
                f"The metadata definition resource-type association of resource-type={spec.name} to "
                f"namespace={name}, already exists."
            )
        now = self.clock()
        self.repo.ensure_resource_type(spec.name, now)
        association = md.new_association(spec, now)
        updated = replace(ns, associations={**ns.associations, spec.name: association})
        self.repo.save_associations(updated, added=spec.name)
        self._send(policy, "metadef_resource_type.create", p.metadef_association_payload(name, association))
        return association

    def dissociate(self, policy: MetadefPolicy, name: str, resource_type: str) -> None:
        """Remove a resource type association (403 in a protected namespace)."""
        ns = self._namespace(policy, name)
        policy.enforce("remove_metadef_resource_type_association", ns)
        if self.repo.get_resource_type(resource_type) is None:
            raise NotFoundError(f"The metadata definition resource-type with name={resource_type}, was not found.")
        association = self._association(ns, resource_type)
        ns.check_deletable("resource-type-association", resource_type)
        remaining = {k: v for k, v in ns.associations.items() if k != resource_type}
        self.repo.save_associations(replace(ns, associations=remaining), removed=resource_type)
        self._send(policy, "metadef_resource_type.delete", p.metadef_association_payload(name, association, True))


# -- loading definition files (glance-manage db_load_metadefs) -------------------------------------------------------

LOAD_MODES = ("skip", "merge", "overwrite")


def load_namespace(repo: MetadefRepository, body: Any, owner: str, mode: str, now: datetime) -> str:
    """Load one definition document (the format of Glance's ``etc/metadefs/*.json``) into the catalog.

    ``mode``: ``skip`` leaves an existing namespace as it is (a second load changes nothing), ``merge`` adds the
    objects, properties, tags and associations it lacks, ``overwrite`` replaces it with the file's. Returns what
    happened: ``created``, ``skipped``, ``merged`` or ``replaced``. No events are sent and no policy is asked: this is
    the operator's tool, as glance-manage is.
    """
    spec = md.parse_namespace(body)
    for names, kind in (([a.name for a in spec.associations], "resource type association"),
                        ([o.name for o in spec.objects], "object"), ([pr.name for pr in spec.properties], "property"),
                        (spec.tags, "tag")):  # fmt: skip
        _unique(names, kind, spec.namespace)
    associations = {a.name: md.new_association(a, now) for a in spec.associations}
    ns = replace(md.new_namespace(spec, owner, now), associations=associations)
    children: list[md.Child] = [
        *(md.new_object(o, now) for o in spec.objects),
        *(md.new_property(pr, now) for pr in spec.properties),
        *(md.MetadefTag(t, now, now) for t in spec.tags),
    ]
    current = repo.get_namespace(spec.namespace)
    if current is None:
        repo.add_namespace(ns, children)
        return "created"
    if mode == "skip":
        return "skipped"
    if mode == "overwrite":
        repo.delete_namespace(current)
        repo.add_namespace(ns, children)
        return "replaced"
    for child in children:
        if repo.get_child(current, _kind(child), child.name) is None:
            repo.put_child(current, child)
    missing = {k: v for k, v in associations.items() if k not in current.associations}
    for name, association in missing.items():
        repo.ensure_resource_type(name, now)
        current = repo.save_associations(
            replace(current, associations={**current.associations, name: association}), added=name
        )
    return "merged"
