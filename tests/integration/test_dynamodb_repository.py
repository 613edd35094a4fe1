"""The DynamoDB image repository against moto server: the same pynamodb/botocore code path as on AWS."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from devstack.provision import provision
from shared.config import Settings
from shared.data.dynamodb.images import DynamoImageRepository
from shared.data.dynamodb.table import table_models
from shared.domain.context import RequestContext
from shared.domain.errors import ConcurrentUpdateError, DuplicateError, NotFoundError
from shared.domain.image import Image, Visibility
from shared.domain.listing import ImageQuery, parse_filters, parse_sort
from shared.domain.location import Location, LocationStatus
from shared.domain.status import ImageStatus
from shared.resources import IMAGES_TABLE, resources_for

pytestmark = pytest.mark.integration

REGION = "us-east-1"
MEMBER_A = RequestContext("req-a", "project-a", "user-a", frozenset({"member", "reader"}))
MEMBER_B = RequestContext("req-b", "project-b", "user-b", frozenset({"member", "reader"}))
ADMIN = RequestContext("req-adm", "project-adm", "admin", frozenset({"admin"}))


@pytest.fixture
def repo(moto_reset: str) -> DynamoImageRepository:
    settings = Settings(aws_endpoint_url=moto_reset, aws_region=REGION)
    resources = resources_for(settings)
    provision(resources, moto_reset, REGION)
    return DynamoImageRepository(table_models(IMAGES_TABLE, resources.table_name, moto_reset, REGION))


def _list(repo: DynamoImageRepository, ctx: RequestContext, query: list[tuple[str, str]], **kw: Any) -> Any:
    marker = kw.pop("marker", None)
    admin = "admin" in ctx.roles  # the default policy's context_is_admin
    limit, budget = kw.pop("limit", 25), kw.pop("budget", 1000)
    marked = repo.get(marker) if marker else None
    return repo.list(ImageQuery(ctx, admin, parse_filters(query), parse_sort(query), limit, budget, marked))


def _all_pages(repo: DynamoImageRepository, ctx: RequestContext, query: list[tuple[str, str]], limit: int) -> list[str]:
    seen: list[str] = []
    marker = None
    for _ in range(100):
        page = _list(repo, ctx, query, limit=limit, marker=marker)
        seen.extend(i.id for i in page.items)
        if page.next_marker is None:
            return seen
        marker = page.next_marker
    raise AssertionError("paging did not end")


def test_add_then_get__round_trips_every_field(repo: DynamoImageRepository) -> None:
    image = Image.new(
        owner="project-a",
        name="cirros",
        disk_format="qcow2",
        container_format="bare",
        min_ram=512,
        protected=True,
        os_hidden=True,
        tags=["x86", "tiny"],
        extra_properties={"os_distro": "cirros", "hw_disk_bus": "virtio"},
    )
    image.locations = [
        Location("s3", "s3://bucket/images/x", LocationStatus.ACTIVE, {"etag": "abc"}),
        Location("swift", "swift+config://ref/c/x", LocationStatus.PENDING),
    ]
    repo.add(image)

    got = repo.get(image.id)

    assert (got.name, got.disk_format, got.container_format, got.min_ram) == ("cirros", "qcow2", "bare", 512)
    assert got.protected and got.os_hidden
    assert got.tags == {"x86", "tiny"}
    assert got.extra_properties == {"os_distro": "cirros", "hw_disk_bus": "virtio"}
    assert got.locations == image.locations
    assert got.stores == ["s3"]
    assert got.created_at == image.created_at
    assert got.version == 1


def test_get__unknown_id__raises_not_found(repo: DynamoImageRepository) -> None:
    with pytest.raises(NotFoundError):
        repo.get("8a1e0c8e-0000-4000-8000-000000000000")


def test_add__existing_id__raises_duplicate(repo: DynamoImageRepository) -> None:
    image = repo.add(Image.new(owner="project-a"))
    with pytest.raises(DuplicateError):
        repo.add(Image.new(owner="project-b", image_id=image.id))


def test_add__id_of_deleted_image__raises_duplicate_because_tombstones_keep_ids(repo: DynamoImageRepository) -> None:
    image = repo.add(Image.new(owner="project-a"))
    image.delete()
    repo.save(image)

    with pytest.raises(DuplicateError):
        repo.add(Image.new(owner="project-a", image_id=image.id))
    assert repo.get(image.id).status is ImageStatus.DELETED


def test_save__with_stale_version__raises_conflict_and_keeps_the_winner(repo: DynamoImageRepository) -> None:
    image = repo.add(Image.new(owner="project-a", name="v0"))
    first, second = repo.get(image.id), repo.get(image.id)
    first.name = "first"
    repo.save(first)
    second.name = "second"

    with pytest.raises(ConcurrentUpdateError):
        repo.save(second)
    assert repo.get(image.id).name == "first"


def test_concurrent_writers__with_retry_on_conflict__lose_no_update(repo: DynamoImageRepository) -> None:
    image = repo.add(Image.new(owner="project-a"))
    conflicts = Counter[str]()

    def writer(n: int) -> None:
        for _ in range(50):
            current = repo.get(image.id)
            current.extra_properties[f"writer_{n}"] = str(n)
            try:
                repo.save(current)
                return
            except ConcurrentUpdateError:
                conflicts["seen"] += 1
        raise AssertionError("writer starved")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    final = repo.get(image.id)
    assert final.extra_properties == {f"writer_{n}": str(n) for n in range(8)}
    assert final.version == 9


def test_list__pages_cover_every_visible_image_once(repo: DynamoImageRepository) -> None:
    mine = {repo.add(Image.new(owner="project-a", name=f"a{i}")).id for i in range(7)}
    public = {repo.add(Image.new(owner="project-b", name=f"p{i}", visibility=Visibility.PUBLIC)).id for i in range(4)}
    repo.add(Image.new(owner="project-b", name="b-private", visibility=Visibility.PRIVATE))
    repo.add(Image.new(owner="project-b", name="b-community", visibility=Visibility.COMMUNITY))

    for query in ([], [("sort", "name:asc")], [("sort_key", "size"), ("sort_dir", "asc")]):
        seen = _all_pages(repo, MEMBER_A, query, limit=3)
        assert sorted(seen) == sorted(mine | public), query
        assert len(seen) == len(set(seen))


def test_list__default_order_is_newest_first(repo: DynamoImageRepository) -> None:
    ids = [repo.add(Image.new(owner="project-a", name=f"n{i}")).id for i in range(5)]
    assert [i.id for i in _list(repo, MEMBER_A, []).items] == list(reversed(ids))


def test_list__deleted_images_disappear_and_visibility_changes_move_images(repo: DynamoImageRepository) -> None:
    gone = repo.add(Image.new(owner="project-a", name="gone"))
    shared = repo.add(Image.new(owner="project-a", name="soon-public"))
    gone.delete()
    repo.save(gone)
    assert [i.id for i in _list(repo, MEMBER_B, []).items] == []

    shared.visibility = Visibility.PUBLIC
    repo.save(shared)

    assert [i.id for i in _list(repo, MEMBER_A, []).items] == [shared.id]
    assert [i.id for i in _list(repo, MEMBER_B, []).items] == [shared.id]
    assert [i.id for i in _list(repo, MEMBER_B, [("visibility", "public")]).items] == [shared.id]


def test_list__admin_owner_filter_reads_only_that_project(repo: DynamoImageRepository) -> None:
    a = {repo.add(Image.new(owner="project-a")).id for _ in range(3)}
    repo.add(Image.new(owner="project-b"))
    assert {i.id for i in _list(repo, ADMIN, [("owner", "project-a")]).items} == a


class CallCounter:
    """Counts DynamoDB calls and the items they read, from botocore's after-call events."""

    def __init__(self, clients: list[Any]) -> None:
        self.calls = Counter[str]()
        self.items = 0
        for client in clients:
            client.meta.events.register("after-call.dynamodb", self._on_call)

    def _on_call(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls[model.name] += 1
        if model.name == "Query":
            self.items += int(parsed.get("ScannedCount", parsed.get("Count", 0)))
        elif model.name == "BatchGetItem":
            self.items += sum(len(items) for items in parsed.get("Responses", {}).values())
        elif model.name == "GetItem" and "Item" in parsed:
            self.items += 1

    def measure(self, action: Callable[[], object]) -> tuple[dict[str, int], int]:
        self.calls.clear()
        self.items = 0
        action()
        return dict(self.calls), self.items


def _load(repo: DynamoImageRepository, start: int, count: int) -> None:
    images = (
        Image.new(
            owner=f"project-{'ab'[i % 2]}",
            name=f"img-{i:05d}",
            visibility=Visibility.PUBLIC if i % 5 == 0 else Visibility.SHARED,
            disk_format="raw",
        )
        for i in range(start, start + count)
    )
    assert repo.import_images(images) == count


def test_list_cost__does_not_grow_with_the_number_of_images(repo: DynamoImageRepository) -> None:
    counter = CallCounter(repo.botocore_clients())
    requests: dict[str, Callable[[], object]] = {
        "member default": lambda: _list(repo, MEMBER_A, []),
        "admin default": lambda: _list(repo, ADMIN, []),
        "sorted by name": lambda: _list(repo, MEMBER_A, [("sort", "name:asc")]),
        "filtered": lambda: _list(repo, MEMBER_A, [("disk_format", "raw")]),
    }

    # 130 images already fill every partition a page reads (26 public, 65 per project); then 10x as many.
    _load(repo, 0, 130)
    small = {name: counter.measure(action) for name, action in requests.items()}
    _load(repo, 130, 1170)
    large = {name: counter.measure(action) for name, action in requests.items()}

    assert large == small
    calls, items = small["member default"]
    # Own, public and shared-with-me (accepted) partitions, then one batch of images.
    assert calls == {"Query": 3, "BatchGetItem": 1}
    assert items <= 3 * 26 + 25


def test_list__shared_images_reach_members_by_status_and_leave_when_unshared(repo: DynamoImageRepository) -> None:
    image = repo.add(Image.new(owner="project-a", name="shared"))
    image.add_member("project-b", limit=128)
    image = repo.save(image)
    assert [i.id for i in _list(repo, MEMBER_B, [("member_status", "pending")]).items] == [image.id]
    assert _list(repo, MEMBER_B, []).items == []

    image.members["project-b"].set_status("accepted")
    image = repo.save(image)
    assert [i.id for i in _list(repo, MEMBER_B, []).items] == [image.id]
    assert _list(repo, MEMBER_B, [("member_status", "pending")]).items == []

    image.visibility = Visibility.PRIVATE
    image = repo.save(image)
    assert _list(repo, MEMBER_B, [("member_status", "all")]).items == []
    image.visibility = Visibility.SHARED
    image = repo.save(image)
    assert [i.id for i in _list(repo, MEMBER_B, []).items] == [image.id]

    image.remove_member("project-b")
    repo.save(image)
    assert _list(repo, MEMBER_B, [("member_status", "all")]).items == []
    assert repo.get(image.id).members == {}


def test_list_cost__shared_with_me_does_not_grow_with_images_shared_with_others(repo: DynamoImageRepository) -> None:
    member_c = RequestContext("req-c", "project-c", "user-c", frozenset({"member", "reader"}))
    counter = CallCounter(repo.botocore_clients())

    def shared(start: int, count: int, member: str) -> None:
        images = []
        for i in range(start, start + count):
            image = Image.new(owner="project-a", name=f"s-{i:04d}")
            image.add_member(member, limit=128).set_status("accepted")
            images.append(image)
        repo.import_images(images)

    shared(0, 30, "project-c")
    query = [("visibility", "shared")]
    small = counter.measure(lambda: _list(repo, member_c, query))
    shared(30, 300, "project-b")

    assert counter.measure(lambda: _list(repo, member_c, query)) == small
    assert len(_list(repo, member_c, query).items) == 25
