"""The one list algorithm of images and tasks: merge ordered candidates, fetch them in batches, keep what passes.

A repository hands ``collect_page`` the candidate ids in the page's order (merged from its partitions), a
batch reader and the query's filter. The cost depends on the page size and the budget, never on the table size:
at most ``budget`` candidates are read, the first batch is exactly one page (nothing filtered out: one round
trip), later batches are full-size so a sparse filter costs few round trips.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TypeVar

from shared.domain.listing import Page

T = TypeVar("T")

# Largest batch a backend is asked for at once (DynamoDB BatchGetItem takes 100 keys).
MAX_BATCH = 100
# Largest index page asked for in one Query.
MAX_QUERY_PAGE = 1000


def merged_ids(streams: Iterable[Iterator[tuple[str, str]]], descending: bool) -> Iterator[str]:
    """Merge ``(sort value, id)`` streams, each already in order, into one stream of ids without repeats (an
    item in two partitions has the same sort value in both, so its repeats are adjacent)."""
    previous: str | None = None
    for _, item_id in heapq.merge(*streams, reverse=descending):
        if item_id != previous:
            yield item_id
        previous = item_id


def collect_page(
    candidates: Iterator[str],
    fetch: Callable[[Sequence[str]], Mapping[str, T]],
    keeps: Callable[[T], bool],
    limit: int,
    budget: int,
) -> Page[T]:
    """Up to ``limit`` items that ``keeps``, reading at most ``max(budget, limit)`` candidates.

    Args:
        candidates: ids in the page's order.
        fetch: reads up to ``MAX_BATCH`` items by id (absent ids left out).
        keeps: the query's filter.
        limit: the page size (0: an empty page, as Glance answers limit=0).
        budget: how many candidates one page may examine.
    """
    if limit <= 0:
        return Page([], None)
    kept: list[T] = []
    scanned = 0
    budget = max(budget, limit)
    want = limit
    unread_in_batch = False
    last_scanned: str | None = None
    while len(kept) < limit and scanned < budget:
        batch = list(itertools.islice(candidates, min(want, MAX_BATCH, budget - scanned)))
        if not batch:
            return Page(kept, None)
        found = fetch(batch)
        scanned += len(batch)
        for position, item_id in enumerate(batch):
            last_scanned = item_id
            item = found.get(item_id)
            if item is not None and keeps(item):
                kept.append(item)
                if len(kept) == limit:
                    # Candidates after this one in the batch are read again by the next page.
                    unread_in_batch = position < len(batch) - 1
                    break
        want = MAX_BATCH
    more = unread_in_batch or next(candidates, None) is not None
    return Page(kept, last_scanned if more else None)
