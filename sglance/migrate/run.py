"""A migration run: list the source's images, compare each with the target, copy what is missing or changed.

Idempotent and resumable by construction: every run plans from what both sides hold now, so a second run finds
nothing to do, a changed source image gets only its changes, and a run killed mid-copy leaves an open multipart
upload whose missing parts the next run sends (a single PUT cut off is started again). Cost: one listing of each
side (pages of 1000), one members call per shared image on each side, and the copies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sglance.api import ImageApi
from sglance.errors import ApiError
from sglance.migrate.copy import CopyOptions, ImageCopier, ImageOutcome
from sglance.migrate.plan import ImagePlan, plan_image
from sglance.progress import CopyDisplay, NoCopyDisplay
from sglance.uploader import Uploader
from sglance.wire import MiB

log = logging.getLogger("sglance")

HIDDEN = ("false", "true")


@dataclass(frozen=True)
class Selection:
    """Which source images to copy: every one it lists unless ids, owner projects or visibilities are named."""

    ids: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    visibilities: tuple[str, ...] = ()

    def queries(self) -> Iterator[dict[str, str]]:
        """The ``GET /v2/images`` filters that list the selection (hidden and visible images, every member status)."""
        owners: Sequence[str | None] = self.projects or (None,)
        visibilities = self.visibilities or ("all",)
        for owner in owners:
            for visibility in visibilities:
                for hidden in HIDDEN:
                    query = {"visibility": visibility, "member_status": "all", "os_hidden": hidden}
                    if owner is not None:
                        query["owner"] = owner
                    yield query

    def accepts(self, image: Mapping[str, Any]) -> bool:
        """Whether a listed (or named) image belongs to the selection."""
        return (not self.projects or image.get("owner") in self.projects) and (
            not self.visibilities or image.get("visibility") in self.visibilities
        )


@dataclass
class MigrationReport:
    """Every image's outcome and the totals."""

    outcomes: list[ImageOutcome] = field(default_factory=list)
    seconds: float = 0.0
    plan_seconds: float = 0.0

    def count(self, result: str) -> int:
        """Images that ended with ``result``."""
        return sum(1 for outcome in self.outcomes if outcome.result == result)

    @property
    def bytes_copied(self) -> int:
        """Bytes sent to the target in this run."""
        return sum(outcome.bytes_copied for outcome in self.outcomes)

    @property
    def ok(self) -> bool:
        """No image failed or conflicts."""
        return not (self.count("failed") or self.count("conflict"))

    @property
    def total_seconds(self) -> float:
        """Listing and comparing both sides, then copying."""
        return self.plan_seconds + self.seconds

    @property
    def mib_per_s(self) -> float:
        """Bytes copied per second of the whole run."""
        return self.bytes_copied / MiB / self.total_seconds if self.total_seconds > 0 else 0.0

    @property
    def images_per_s(self) -> float:
        """Images handled per second of the whole run."""
        return len(self.outcomes) / self.total_seconds if self.total_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the totals and every image."""
        results = ("copied", "created", "updated", "unchanged", "skipped", "conflict", "failed")
        return {
            "images": len(self.outcomes),
            **{result: self.count(result) for result in results},
            "bytes_copied": self.bytes_copied,
            "seconds": round(self.total_seconds, 3),
            "plan_seconds": round(self.plan_seconds, 3),
            "mib_per_s": round(self.mib_per_s, 2),
            "images_per_s": round(self.images_per_s, 2),
            "outcomes": [outcome.as_dict() for outcome in self.outcomes],
        }


class Migration:
    """Copies the selected images of ``source`` into ``target``, ``parallel`` images at a time."""

    def __init__(
        self,
        source: ImageApi,
        target: Uploader,
        options: CopyOptions | None = None,
        parallel: int = 4,
        display: CopyDisplay | None = None,
    ) -> None:
        if parallel < 1:
            raise ValueError("parallel must be at least 1")
        self.source = source
        self.target = target
        self.copier = ImageCopier(source, target, options or CopyOptions())
        self.parallel = parallel
        self.display = display or NoCopyDisplay()

    def source_images(self, selection: Selection) -> list[dict[str, Any]]:
        """The selected images of the source, each once, in listing order."""
        if selection.ids:
            return [self.source.show(image_id) for image_id in selection.ids]
        return list(_unique(image for query in selection.queries() for image in _listed(self.source, query)))

    def target_images(self) -> dict[str, dict[str, Any]]:
        """Every image the target lists to this caller, by id."""
        return {image["id"]: image for query in Selection().queries() for image in _listed(self.target.api, query)}

    def migrate(self, selection: Selection) -> MigrationReport:
        """Plan, then carry the plans out."""
        started = time.monotonic()
        try:
            plans = self.plan(selection)
        except BaseException:
            self.display.close()
            raise
        planned = time.monotonic() - started
        report = self.run(plans)
        report.plan_seconds = planned
        return report

    def plan(self, selection: Selection) -> list[ImagePlan]:
        """What each selected image needs (no change is made)."""
        images = [image for image in self.source_images(selection) if selection.accepts(image) or selection.ids]
        held = self.target_images()
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="sglance-plan") as pool:
            return list(pool.map(lambda image: self._plan_one(image, held.get(image["id"])), images))

    def _plan_one(self, image: Mapping[str, Any], target: Mapping[str, Any] | None) -> ImagePlan:
        source_members: dict[str, str] = {}
        if image.get("visibility") == "shared" and image.get("status") in ("queued", "active", "deactivated"):
            source_members = {m["member_id"]: m["status"] for m in self.source.members(str(image["id"]))}
        if target is None:
            return plan_image(image, source_members, None, {})
        plan = plan_image(image, source_members, target, {})
        return self.copier.replan(plan, target)

    def run(self, plans: Iterable[ImagePlan]) -> MigrationReport:
        """Carry out ``plans``; a failed image does not stop the others."""
        todo = list(plans)
        started = time.monotonic()
        self.display.plan(len(todo), sum(_bytes_to_send(plan) for plan in todo))
        report = MigrationReport()
        feed = self.display.bytes()

        def one(plan: ImagePlan) -> ImageOutcome:
            outcome = self.copier.run(plan, feed)
            self.display.image_done()
            log.info("image %s (%s): %s %s", plan.image_id, plan.name, outcome.result, outcome.detail)
            return outcome

        try:
            with ThreadPoolExecutor(self.parallel, thread_name_prefix="sglance-image") as pool:
                report.outcomes = list(pool.map(one, todo))
        finally:
            self.display.close()
        report.seconds = time.monotonic() - started
        return report


def _listed(api: ImageApi, query: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """``api.images(**query)``; a Glance older than Rocky (API 2.7) knows neither ``os_hidden`` nor
    ``visibility=all`` (400): then the same images with the filters it has (it has no hidden images either)."""
    try:
        yield from api.images(**query)
        return
    except ApiError as exc:
        if exc.status != 400:
            raise
    if query.get("os_hidden") == "true":
        return
    older = {key: value for key, value in query.items() if key != "os_hidden"}
    if older.get("visibility") != "all":
        yield from api.images(**older)
        return
    for visibility in (None, "community"):
        filters = {key: value for key, value in older.items() if key != "visibility"}
        yield from api.images(**filters, **({"visibility": visibility} if visibility else {}))


def _bytes_to_send(plan: ImagePlan) -> int:
    if plan.data in ("copy", "restart"):
        return plan.size
    return plan.size if plan.data == "resume" else 0


def _unique(images: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for image in images:
        if image["id"] not in seen:
            seen.add(image["id"])
            yield image
