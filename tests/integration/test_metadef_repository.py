"""The metadata definitions repository on DynamoDB (moto server) and on the in-memory store: the same behaviour,
conditional writes, renames that move a namespace's content, and list pages whose cost does not grow with the table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.provision import provision
from shared.config import Settings
from shared.data.dynamodb.metadefs import DynamoItemStore
from shared.data.dynamodb.table import table_models
from shared.data.memory import MemoryItemStore
from shared.data.metadefs import MetadefRepository
from shared.domain.errors import ConcurrentUpdateError, MetadefDuplicateError
from shared.domain.metadefs import MetadefObject, MetadefProperty, MetadefTag, Namespace, ResourceTypeAssociation
from shared.resources import IMAGES_TABLE, resources_for
from tests.integration.test_dynamodb_repository import CallCounter

pytestmark = pytest.mark.integration
REGION = "us-east-1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["dynamodb", "memory"])
def backend(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def dynamo(moto_reset: str, aws_client: Callable[[str], Any]) -> Any:
    settings = Settings(table_name="metadefs-test", aws_region=REGION)
    provision(resources_for(settings), moto_reset, REGION)
    return table_models(IMAGES_TABLE, "metadefs-test", moto_reset, REGION, aws_client("dynamodb"))


@pytest.fixture
def repo(backend: str, request: pytest.FixtureRequest) -> Iterator[MetadefRepository]:
    if backend == "memory":
        yield MetadefRepository(MemoryItemStore())
    else:
        yield MetadefRepository(DynamoItemStore(request.getfixturevalue("dynamo")))


def _ns(name: str, i: int = 0, visibility: str = "public", owner: str = "p1", **kw: Any) -> Namespace:
    at = T0 + timedelta(seconds=i)
    return Namespace(name, owner, visibility, created_at=at, updated_at=at, **kw)


def _children() -> list[MetadefObject | MetadefProperty | MetadefTag]:
    return [
        MetadefObject("obj", "d", ("a",), {"a": {"title": "A", "type": "string"}}, T0, T0),
        MetadefProperty("prop", {"title": "P", "type": "integer", "minimum": 0}, T0, T0),
        MetadefTag("tag", T0, T0),
    ]


def test_add_and_content__round_trip(repo: MetadefRepository) -> None:
    association = ResourceTypeAssociation("OS::Glance::Image", "hw_", None, T0, T0)
    repo.add_namespace(_ns("n", associations={association.name: association}), _children())
    content = repo.content("n")
    assert content is not None
    assert content.namespace.associations["OS::Glance::Image"].prefix == "hw_"
    assert content.namespace.version == 1
    assert [o.properties for o in content.objects] == [{"a": {"title": "A", "type": "string"}}]
    assert [p.schema["minimum"] for p in content.properties] == [0]
    assert [t.name for t in content.tags] == ["tag"]
    assert [rt.name for rt in repo.resource_types()] == ["OS::Glance::Image"]
    with pytest.raises(MetadefDuplicateError):
        repo.add_namespace(_ns("n"))


def test_save__is_conditional_on_the_version_read(repo: MetadefRepository) -> None:
    repo.add_namespace(_ns("n"))
    first, second = repo.get_namespace("n"), repo.get_namespace("n")
    assert first is not None and second is not None
    repo.save_namespace(first, "n")
    with pytest.raises(ConcurrentUpdateError):
        repo.save_namespace(second, "n")


def test_rename__moves_content_entries_and_pointers(repo: MetadefRepository) -> None:
    association = ResourceTypeAssociation("R", None, None, T0, T0)
    repo.add_namespace(_ns("old", associations={"R": association}), _children())
    current = repo.get_namespace("old")
    assert current is not None
    repo.save_namespace(Namespace("new", "p1", "public", created_at=T0, updated_at=T0, associations={"R": association},
                                  version=current.version), "old")  # fmt: skip
    assert repo.get_namespace("old") is None and repo.content("old") is None
    moved = repo.content("new")
    assert moved is not None and len(moved.objects) == len(moved.tags) == len(moved.properties) == 1
    page = repo.list_namespaces("p1", False, None, "created_at", True, 10, None, ["R"])
    assert [n.namespace for n in page.items] == ["new"]
    assert [n.namespace for n in repo.list_namespaces("p1", False, None, "created_at", True, 10, None).items] == ["new"]


def test_children__create_rename_and_duplicates(repo: MetadefRepository) -> None:
    repo.add_namespace(_ns("n"))
    ns = repo.get_namespace("n")
    assert ns is not None
    repo.put_child(ns, MetadefTag("a", T0, T0))
    with pytest.raises(MetadefDuplicateError):
        repo.put_child(ns, MetadefTag("a", T0, T0))
    repo.put_child(ns, MetadefTag("b", T0, T0), old_name="a")
    assert [t.name for t in repo.children(ns, "tag")] == ["b"]
    repo.replace_tags(ns, [MetadefTag("b", T0, T0), MetadefTag("c", T0, T0)], append=False)
    assert [t.name for t in repo.children(ns, "tag")] == ["b", "c"]
    with pytest.raises(MetadefDuplicateError):
        repo.replace_tags(ns, [MetadefTag("c", T0, T0)], append=True)
    repo.delete_namespace(ns)
    with pytest.raises(ConcurrentUpdateError):
        repo.put_child(ns, MetadefTag("z", T0, T0))


def test_list__visibility_order_and_paging(repo: MetadefRepository) -> None:
    repo.add_namespace(_ns("pub", 1))
    repo.add_namespace(_ns("mine", 2, visibility="private", owner="p1"))
    repo.add_namespace(_ns("theirs", 3, visibility="private", owner="p2"))
    names = [n.namespace for n in repo.list_namespaces("p1", False, None, "created_at", True, 10, None).items]
    assert names == ["mine", "pub"]
    admin = repo.list_namespaces("p9", True, None, "namespace", False, 2, None)
    assert [n.namespace for n in admin.items] == ["mine", "pub"] and admin.next_marker == "pub"
    marker = repo.get_namespace("pub")
    rest = repo.list_namespaces("p9", True, None, "namespace", False, 2, marker)
    assert [n.namespace for n in rest.items] == ["theirs"] and rest.next_marker is None
    private = repo.list_namespaces("p1", False, "private", "created_at", True, 10, None)
    assert [n.namespace for n in private.items] == ["mine"]


def test_list_cost__does_not_grow_with_the_number_of_namespaces(dynamo: Any) -> None:
    repo = MetadefRepository(DynamoItemStore(dynamo))
    counter = CallCounter(dynamo.botocore_clients())

    def page() -> object:
        return repo.list_namespaces("p1", False, None, "created_at", True, 5, None)

    costs = []
    made = 0
    for total in (12, 60):
        while made < total:
            repo.add_namespace(_ns(f"n{made:03d}", made, visibility="public" if made % 2 else "private"))
            made += 1
        costs.append(counter.measure(page))
    assert costs[0] == costs[1]
