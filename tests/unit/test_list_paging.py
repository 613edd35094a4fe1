"""The list algorithm every backend shares (shared/data/base.py), driven through the in-memory repository."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.data.base import CounterUpdate
from shared.data.memory import MemoryImageRepository
from shared.domain.context import RequestContext
from shared.domain.image import Image, Visibility
from shared.domain.listing import ImageQuery, Page, parse_filters, parse_sort
from shared.domain.status import ImageStatus
from shared.resources import SORT_KEYS

MEMBER = RequestContext("req-a", "project-a", "user-a", frozenset({"member", "reader"}))
ADMIN = RequestContext("req-adm", "project-adm", "user-adm", frozenset({"admin"}))
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def _admin(ctx: RequestContext) -> bool:
    """What the default policy's context_is_admin answers for these contexts."""
    return "admin" in ctx.roles


class RecordingRepository(MemoryImageRepository):
    """Counts the images the list algorithm fetches, to hold it to its budget."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched = 0

    def _get_many(self, image_ids: Sequence[str]) -> dict[str, Image]:
        self.fetched += len(image_ids)
        return super()._get_many(image_ids)


def _add(repo: MemoryImageRepository, owner: str, visibility: Visibility, seconds: int, **fields: Any) -> Image:
    image = Image.new(owner=owner)
    image.visibility = visibility
    image.created_at = T0 + timedelta(seconds=seconds)
    image.updated_at = image.created_at
    for name, value in fields.items():
        setattr(image, name, value)
    return repo.add(image)


def _list(
    repo: MemoryImageRepository,
    ctx: RequestContext,
    query: list[tuple[str, str]],
    *,
    limit: int,
    budget: int = 1000,
    marker: str | None = None,
) -> Page[Image]:
    filters = parse_filters(query)
    sort = parse_sort(query)
    query = ImageQuery(ctx, _admin(ctx), filters, sort, limit, budget, repo.get(marker) if marker else None)
    return repo.list(query)


def _pages(
    repo: MemoryImageRepository, ctx: RequestContext, query: list[tuple[str, str]], *, limit: int, budget: int = 1000
) -> list[Page[Image]]:
    pages: list[Page[Image]] = []
    marker = None
    for _ in range(200):
        page = _list(repo, ctx, query, limit=limit, budget=budget, marker=marker)
        pages.append(page)
        if page.next_marker is None:
            return pages
        marker = page.next_marker
    raise AssertionError("paging did not end")


def _ids(pages: list[Page[Image]]) -> list[str]:
    return [image.id for page in pages for image in page.items]


class Population(MemoryImageRepository):
    """A repository that remembers what the test stored in it."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: list[Image] = []

    def _add(self, image: Image, counters: Sequence[CounterUpdate]) -> Image:
        self.stored.append(image)
        return super()._add(image, counters)


@pytest.fixture
def mixed() -> Population:
    """Sixteen images in two owners' partitions and four visibilities, with NULLs and ties on every key."""
    repo = Population()
    names = ["b", None, "a", "a b", "c", "a", None, "B", "b", "", "z", "a", "m", "c", "n", None]
    sizes = [5, None, 10, 9, 100, 10, None, 0, 10**10, 1, 2, 10, 99, 5, None, 7]
    formats = ["raw", None, "qcow2", "raw", "iso", None, "vmdk", "raw", None, "qcow2", "raw", "iso", None, "raw"]
    formats += ["vdi", "ami"]
    statuses = [ImageStatus.QUEUED, ImageStatus.ACTIVE, ImageStatus.DEACTIVATED, ImageStatus.SAVING]
    for i, (name, size, fmt) in enumerate(zip(names, sizes, formats, strict=True)):
        owner = "project-a" if i % 3 else "project-b"
        visibility = [Visibility.PUBLIC, Visibility.PRIVATE, Visibility.SHARED, Visibility.COMMUNITY][i % 4]
        _add(
            repo,
            owner,
            visibility,
            seconds=i // 3,  # triples share a created_at
            name=name,
            size=size,
            disk_format=fmt,
            container_format=fmt and "bare",
            status=statuses[i % 4],
            updated_at=T0 + timedelta(seconds=(i * 7) % 5),
        )
    return repo


def _expected(repo: Population, ctx: RequestContext, key: str, descending: bool) -> list[str]:
    """The visible images in Glance's order: NULL first ascending, created_at then id as tie-breakers."""
    query = ImageQuery(ctx, _admin(ctx), parse_filters([]), parse_sort([]), 1, 1)
    visible = [img for img in repo.stored if query.keeps(img)]

    def reference(image: Image) -> tuple[Any, ...]:
        value = getattr(image, key)
        if key == "id":
            return (value,)
        if key == "created_at":
            return (value, image.id)
        return (
            (value is not None, str(value) if isinstance(value, ImageStatus) else value),
            image.created_at,
            image.id,
        )

    return [img.id for img in sorted(visible, key=reference, reverse=descending)]


def test_list__merges_partitions_without_duplicates(mixed: Population) -> None:
    # project-a's public images live in both the owner and the public partition the member reads.
    own_public = [i for i in mixed.stored if i.owner == "project-a" and i.visibility is Visibility.PUBLIC]
    assert own_public

    ids = [img.id for img in _list(mixed, MEMBER, [], limit=100).items]

    assert len(ids) == len(set(ids))
    assert set(ids) == set(_expected(mixed, MEMBER, "created_at", True))


