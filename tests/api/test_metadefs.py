"""The metadata definitions catalog on the local stack (DynamoDB on moto server), driven by openstacksdk and
python-glanceclient: the shipped definitions, CRUD with Glance's codes, the personas, and the metadef_* events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import openstack.connection
import pytest
from glanceclient import exc as glance_exc
from openstack import exceptions as sdk_exc

from tests.api.events import NotificationQueue

# openstacksdk's own metadef resources call what its next major version removes (its deprecations, not ours).
pytestmark = [pytest.mark.api, pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning")]


@pytest.fixture
def ns_name(sdk_admin: openstack.connection.Connection) -> Iterator[str]:
    """A namespace name unique to the test; deleted (unprotected first) afterwards."""
    name = f"Test::{uuid.uuid4().hex[:12]}"
    yield name
    try:
        sdk_admin.image.update_metadef_namespace(name, namespace=name, protected=False)
        sdk_admin.image.delete_metadef_namespace(name)
    except sdk_exc.NotFoundException:
        pass


def test_shipped_definitions__are_listed_with_resource_types(
    sdk_a_reader: openstack.connection.Connection,
) -> None:
    names = {ns.namespace for ns in sdk_a_reader.image.metadef_namespaces()}
    assert {"SGL::Image::Boot", "SGL::OperatingSystem", "SGL::Storage::Replication"} <= names
    boot = sdk_a_reader.image.get_metadef_namespace("SGL::Image::Boot")
    assert boot.is_protected and boot.visibility == "public"
    assert "firmware_type" in {p.name for p in sdk_a_reader.image.metadef_properties("SGL::Image::Boot")}
    kinds = {rt.name for rt in sdk_a_reader.image.metadef_resource_types()}
    assert {"OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor"} <= kinds
    by_type = sdk_a_reader.image.metadef_namespaces(resource_types="OS::Nova::Flavor")
    assert [ns.namespace for ns in by_type] == ["SGL::Image::Boot"]


def test_namespace_crud__with_openstacksdk(sdk_admin: openstack.connection.Connection, ns_name: str) -> None:
    made = sdk_admin.image.create_metadef_namespace(namespace=ns_name, display_name="Test", visibility="private")
    assert made.namespace == ns_name and made.owner
    sdk_admin.image.create_metadef_resource_type_association(ns_name, name="OS::Glance::Image", prefix="t_")
    sdk_admin.image.create_metadef_property(ns_name, name="speed", title="Speed", type="integer", minimum=1)
    sdk_admin.image.create_metadef_object(ns_name, name="Disk", properties={"bus": {"title": "Bus", "type": "string"}})
    sdk_admin.image.add_tag_to_metadef_namespace(ns_name, "fast")
    shown = sdk_admin.image.get(f"/metadefs/namespaces/{ns_name}").json()
    assert list(shown["properties"]) == ["speed"] and [o["name"] for o in shown["objects"]] == ["Disk"]
    assert [t["name"] for t in shown["tags"]] == ["fast"]
    assert [a.name for a in sdk_admin.image.metadef_resource_type_associations(ns_name)] == ["OS::Glance::Image"]
    updated = sdk_admin.image.update_metadef_namespace(ns_name, namespace=ns_name, description="changed")
    assert updated.description == "changed"
    sdk_admin.image.delete_all_metadef_properties(ns_name)
    assert list(sdk_admin.image.metadef_properties(ns_name)) == []
    with pytest.raises(sdk_exc.ConflictException):
        sdk_admin.image.create_metadef_namespace(namespace=ns_name)
    sdk_admin.image.delete_metadef_namespace(ns_name)
    with pytest.raises(sdk_exc.NotFoundException):
        sdk_admin.image.get_metadef_namespace(ns_name)


def test_personas__reads_by_visibility__writes_admin_only(
    sdk_admin: openstack.connection.Connection,
    sdk_a_member: openstack.connection.Connection,
    sdk_b_reader: openstack.connection.Connection,
    ns_name: str,
) -> None:
    owner = sdk_a_member.session.additional_headers["X-Project-Id"]
    sdk_admin.image.create_metadef_namespace(namespace=ns_name, owner=owner, visibility="private")
    assert sdk_a_member.image.get_metadef_namespace(ns_name).namespace == ns_name
    with pytest.raises(sdk_exc.NotFoundException):
        sdk_b_reader.image.get_metadef_namespace(ns_name)
    assert ns_name not in {ns.namespace for ns in sdk_b_reader.image.metadef_namespaces()}
    # the owner's member can see it, so a write is refused with 403; another project cannot, so 404
    with pytest.raises(sdk_exc.ForbiddenException):
        sdk_a_member.image.delete_metadef_namespace(ns_name)
    with pytest.raises(sdk_exc.NotFoundException):
        sdk_b_reader.image.delete_metadef_namespace(ns_name, ignore_missing=False)
    with pytest.raises(sdk_exc.ForbiddenException):
        sdk_a_member.image.create_metadef_namespace(namespace=f"{ns_name}-x")


def test_tags_objects_properties__with_glanceclient(glance_admin: Any, glance_a_reader: Any, ns_name: str) -> None:
    glance_admin.metadefs_namespace.create(namespace=ns_name, visibility="public", protected=True)
    list(glance_admin.metadefs_tag.create_multiple(ns_name, tags=["a", "b"]))
    glance_admin.metadefs_tag.create(ns_name, "c")
    assert sorted(t["name"] for t in glance_a_reader.metadefs_tag.list(ns_name)) == ["a", "b", "c"]
    glance_admin.metadefs_tag.update(ns_name, "c", name="d")
    glance_admin.metadefs_object.create(ns_name, name="Obj", properties={"x": {"title": "X", "type": "boolean"}})
    assert glance_a_reader.metadefs_object.get(ns_name, "Obj")["properties"]["x"]["type"] == "boolean"
    glance_admin.metadefs_property.create(ns_name, name="p", title="P", type="string", enum=["1", "2"])
    assert glance_a_reader.metadefs_property.get(ns_name, "p")["enum"] == ["1", "2"]
    with pytest.raises(glance_exc.HTTPForbidden):
        glance_admin.metadefs_tag.delete(ns_name, "d")
    with pytest.raises(glance_exc.HTTPForbidden):
        glance_a_reader.metadefs_object.delete(ns_name, "Obj")
    glance_admin.metadefs_namespace.update(ns_name, namespace=ns_name, protected=False)
    glance_admin.metadefs_tag.delete(ns_name, "d")
    glance_admin.metadefs_object.delete(ns_name, "Obj")
    assert sorted(t["name"] for t in glance_a_reader.metadefs_tag.list(ns_name)) == ["a", "b"]
    schema = glance_a_reader.schemas.get("metadefs/namespace")
    assert schema.name == "namespace"


def test_events__go_out_through_the_bus(
    sdk_admin: openstack.connection.Connection, ns_name: str, notifications: NotificationQueue
) -> None:
    sdk_admin.image.create_metadef_namespace(namespace=ns_name)
    sdk_admin.image.add_tag_to_metadef_namespace(ns_name, "t")
    sdk_admin.image.delete_metadef_namespace(ns_name)

    def about(event: dict[str, Any]) -> bool:
        payload = event["detail"]["payload"]
        return isinstance(payload, dict) and payload.get("namespace") == ns_name

    seen = notifications.wait_for(about, count=3)
    assert [e["detail"]["event_type"] for e in seen] == [
        "metadef_namespace.create",
        "metadef_tag.create",
        "metadef_namespace.delete",
    ]
