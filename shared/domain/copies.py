"""Store copies of an image: the locations it has, the copies store_sync makes, and their roll-back rules."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from shared.domain.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from shared.domain.events import CopyUploaded, EventRecorder, ImageUpdated
from shared.domain.location import (
    BATCH_KEY,
    ERROR_KEY,
    FAILED_IMPORT_PROPERTY,
    HOLDER_KEY,
    IMPORTING_PROPERTY,
    MUST_SUCCEED_KEY,
    Location,
    LocationStatus,
)
from shared.domain.status import ImageStatus
from shared.domain.upload import UploadSession


class StoreCopies(EventRecorder):
    """The image aggregate's store copies (a mixin of ``Image``, which holds the fields used here)."""

    id: str
    status: ImageStatus
    locations: list[Location]
    upload: UploadSession | None

    @property
    def stores(self) -> list[str]:
        """Ids of the stores holding a complete copy, in location order."""
        return [loc.store for loc in self.locations if loc.status is LocationStatus.ACTIVE]

    def location(self, store: str) -> Location | None:
        """This image's location in ``store``, if any."""
        return next((loc for loc in self.locations if loc.store == store), None)

    def plan_copies(self, stores: Iterable[str], batch: str, *, must_succeed: bool) -> list[Location]:
        """Queue copies to ``stores`` (a store with a failed copy gets a new attempt); returns the new locations.

        Raises:
            ConflictError: the image is not active (Glance copies only active images).
            InvalidInputError: a store already holds the image or is copying it.
        """
        if self.status is not ImageStatus.ACTIVE:
            raise ConflictError(detail=f"Image {self.id} is {self.status.value}; only active images are copied.")
        planned = []
        for store in dict.fromkeys(stores):
            existing = self.location(store)
            if existing is not None and existing.status is not LocationStatus.FAILED:
                raise InvalidInputError(f"Image is already present at store '{store}'")
            if existing is not None:
                self.locations.remove(existing)
            location = Location(
                store,
                "",
                LocationStatus.PENDING,
                {BATCH_KEY: batch, MUST_SUCCEED_KEY: "true" if must_succeed else "false"},
            )
            self.locations.append(location)
            planned.append(location)
        self.record(ImageUpdated())
        return planned

    def land_copy(self, location: Location, url: str) -> None:
        """A copy in progress was written to its store at ``url``: it becomes an active location."""
        location.status = LocationStatus.ACTIVE
        location.url = url
        location.metadata.pop(ERROR_KEY, None)
        location.release()
        self.record(CopyUploaded(location.store))

    def copy_failed(self, store: str, reason: str) -> list[Location]:
        """The copy to ``store`` failed for good. If its request had to succeed everywhere, the request's other
        copies are rolled back: the ones in progress are marked failed, the finished ones are removed from the
        image and returned (their bytes must be deleted)."""
        failed = self.location(store)
        if failed is None or not failed.in_progress:
            return []
        failed.status = LocationStatus.FAILED
        failed.url = ""
        failed.metadata[ERROR_KEY] = reason[:255]
        failed.release()
        if failed.metadata.get(MUST_SUCCEED_KEY) != "true":
            return []
        undone = []
        for loc in list(self.locations):
            if loc is failed or loc.batch != failed.batch:
                continue
            if loc.status is LocationStatus.ACTIVE:
                self.locations.remove(loc)
                undone.append(loc)
            elif loc.in_progress:
                loc.status = LocationStatus.FAILED
                loc.metadata[ERROR_KEY] = f"rolled back: the copy to '{store}' failed"
                loc.release()
        return undone

    def copy_deadline(self) -> datetime | None:
        """The earliest deadline of a copy being written (None when no writer holds one)."""
        deadlines = [d for loc in self.locations if (d := loc.deadline) is not None]
        return min(deadlines) if deadlines else None

    def abandon_copies(self, now: datetime) -> tuple[list[str], list[Location]]:
        """Fail every copy whose writer let its deadline pass (with the reason on the location); the stores failed,
        and the finished copies their requests' roll-back removed (their bytes must be deleted)."""
        failed: list[str] = []
        undone: list[Location] = []
        for loc in list(self.locations):
            deadline = loc.deadline
            if deadline is None or now < deadline or not loc.in_progress:
                continue
            holder = loc.metadata.get(HOLDER_KEY, "writer")
            reason = (
                f"the copy was abandoned: its {holder} made no progress before {deadline.isoformat(timespec='seconds')}"
            )
            undone.extend(self.copy_failed(loc.store, reason))
            failed.append(loc.store)
        if failed:
            self.record(ImageUpdated())
        return failed, undone

    def remove_copy(self, store: str) -> Location:
        """Forget the copy in ``store`` (``DELETE /v2/stores/{store}/{image}``); returns it so its bytes can go.

        Raises:
            ConflictError: the image is not active.
            ForbiddenError: it is the image's only complete copy.
            NotFoundError: the image has no copy in ``store``.
        """
        if self.status is not ImageStatus.ACTIVE:
            raise ConflictError(
                detail="It's not allowed to remove image data from store if image status is not 'active'"
            )
        location = self.location(store)
        if location is None or location.status is not LocationStatus.ACTIVE:
            raise NotFoundError(kind="image location", id=f"{self.id} in store {store}")
        if len(self.stores) == 1:
            raise ForbiddenError(
                detail="Cannot delete image data from the only store containing it. Consider deleting the image "
                "instead."
            )
        self.locations.remove(location)
        return location

    def import_progress(self) -> dict[str, str]:
        """Glance's ``os_glance_importing_to_stores`` / ``os_glance_failed_import`` (empty when no copy was ever
        requested)."""
        targets = list(self.upload.targets) if self.upload is not None else []
        copies = [loc for loc in self.locations if loc.batch is not None]
        if not targets and not copies:
            return {}
        importing = targets + [loc.store for loc in copies if loc.in_progress]
        failed = [loc.store for loc in copies if loc.status is LocationStatus.FAILED]
        return {IMPORTING_PROPERTY: ",".join(dict.fromkeys(importing)), FAILED_IMPORT_PROPERTY: ",".join(failed)}
