"""Glance's policy rule names with their secure-RBAC defaults (Glance 33), kept as plain data.

The rules are data so that importing this module costs nothing: oslo.policy is imported only by
``list_rules()``, which the enforcer calls the first time a request needs a decision. Operators override any
rule by name in the policy file (``policy_file``); ``oslopolicy-sample-generator`` style output can be produced
from ``list_rules()``.

Targets carry ``project_id`` and ``owner`` (the image's owner), ``visibility``, ``member_id`` (the caller's
project when it is a member of the shared image) and ``member_status``; see ``shared.policy.targets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from oslo_policy.policy import Operation, RuleDefault

# Project-scoped tokens only: system- and domain-scoped tokens fail every image rule (oslo.policy always
# enforces scope since 6.0).
PROJECT_SCOPE = ("project",)

# -- building blocks --------------------------------------------------------------------------------

ADMIN = "rule:context_is_admin"
SERVICE = "rule:service_api"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
# The caller's project is a member of the (shared) image.
IMAGE_MEMBER = "project_id:%(member_id)s"
# Any image the data layer let the caller reach: its own, one shared with it, or a public/community/shared one.
_REACHABLE = (
    f"project_id:%(project_id)s or {IMAGE_MEMBER} or 'community':%(visibility)s "
    "or 'public':%(visibility)s or 'shared':%(visibility)s"
)

ADMIN_OR_PROJECT_MEMBER = f"{ADMIN} or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER = f"{ADMIN} or ({PROJECT_READER})"
ADMIN_OR_READER_OF_REACHABLE = f"{ADMIN} or (role:reader and ({_REACHABLE}))"
ADMIN_OR_MEMBER_OF_REACHABLE = f"{ADMIN} or (role:member and ({_REACHABLE}))"
ADMIN_OR_MEMBER_CREATING_OWN = f"{ADMIN} or ({PROJECT_MEMBER} and project_id:%(owner)s)"
ADMIN_OR_READER_OF_OWNER_OR_MEMBER = f"{ADMIN} or (role:reader and (project_id:%(project_id)s or {IMAGE_MEMBER}))"
ADMIN_OR_MEMBER_OF_SHARING = f"{ADMIN} or (role:member and {IMAGE_MEMBER})"
SERVICE_OR_OWNING_MEMBER = f"{SERVICE} or ({PROJECT_MEMBER} and project_id:%(owner)s)"
ADMIN_OR_SERVICE = f"{ADMIN} or {SERVICE}"
# Metadefs: the target's project_id is the namespace's owner, visibility the namespace's.
METADEF_ADMIN = "rule:metadef_admin"
ADMIN_OR_READER_OF_OWN_OR_PUBLIC_NAMESPACE = (
    f"{ADMIN} or (role:reader and (project_id:%(project_id)s or 'public':%(visibility)s))"
)


@dataclass(frozen=True)
class RuleSpec:
    """One named rule: its default check string and what it protects.

    ``operations`` are (method, path) pairs; a rule without them is a building block others refer to.
    """

    name: str
    check_str: str
    description: str
    operations: tuple[tuple[str, str], ...] = ()
    scope_types: tuple[str, ...] | None = PROJECT_SCOPE


_IMAGE = "/v2/images/{image_id}"
_ACTIONS = f"{_IMAGE}/actions"
_TASK = "/v2/tasks/{task_id}"
_NS = "/v2/metadefs/namespaces/{namespace_name}"


def _metadef(rule: str, check_str: str, description: str, method: str, path: str, *more: tuple[str, str]) -> RuleSpec:
    return RuleSpec(rule, check_str, description, ((method, path), *more))


_READ_NS = ADMIN_OR_READER_OF_OWN_OR_PUBLIC_NAMESPACE
# Glance 33's glance/policies/metadef.py defaults: reads by admins and readers of a public or their own namespace
# (listing namespaces: admins and project readers), every write by metadef_admin (admins).
METADEF_RULES: tuple[RuleSpec, ...] = (
    RuleSpec("metadef_default", "", "The old default of metadef reads (policy files may name it).", (), None),
    RuleSpec("metadef_admin", ADMIN, "Who may change the metadata definitions catalog.", (), None),
    _metadef("get_metadef_namespace", _READ_NS, "Show a namespace.", "GET", _NS),
    _metadef("get_metadef_namespaces", ADMIN_OR_PROJECT_READER, "List namespaces.", "GET", "/v2/metadefs/namespaces"),
    _metadef("modify_metadef_namespace", METADEF_ADMIN, "Change a namespace.", "PUT", _NS),
    _metadef("add_metadef_namespace", METADEF_ADMIN, "Create a namespace.", "POST", "/v2/metadefs/namespaces"),
    _metadef(
        "delete_metadef_namespace",
        METADEF_ADMIN,
        "Delete a namespace (or all its objects, properties, tags).",
        "DELETE",
        _NS,
    ),  # fmt: skip
    _metadef("get_metadef_object", _READ_NS, "Show an object.", "GET", f"{_NS}/objects/{{object_name}}"),
    _metadef("get_metadef_objects", _READ_NS, "List a namespace's objects.", "GET", f"{_NS}/objects"),
    _metadef("modify_metadef_object", METADEF_ADMIN, "Change an object.", "PUT", f"{_NS}/objects/{{object_name}}"),
    _metadef("add_metadef_object", METADEF_ADMIN, "Create an object.", "POST", f"{_NS}/objects"),
    _metadef("delete_metadef_object", METADEF_ADMIN, "Delete an object.", "DELETE", f"{_NS}/objects/{{object_name}}"),
    _metadef(
        "list_metadef_resource_types",
        _READ_NS,
        "List resource types and a namespace's associations.",
        "GET",
        "/v2/metadefs/resource_types",
        ("GET", f"{_NS}/resource_types"),
    ),  # fmt: skip
    _metadef(
        "get_metadef_resource_type",
        _READ_NS,
        "Show a resource type association.",
        "GET",
        f"{_NS}/resource_types/{{name}}",
    ),  # fmt: skip
    _metadef(
        "add_metadef_resource_type_association",
        METADEF_ADMIN,
        "Associate a resource type with a namespace.",
        "POST",
        f"{_NS}/resource_types",
    ),  # fmt: skip
    _metadef(
        "remove_metadef_resource_type_association",
        METADEF_ADMIN,
        "Remove a resource type association.",
        "DELETE",
        f"{_NS}/resource_types/{{name}}",
    ),  # fmt: skip
    _metadef("get_metadef_property", _READ_NS, "Show a property.", "GET", f"{_NS}/properties/{{property_name}}"),
    _metadef("get_metadef_properties", _READ_NS, "List a namespace's properties.", "GET", f"{_NS}/properties"),
    _metadef(
        "modify_metadef_property", METADEF_ADMIN, "Change a property.", "PUT", f"{_NS}/properties/{{property_name}}"
    ),  # fmt: skip
    _metadef("add_metadef_property", METADEF_ADMIN, "Create a property.", "POST", f"{_NS}/properties"),
    _metadef(
        "remove_metadef_property", METADEF_ADMIN, "Delete a property.", "DELETE", f"{_NS}/properties/{{property_name}}"
    ),  # fmt: skip
    _metadef("get_metadef_tag", _READ_NS, "Show a tag.", "GET", f"{_NS}/tags/{{tag_name}}"),
    _metadef("get_metadef_tags", _READ_NS, "List a namespace's tags.", "GET", f"{_NS}/tags"),
    _metadef("modify_metadef_tag", METADEF_ADMIN, "Rename a tag.", "PUT", f"{_NS}/tags/{{tag_name}}"),
    _metadef("add_metadef_tag", METADEF_ADMIN, "Create a tag.", "POST", f"{_NS}/tags/{{tag_name}}"),
    _metadef("add_metadef_tags", METADEF_ADMIN, "Create tags in bulk.", "POST", f"{_NS}/tags"),
    _metadef("delete_metadef_tag", METADEF_ADMIN, "Delete a tag.", "DELETE", f"{_NS}/tags/{{tag_name}}"),
    _metadef("delete_metadef_tags", METADEF_ADMIN, "Delete every tag of a namespace.", "DELETE", f"{_NS}/tags"),
)

RULES: tuple[RuleSpec, ...] = (
    # -- building blocks ---------------------------------------------------------------------------
    RuleSpec("default", "", "Used by rules that only ever mattered as an empty entry of an old policy file.", (), None),
    RuleSpec("context_is_admin", "role:admin", "Who counts as a cloud administrator.", (), None),
    RuleSpec("service_api", "role:service or role:admin", "Who may call the service-to-service APIs.", (), None),
    # -- images ------------------------------------------------------------------------------------
    RuleSpec("add_image", ADMIN_OR_MEMBER_CREATING_OWN, "Create an image record.", (("POST", "/v2/images"),)),
    RuleSpec("delete_image", ADMIN_OR_PROJECT_MEMBER, "Delete an image.", (("DELETE", _IMAGE),)),
    RuleSpec("get_image", ADMIN_OR_READER_OF_REACHABLE, "Show one image.", (("GET", _IMAGE),)),
    RuleSpec("get_images", ADMIN_OR_PROJECT_READER, "List the images the caller can see.", (("GET", "/v2/images"),)),
    RuleSpec("modify_image", ADMIN_OR_PROJECT_MEMBER, "Change an image's properties.", (("PATCH", _IMAGE),)),
    RuleSpec("publicize_image", ADMIN, "Make an image public.", (("PATCH", _IMAGE), ("POST", "/v2/images"))),
    RuleSpec(
        "communitize_image",
        ADMIN_OR_PROJECT_MEMBER,
        "Make an image a community image.",
        (("PATCH", _IMAGE), ("POST", "/v2/images")),
    ),
    RuleSpec("download_image", ADMIN_OR_MEMBER_OF_REACHABLE, "Download image data.", (("GET", f"{_IMAGE}/file"),)),
    RuleSpec(
        "download_from_store",
        ADMIN_OR_MEMBER_OF_REACHABLE,
        "Download image data from a store the caller names.",
        (("GET", f"{_IMAGE}/file"),),
    ),
    RuleSpec("upload_image", ADMIN_OR_PROJECT_MEMBER, "Upload image data.", (("PUT", f"{_IMAGE}/file"),)),
    RuleSpec("deactivate", ADMIN_OR_PROJECT_MEMBER, "Deactivate an image.", (("POST", f"{_ACTIONS}/deactivate"),)),
    RuleSpec("reactivate", ADMIN_OR_PROJECT_MEMBER, "Reactivate an image.", (("POST", f"{_ACTIONS}/reactivate"),)),
    RuleSpec("copy_image", ADMIN, "Copy an image's data to more stores.", (("POST", f"{_IMAGE}/import"),)),
    # -- locations ---------------------------------------------------------------------------------
    RuleSpec("get_image_location", ADMIN_OR_PROJECT_READER, "Read an image's locations.", (("GET", _IMAGE),)),
    RuleSpec("set_image_location", ADMIN_OR_PROJECT_MEMBER, "Set an image's location URIs.", (("PATCH", _IMAGE),)),
    RuleSpec("delete_image_location", ADMIN, "Remove a location of an image.", (("PATCH", _IMAGE),)),
    RuleSpec(
        "add_image_location",
        SERVICE_OR_OWNING_MEMBER,
        "Attach a location URI to an image.",
        (("POST", f"{_IMAGE}/locations"),),
    ),
    RuleSpec(
        "fetch_image_location",
        SERVICE,
        "List every location of an image (service callers).",
        (("GET", f"{_IMAGE}/locations"),),
    ),
    # -- members -----------------------------------------------------------------------------------
    RuleSpec("add_member", ADMIN_OR_PROJECT_MEMBER, "Share an image with a project.", (("POST", f"{_IMAGE}/members"),)),
    RuleSpec(
        "delete_member",
        ADMIN_OR_PROJECT_MEMBER,
        "Stop sharing an image with a project.",
        (("DELETE", f"{_IMAGE}/members/{{member_id}}"),),
    ),
    RuleSpec(
        "get_member",
        ADMIN_OR_READER_OF_OWNER_OR_MEMBER,
        "Show one membership of an image.",
        (("GET", f"{_IMAGE}/members/{{member_id}}"),),
    ),
    RuleSpec(
        "get_members",
        ADMIN_OR_READER_OF_OWNER_OR_MEMBER,
        "List the memberships of an image.",
        (("GET", f"{_IMAGE}/members"),),
    ),
    RuleSpec(
        "modify_member",
        ADMIN_OR_MEMBER_OF_SHARING,
        "Accept, reject or reset a membership (the member project itself).",
        (("PUT", f"{_IMAGE}/members/{{member_id}}"),),
    ),
    # -- tasks -------------------------------------------------------------------------------------
    # Only tasks_api_access guards the API; the other three are checked inside operations such as import.
    RuleSpec("get_task", "rule:default", "Read a task (internal check).", (("GET", _TASK),)),
    RuleSpec("get_tasks", "rule:default", "List tasks (internal check).", (("GET", "/v2/tasks"),)),
    RuleSpec("add_task", "rule:default", "Create a task (internal check).", (("POST", "/v2/tasks"),)),
    RuleSpec(
        "tasks_api_access",
        ADMIN,
        "Use the tasks API at all; one switch for every task operation.",
        (("GET", _TASK), ("GET", "/v2/tasks"), ("POST", "/v2/tasks"), ("DELETE", _TASK)),
    ),
    # -- discovery ---------------------------------------------------------------------------------
    RuleSpec(
        "stores_info_detail",
        ADMIN_OR_SERVICE,
        "Show store details, backend properties included.",
        (("GET", "/v2/info/stores/detail"),),
    ),
    # -- cache -------------------------------------------------------------------------------------
    RuleSpec("manage_image_cache", ADMIN, "Manage the image cache (the older, single rule)."),
    RuleSpec("cache_image", ADMIN, "Queue an image for caching.", (("PUT", "/v2/cache/{image_id}"),)),
    RuleSpec("cache_list", ADMIN, "Show what is cached and queued.", (("GET", "/v2/cache"),)),
    RuleSpec(
        "cache_delete",
        ADMIN,
        "Drop images from the cache or its queue.",
        (("DELETE", "/v2/cache"), ("DELETE", "/v2/cache/{image_id}")),
    ),
    RuleSpec("cache_clean", ADMIN, "Clean invalid and stalled cache entries.", (("POST", "/v2/cache/clean"),)),
    RuleSpec("cache_prune", ADMIN, "Shrink the cache to its size limit.", (("POST", "/v2/cache/prune"),)),
    RuleSpec(
        "list_cached_nodes",
        ADMIN,
        "Show the nodes that cache an image.",
        (("GET", "/v2/cache/nodes/{image_id}"),),
    ),
    *METADEF_RULES,
)

RULE_NAMES = frozenset(rule.name for rule in RULES)


def list_rules() -> list[RuleDefault]:
    """The rules as oslo.policy defaults (``DocumentedRuleDefault`` where they guard an API operation)."""
    from oslo_policy import policy

    defaults: list[RuleDefault] = []
    for spec in RULES:
        scope = list(spec.scope_types) if spec.scope_types else None
        if spec.operations:
            operations: list[Operation] = [{"method": method, "path": path} for method, path in spec.operations]
            defaults.append(
                policy.DocumentedRuleDefault(
                    name=spec.name,
                    check_str=spec.check_str,
                    description=spec.description,
                    operations=operations,
                    scope_types=scope,
                )
            )
        else:
            defaults.append(
                policy.RuleDefault(
                    name=spec.name, check_str=spec.check_str, description=spec.description, scope_types=scope
                )
            )
    return defaults