def test_list__admin_sees_own_public_image_once() -> None:
    repo = MemoryImageRepository()
    image = _add(repo, "project-adm", Visibility.PUBLIC, seconds=0)

    page = _list(repo, ADMIN, [], limit=10)

    assert [i.id for i in page.items] == [image.id]


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("key", SORT_KEYS)
@pytest.mark.parametrize("ctx", [MEMBER, ADMIN], ids=["member", "admin"])
def test_list__orders_by_every_sort_key_in_both_directions(
    mixed: Population, ctx: RequestContext, key: str, direction: str
) -> None:
    page = _list(mixed, ctx, [("sort", f"{key}:{direction}")], limit=100)

    assert [i.id for i in page.items] == _expected(mixed, ctx, key, direction == "desc")
    assert page.next_marker is None


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("key", SORT_KEYS)
def test_list__following_markers__returns_every_image_once_in_order(
    mixed: Population, key: str, direction: str
) -> None:
    pages = _pages(mixed, ADMIN, [("sort_key", key), ("sort_dir", direction)], limit=3)

    assert len(pages) > 2
    assert all(len(page.items) == 3 for page in pages[:-1])
    assert _ids(pages) == _expected(mixed, ADMIN, key, direction == "desc")


def test_list__with_limit_zero__returns_an_empty_last_page(mixed: Population) -> None:
    page = _list(mixed, ADMIN, [], limit=0)

    assert (page.items, page.next_marker) == ([], None)


def test_list__exactly_limit_images__has_no_next_marker() -> None:
    repo = MemoryImageRepository()
    for i in range(4):
        _add(repo, "project-a", Visibility.PRIVATE, seconds=i)

    page = _list(repo, MEMBER, [], limit=4)

    assert (len(page.items), page.next_marker) == (4, None)


def test_list__one_more_than_limit__has_a_marker_then_a_last_page() -> None:
    repo = MemoryImageRepository()
    images = [_add(repo, "project-a", Visibility.PRIVATE, seconds=i) for i in range(5)]

    first = _list(repo, MEMBER, [("sort", "created_at:asc")], limit=4)
    second = _list(repo, MEMBER, [("sort", "created_at:asc")], limit=4, marker=first.next_marker)

    assert first.next_marker == images[3].id
    assert ([i.id for i in second.items], second.next_marker) == ([images[4].id], None)


def test_list__skips_deleted_and_invisible_images() -> None:
    repo = MemoryImageRepository()
    kept = _add(repo, "project-a", Visibility.PRIVATE, seconds=0)
    gone = _add(repo, "project-a", Visibility.PRIVATE, seconds=1)
    gone.delete()
    repo.save(gone)
    _add(repo, "project-b", Visibility.PRIVATE, seconds=2)
    _add(repo, "project-b", Visibility.COMMUNITY, seconds=3)

    page = _list(repo, MEMBER, [], limit=10)

    assert [i.id for i in page.items] == [kept.id]


@pytest.fixture
def sparse() -> tuple[RecordingRepository, list[Image]]:
    """Twelve images named n00..n11; only n05 and n10 match the filter os_distro=cirros."""
    repo = RecordingRepository()
    images = []
    for i in range(12):
        extra = {"os_distro": "cirros" if i in (5, 10) else "ubuntu"}
        images.append(_add(repo, "project-a", Visibility.PRIVATE, seconds=i, name=f"n{i:02d}", extra_properties=extra))
    return repo, images


def test_list__when_scan_budget_runs_out__returns_partial_page_with_marker_of_last_scanned(
    sparse: tuple[RecordingRepository, list[Image]],
) -> None:
    repo, images = sparse

    page = _list(repo, MEMBER, [("os_distro", "cirros"), ("sort", "name:asc")], limit=2, budget=3)

    assert page.items == []
    assert page.next_marker == images[2].id
    assert repo.fetched == 3


def test_list__partial_pages_followed_to_the_end__return_every_match_once(
    sparse: tuple[RecordingRepository, list[Image]],
) -> None:
    repo, images = sparse

    pages = _pages(repo, MEMBER, [("os_distro", "cirros"), ("sort", "name:asc")], limit=2, budget=3)

    assert _ids(pages) == [images[5].id, images[10].id]
    assert any(page.next_marker and len(page.items) < 2 for page in pages)
    assert pages[-1].next_marker is None
    assert repo.fetched == len(images)


def test_list__budget_below_limit__still_fills_a_page(sparse: tuple[RecordingRepository, list[Image]]) -> None:
    repo, images = sparse

    page = _list(repo, MEMBER, [("sort", "name:asc")], limit=4, budget=1)

    assert [i.id for i in page.items] == [i.id for i in images[:4]]
    assert page.next_marker == images[3].id


def test_list__full_page__fetches_no_more_than_the_page() -> None:
    repo = RecordingRepository()
    for i in range(30):
        _add(repo, "project-a", Visibility.PRIVATE, seconds=i)

    page = _list(repo, MEMBER, [], limit=5)

    assert len(page.items) == 5
    assert repo.fetched == 5
