"""Which ``GET /v2/images`` queries a migration sends, and what it does with a Glance too old for some of them."""

from __future__ import annotations

from typing import Any

from sglance.errors import ApiError
from sglance.migrate.run import Selection, _listed


class RecordingApi:
    """Answers ``images(**filters)`` from a fixed list; refuses the filters an old Glance does not know."""

    def __init__(self, images: list[dict[str, Any]], refused: tuple[str, ...] = ()) -> None:
        self.all = images
        self.refused = refused
        self.queries: list[dict[str, str]] = []

    def images(self, **filters: str) -> list[dict[str, Any]]:
        self.queries.append(filters)
        if "os_hidden" in filters and "os_hidden" in self.refused or filters.get("visibility") in self.refused:
            raise ApiError("GET", "/v2/images", 400, "Invalid filter")
        wanted = filters.get("visibility")
        return [i for i in self.all if wanted in (None, "all", i["visibility"])]


def test_selection__lists_visible_and_hidden_images_of_every_status_per_owner_and_visibility() -> None:
    queries = list(Selection(projects=("p1", "p2"), visibilities=("public",)).queries())

    assert queries == [
        {"visibility": "public", "member_status": "all", "os_hidden": hidden, "owner": owner}
        for owner in ("p1", "p2")
        for hidden in ("false", "true")
    ]
    assert list(Selection().queries())[0] == {"visibility": "all", "member_status": "all", "os_hidden": "false"}


def test_listed__on_a_glance_without_os_hidden_and_visibility_all__falls_back_to_what_it_knows() -> None:
    images = [{"id": "a", "visibility": "private"}, {"id": "b", "visibility": "community"}]
    api = RecordingApi(images, refused=("os_hidden", "all"))

    found = [image["id"] for query in Selection().queries() for image in _listed(api, query)]  # type: ignore[arg-type]

    assert sorted(set(found)) == ["a", "b"]
    assert {"member_status": "all", "visibility": "community"} in api.queries


def test_listed__of_a_current_glance__sends_each_query_once() -> None:
    api = RecordingApi([{"id": "a", "visibility": "public"}])

    found = [image["id"] for query in Selection().queries() for image in _listed(api, query)]  # type: ignore[arg-type]

    assert found == ["a", "a"]  # visible and hidden queries of this fake both answer it; the run dedupes
    assert len(api.queries) == 2
