"""The catalog's domain rules and use cases with fakes: body checks, visibility, prefixes, protected namespaces, the
policy's 404-or-403 masking, and events sent only after a write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.data.memory import MemoryItemStore
from shared.data.metadefs import MetadefRepository
from shared.domain import metadefs as md
from shared.domain.context import RequestContext
from shared.domain.errors import (
    ForbiddenError,
    InvalidInputError,
    MetadefDuplicateError,
    NotFoundError,
    ProtectedMetadefError,
    ReadOnlyPropertyError,
)
from shared.notifications import RecordingNotifier
from shared.notifications.events import Events
from shared.policy.enforcer import PolicyEnforcer
from shared.policy.metadefs import MetadefPolicy
from shared.services.metadefs import MetadefService, parse_list_query

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _policy(project: str, *roles: str) -> MetadefPolicy:
    ctx = RequestContext(request_id="req-1", project_id=project, user_id="u", roles=frozenset(roles))
    return MetadefPolicy(ctx, PolicyEnforcer())


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def service(notifier: RecordingNotifier) -> MetadefService:
    return MetadefService(MetadefRepository(MemoryItemStore()), Events(notifier), clock=lambda: T0)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ([], InvalidInputError),
        ({"namespace": ""}, InvalidInputError),
        ({"namespace": "n", "protected": "yes"}, InvalidInputError),
        ({"namespace": "n", "objects": [{"description": "no name"}]}, InvalidInputError),
        ({"namespace": "n", "tags": [{"name": "x" * 81}]}, InvalidInputError),
        ({"namespace": "n", "properties": {"p": {"title": "P", "type": "string", "pattern": "("}}}, InvalidInputError),
        ({"namespace": "n", "properties": {"p": {"title": "P", "type": "integer", "minimum": "1"}}}, InvalidInputError),
        ({"namespace": "n", "self": "/x"}, ReadOnlyPropertyError),
    ],
)
def test_parse_namespace__refuses_what_glance_refuses(body: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        md.parse_namespace(body)


def test_parse_namespace__keeps_definitions_without_their_name() -> None:
    spec = md.parse_namespace({"namespace": "n", "properties": {"p": {"name": "p", "title": "P", "type": None}}})
    assert spec.properties == [md.PropertySpec("p", {"title": "P", "type": None})]


def test_visible__public_own_or_admin() -> None:
    private = md.Namespace("n", "p1", "private")
    assert md.visible(private, "p1", False) and md.visible(private, "p2", True)
    assert not md.visible(private, "p2", False)
    assert md.visible(md.Namespace("n", "p1", "public"), "p2", False)


def test_prefixed__adds_the_association_prefix_to_properties_and_required() -> None:
    association = md.ResourceTypeAssociation("R", "r_", None, T0, T0)
    ns = md.Namespace("n", "p1", associations={"R": association})
    obj = md.MetadefObject("o", None, ("a",), {"a": {"title": "A", "type": "string"}}, T0, T0)
    content = md.NamespaceContent(ns, [obj], [md.MetadefProperty("p", {}, T0, T0)], [])
    shown = md.prefixed(content, "R")
    assert [p.name for p in shown.properties] == ["r_p"]
    assert shown.objects[0].required == ("r_a",) and list(shown.objects[0].properties) == ["r_a"]
    assert md.prefixed(content, "Other") is content


def test_protected_namespace__refuses_deletes() -> None:
    with pytest.raises(ProtectedMetadefError):
        md.Namespace("n", "p1", protected=True).check_deletable("tag", "t")


def test_list_query__glance_parameters() -> None:
    query = parse_list_query({"limit": "5000", "resource_types": "A, B", "sort_dir": "asc"}, 25, 1000)
    assert (query.limit, query.resource_types, query.descending) == (1000, ("A", "B"), False)
    for bad in ({"limit": "x"}, {"sort_key": "size"}, {"visibility": "community"}):
        with pytest.raises(InvalidInputError):
            parse_list_query(bad, 25, 1000)


def test_policy__hidden_namespace_is_404__visible_one_403() -> None:
    member = _policy("p2", "member", "reader")
    public, private = md.Namespace("pub", "p1", "public"), md.Namespace("priv", "p1", "private")
    with pytest.raises(ForbiddenError):
        member.enforce("modify_metadef_namespace", public)
    with pytest.raises(NotFoundError):
        member.enforce("modify_metadef_namespace", private)
    _policy("p9", "admin").enforce("modify_metadef_namespace", private)
    # a project-scoped reader lists; a token without the reader role does not
    _policy("p2", "reader").enforce("get_metadef_namespaces")
    with pytest.raises(ForbiddenError):
        _policy("p2").enforce("get_metadef_namespaces")


def test_service__events_follow_committed_writes_only(service: MetadefService, notifier: RecordingNotifier) -> None:
    admin = _policy("p9", "admin")
    service.create_namespace(admin, {"namespace": "n", "tags": [{"name": "t"}]})
    with pytest.raises(MetadefDuplicateError):
        service.create_namespace(admin, {"namespace": "n"})
    with pytest.raises(MetadefDuplicateError):
        service.create_tags(admin, "n", {"tags": [{"name": "a"}, {"name": "a"}]}, append=False)
    service.associate(admin, "n", {"name": "R", "prefix": "r_"})
    service.dissociate(admin, "n", "R")
    assert notifier.event_types == [
        "metadef_namespace.create",
        "metadef_tag.create",
        "metadef_resource_type.create",
        "metadef_resource_type.delete",
    ]
    deleted = notifier.sent[-1].payload
    assert isinstance(deleted, dict) and deleted["deleted"] is True and deleted["prefix"] == "r_"
    assert [rt.name for rt in service.resource_types(admin)] == ["R"]


def test_service__child_writes__keep_created_at_and_send_one_event_each(notifier: RecordingNotifier) -> None:
    ticks = iter([T0 + timedelta(minutes=n) for n in range(10)])
    service = MetadefService(MetadefRepository(MemoryItemStore()), Events(notifier), clock=lambda: next(ticks))
    admin = _policy("p9", "admin")
    service.create_namespace(admin, {"namespace": "n"})  # minute 0
    service.create_object(admin, "n", {"name": "o"})  # 1
    obj = service.update_object(admin, "n", "o", {"name": "o2", "description": "d"})  # 2
    service.create_property(admin, "n", {"name": "p", "title": "P", "type": "string"})  # 3
    prop = service.update_property(admin, "n", "p", {"name": "p2", "title": "P2", "type": "integer"})  # 4
    service.create_tag(admin, "n", "t")  # 5
    tag = service.update_tag(admin, "n", "t", {"name": "t2"})  # 6
    service.delete_child(admin, "n", "tag", "t2")

    minute = [T0 + timedelta(minutes=n) for n in range(7)]
    assert (obj.created_at, obj.updated_at, obj.description) == (minute[1], minute[2], "d")
    assert (prop.created_at, prop.updated_at, prop.schema["type"]) == (minute[3], minute[4], "integer")
    assert (tag.created_at, tag.updated_at) == (minute[5], minute[6])
    assert [c.name for c in service.list_children(admin, "n", "object")] == ["o2"]
    assert notifier.event_types == [
        "metadef_namespace.create",
        "metadef_object.create",
        "metadef_object.update",
        "metadef_property.create",
        "metadef_property.update",
        "metadef_tag.create",
        "metadef_tag.update",
        "metadef_tag.delete",
    ]
    payloads = [s.payload for s in notifier.sent[1:]]
    assert all(isinstance(p, dict) and p["namespace"] == "n" for p in payloads)
    names = [(p["name"], p["name_old"], p["deleted"]) for p in payloads if isinstance(p, dict)]
    assert names == [
        ("o", "o", False),
        ("o2", "o", False),
        ("p", "p", False),
        ("p2", "p", False),
        ("t", "t", False),
        ("t2", "t", False),
        ("t2", "t2", True),
    ]
