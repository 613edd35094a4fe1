"""The image aggregate: status table, store locations and the rules Glance's domain enforces."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from shared.domain.errors import (
    ConflictError,
    ForbiddenError,
    ImmutablePropertyError,
    InvalidInputError,
    InvalidStatusTransitionError,
    LimitExceededError,
    NotFoundError,
    ProtectedImageDeleteError,
    ReadOnlyPropertyError,
    ReservedPropertyError,
)
from shared.domain.member import Member
from shared.domain.upload import UPLOAD_ERROR_PROPERTY, UploadSession


class ImageStatus(StrEnum):
    """Glance's image statuses (``killed`` is kept for schema parity; nothing sets it)."""

    QUEUED = "queued"
    SAVING = "saving"
    UPLOADING = "uploading"
    IMPORTING = "importing"
    ACTIVE = "active"
    DEACTIVATED = "deactivated"
    PENDING_DELETE = "pending_delete"
    DELETED = "deleted"
    KILLED = "killed"


S = ImageStatus

# From glance/domain Image.valid_state_targets: the only source of truth for status changes.
VALID_TRANSITIONS: Mapping[ImageStatus, frozenset[ImageStatus]] = {
    S.QUEUED: frozenset({S.SAVING, S.UPLOADING, S.IMPORTING, S.ACTIVE, S.DELETED}),
    S.SAVING: frozenset({S.ACTIVE, S.KILLED, S.DELETED, S.QUEUED}),
    S.UPLOADING: frozenset({S.IMPORTING, S.QUEUED, S.DELETED}),
    S.IMPORTING: frozenset({S.ACTIVE, S.DELETED, S.QUEUED}),
    S.ACTIVE: frozenset({S.PENDING_DELETE, S.DELETED, S.DEACTIVATED}),
    S.KILLED: frozenset({S.DELETED}),
    S.PENDING_DELETE: frozenset({S.DELETED, S.ACTIVE}),
    S.DELETED: frozenset(),
    S.DEACTIVATED: frozenset({S.ACTIVE, S.DELETED}),
}

# Leaving these for a data-bearing status needs both formats set (Glance raises ValueError -> 400).
_NEEDS_FORMATS_FROM = frozenset({S.QUEUED, S.UPLOADING})
_NEEDS_FORMATS_TO = frozenset({S.SAVING, S.ACTIVE, S.IMPORTING})
_FORMATS_MUTABLE_IN = frozenset({S.QUEUED, S.IMPORTING})


class Visibility(StrEnum):
    """Who may see an image."""

    PUBLIC = "public"
    COMMUNITY = "community"
    SHARED = "shared"
    PRIVATE = "private"


class LocationStatus(StrEnum):
    """Per-store replica status (Glance's image_locations.status plus replication states)."""

    PENDING = "pending"
    UPLOADING = "uploading"
    ACTIVE = "active"
    FAILED = "failed"
    DELETED = "deleted"


@dataclass
class Location:
    """One copy of the image's bytes in one store.

    A copy being made (``pending``/``uploading``) or that failed has no url yet; its metadata names the copy
    request (``batch``), whether the request must succeed everywhere (``must_succeed``) and the last error.
    """

    store: str
    url: str
    status: LocationStatus = LocationStatus.ACTIVE
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def batch(self) -> str | None:
        """The copy request this location belongs to, if it was made by one."""
        return self.metadata.get(BATCH_KEY)

    @property
    def in_progress(self) -> bool:
        """A copy queued or being written."""
        return self.status in (LocationStatus.PENDING, LocationStatus.UPLOADING)


# Location metadata keys of copies made by store_sync.
BATCH_KEY = "batch"
MUST_SUCCEED_KEY = "must_succeed"
ERROR_KEY = "error"
# Glance's import progress properties, shown while and after copies to stores run.
IMPORTING_PROPERTY = "os_glance_importing_to_stores"
FAILED_IMPORT_PROPERTY = "os_glance_failed_import"


# Field names clients may not set (Glance's RequestDeserializer + ImageFactory lists).
READ_ONLY_PROPERTIES = frozenset(
    {
        "created_at",
        "updated_at",
        "status",
        "checksum",
        "size",
        "virtual_size",
        "direct_url",
        "self",
        "file",
        "schema",
        "id",
        "os_hash_algo",
        "os_hash_value",
    }
)
RESERVED_PROPERTIES = frozenset({"location", "deleted", "deleted_at"})
RESERVED_NAMESPACE = "os_glance"
# Properties the response never shows even if set internally.
HIDDEN_PROPERTIES = frozenset({"os_glance_stage_host", "os_glance_hash_op_host"})
BASE_PROPERTIES = frozenset(
    {
        "checksum",
        "created_at",
        "container_format",
        "disk_format",
        "id",
        "min_disk",
        "min_ram",
        "name",
        "size",
        "virtual_size",
        "status",
        "tags",
        "owner",
        "updated_at",
        "visibility",
        "protected",
        "os_hidden",
        "os_hash_algo",
        "os_hash_value",
        "locations",
        "direct_url",
        "self",
        "file",
        "schema",
        "stores",
    }
)
# The base properties a client may write through create or PATCH.
WRITABLE_BASE_PROPERTIES = frozenset(
    {"name", "visibility", "protected", "os_hidden", "owner", "container_format", "disk_format", "min_ram", "min_disk"}
)


def utcnow() -> datetime:
    """The current time, timezone-aware, truncated to microseconds as stored."""
    return datetime.now(UTC)


def check_extra_property_name(name: str) -> None:
    """Reject reserved names and over-long keys, as Glance does on create and PATCH.

    Raises:
        ReadOnlyPropertyError: the name is a read-only base property.
        ReservedPropertyError: the name is reserved or in the ``os_glance`` namespace.
        InvalidInputError: the name is longer than 255 characters.
    """
    if name in READ_ONLY_PROPERTIES:
        raise ReadOnlyPropertyError(name=name)
    if name in RESERVED_PROPERTIES or name.startswith(RESERVED_NAMESPACE):
        raise ReservedPropertyError(name=name)
    if len(name) > 255:
        raise InvalidInputError(detail="Custom property should not be greater than 255 characters.")


@dataclass(frozen=True)
class ImageData:
    """What finalisation computed from an image's bytes."""

    size: int
    checksum: str
    os_hash_algo: str
    os_hash_value: str
    virtual_size: int | None


@dataclass
class ImageLimits:
    """Per-image limits (Glance's image_property_quota / image_tag_quota)."""

    max_properties: int = 128
    max_tags: int = 128


@dataclass
class Image:
    """A Glance image record; status changes only through the methods below."""

    id: str
    owner: str | None
    status: ImageStatus = ImageStatus.QUEUED
    name: str | None = None
    visibility: Visibility = Visibility.SHARED
    protected: bool = False
    os_hidden: bool = False
    disk_format: str | None = None
    container_format: str | None = None
    min_ram: int = 0
    min_disk: int = 0
    size: int | None = None
    virtual_size: int | None = None
    checksum: str | None = None
    os_hash_algo: str | None = None
    os_hash_value: str | None = None
    tags: set[str] = field(default_factory=set)
    extra_properties: dict[str, str] = field(default_factory=dict)
    locations: list[Location] = field(default_factory=list)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    deleted_at: datetime | None = None
    # The open upload, while status is uploading (client sending bytes) or importing (being finalised).
    upload: UploadSession | None = None
    # Projects the image is shared with (meaningful while visibility is shared), by project id.
    members: dict[str, Member] = field(default_factory=dict)
    # Members removed since the image was read (the repository drops their list entries); not stored.
    removed_members: set[str] = field(default_factory=set)
    # Optimistic-locking version as read from the repository (0 = never saved).
    version: int = 0

    @classmethod
    def new(
        cls,
        *,
        owner: str | None,
        image_id: str | None = None,
        tags: Iterable[str] = (),
        extra_properties: Mapping[str, str] | None = None,
        limits: ImageLimits | None = None,
        **attributes: object,
    ) -> Image:
        """Create a queued image, checking names and limits like Glance's ImageFactory.

        Raises:
            ReadOnlyPropertyError, ReservedPropertyError: a forbidden property was supplied.
            LimitExceededError: too many properties or tags.
        """
        for key in attributes:
            if key not in WRITABLE_BASE_PROPERTIES:
                raise ReadOnlyPropertyError(name=key)
        extras = dict(extra_properties or {})
        for key in extras:
            check_extra_property_name(key)
        now = utcnow()
        image = cls(
            id=image_id or str(uuid.uuid4()),
            owner=owner,
            created_at=now,
            updated_at=now,
            tags=set(tags),
            extra_properties=extras,
        )
        for key, value in attributes.items():
            setattr(image, key, value)
        image.check_limits(limits or ImageLimits())
        image.check_invariants()
        return image

    # -- status ---------------------------------------------------------------------------------

    def transition(self, target: ImageStatus) -> None:
        """Move to ``target`` if the transition table allows it.

        Raises:
            InvalidStatusTransitionError: the table has no (current, target) pair.
            InvalidInputError: data-bearing status asked for without disk and container formats.
        """
        if target not in VALID_TRANSITIONS[self.status]:
            raise InvalidStatusTransitionError(current=self.status.value, target=target.value)
        if self.status in _NEEDS_FORMATS_FROM and target in _NEEDS_FORMATS_TO:
            missing = [k for k in ("disk_format", "container_format") if not getattr(self, k)]
            if missing:
                raise InvalidInputError(f"Properties {', '.join(missing)} must be set prior to saving data.")
        if target is ImageStatus.QUEUED:
            self.size = None
            self.virtual_size = None
        self.status = target

    def deactivate(self) -> None:
        """Block downloads of an active image; no-op when already deactivated."""
        if self.status is ImageStatus.DEACTIVATED:
            return
        if self.status is not ImageStatus.ACTIVE:
            raise ForbiddenError(detail=f"Not allowed to deactivate image in status '{self.status.value}'")
        self.transition(ImageStatus.DEACTIVATED)

    def reactivate(self) -> None:
        """Make a deactivated image active again; no-op when already active."""
        if self.status is ImageStatus.ACTIVE:
            return
        if self.status is not ImageStatus.DEACTIVATED:
            raise ForbiddenError(detail=f"Not allowed to reactivate image in status '{self.status.value}'")
        self.transition(ImageStatus.ACTIVE)

    def delete(self) -> None:
        """Mark the image deleted (its record stays as a tombstone so the id is never reused)."""
        if self.protected:
            raise ProtectedImageDeleteError(image_id=self.id)
        self.transition(ImageStatus.DELETED)
        self.deleted_at = utcnow()

    # -- uploads --------------------------------------------------------------------------------

    def open_upload(
        self, session: UploadSession, now: datetime, *, require_formats: bool = True
    ) -> UploadSession | None:
        """Start receiving bytes: queued -> uploading. Returns an expired session this one replaces, if any.

        Raises:
            ConflictError: the image is not queued (or its open upload has not expired).
            InvalidInputError: disk_format or container_format is not set (staging does not require them).
        """
        replaced = None
        if self.status is ImageStatus.UPLOADING and self.upload is not None and self.upload.expired(now):
            replaced = self.upload
            self.transition(ImageStatus.QUEUED)
        if self.status is not ImageStatus.QUEUED:
            raise ConflictError(
                detail=f"Image {self.id} is {self.status.value}; data can be uploaded only when queued."
            )
        missing = [k for k in ("disk_format", "container_format") if not getattr(self, k)]
        if missing and require_formats:
            raise InvalidInputError(f"Properties {', '.join(missing)} must be set prior to uploading data.")
        self.transition(ImageStatus.UPLOADING)
        self.upload = session
        self.extra_properties.pop(UPLOAD_ERROR_PROPERTY, None)
        return replaced

    def start_import(self, method: str, session: UploadSession | None = None) -> None:
        """Interoperable import: glance-direct takes the staged bytes (uploading -> importing); web-download
        starts from queued with a new session. A second concurrent import finds ``importing``: 409.

        Raises:
            ConflictError: wrong status for the method, or formats not set (Glance answers 409 for both).
        """
        if method == "glance-direct":
            if self.status is not ImageStatus.UPLOADING or self.upload is None or self.upload.method.value != "stage":
                raise ConflictError(detail="Image needs to be staged before 'glance-direct' method can be used")
        elif self.status is not ImageStatus.QUEUED:
            raise ConflictError(detail=f"Image needs to be in 'queued' state to use '{method}' method")
        for name in ("container_format", "disk_format"):
            if not getattr(self, name):
                raise ConflictError(detail=f"'{name}' needs to be set before import")
        if session is not None:
            self.upload = session
            self.extra_properties.pop(UPLOAD_ERROR_PROPERTY, None)
        self.transition(ImageStatus.IMPORTING)

    def begin_finalize(self) -> None:
        """The bytes are complete: uploading -> importing while they are verified (idempotent)."""
        if self.status is ImageStatus.UPLOADING:
            self.transition(ImageStatus.IMPORTING)
        elif self.status is not ImageStatus.IMPORTING:
            raise ConflictError(detail=f"Image {self.id} is {self.status.value}, not being uploaded.")

    def activate(self, data: ImageData, location: Location) -> None:
        """Verified bytes: record what was computed and where they are, then importing -> active."""
        self.begin_finalize()
        self.size = data.size
        self.virtual_size = data.virtual_size
        self.checksum = data.checksum
        self.os_hash_algo = data.os_hash_algo
        self.os_hash_value = data.os_hash_value
        self.locations = [location]
        self.upload = None
        self.transition(ImageStatus.ACTIVE)

    def fail_upload(self, reason: str) -> None:
        """Refused or failed bytes: back to queued as Glance does, with the reason visible on the image."""
        self.upload = None
        self.transition(ImageStatus.QUEUED)
        self.extra_properties[UPLOAD_ERROR_PROPERTY] = reason[:255]

    def abort_upload(self) -> None:
        """The client gave up: uploading -> queued."""
        if self.status is not ImageStatus.UPLOADING:
            raise ConflictError(detail=f"Image {self.id} has no upload to abort ({self.status.value}).")
        self.upload = None
        self.transition(ImageStatus.QUEUED)

    # -- attributes -----------------------------------------------------------------------------

    def set_attribute(self, name: str, value: object) -> None:
        """Set a writable base attribute, enforcing Glance's per-status mutability."""
        if name not in WRITABLE_BASE_PROPERTIES:
            raise ReadOnlyPropertyError(name=name)
        if name in ("disk_format", "container_format") and self.status not in _FORMATS_MUTABLE_IN:
            raise ImmutablePropertyError(name=name)
        setattr(self, name, value)
        self.check_invariants()

    def check_invariants(self) -> None:
        """Values the schema allows but the domain refuses (Glance: negative min_ram/min_disk)."""
        for name in ("min_ram", "min_disk"):
            if getattr(self, name) < 0:
                raise InvalidInputError(
                    detail=f"Invalid value '{getattr(self, name)}' for parameter '{name}': Cannot be a negative value"
                )
        if not isinstance(self.visibility, Visibility):
            self.visibility = Visibility(self.visibility)

    def check_limits(self, limits: ImageLimits) -> None:
        """Raise when the image carries more properties or tags than allowed."""
        if len(self.extra_properties) > limits.max_properties:
            raise LimitExceededError(what="image properties", limit=limits.max_properties)
        if len(self.tags) > limits.max_tags:
            raise LimitExceededError(what="image tags", limit=limits.max_tags)

    def touch(self) -> None:
        """Record a change."""
        self.updated_at = utcnow()

    # -- views ----------------------------------------------------------------------------------

    @property
    def stores(self) -> list[str]:
        """Ids of the stores holding a complete copy, in location order."""
        return [loc.store for loc in self.locations if loc.status is LocationStatus.ACTIVE]

    # -- store copies ---------------------------------------------------------------------------

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
        return planned

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
        return undone

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

    # -- members --------------------------------------------------------------------------------

    def add_member(self, project_id: str, limit: int) -> Member:
        """Share with a project (pending until it accepts).

        Raises:
            ForbiddenError: the image is not ``shared`` (only shared images have members).
            ConflictError: the project is already a member.
            LimitExceededError: the image has ``limit`` members.
        """
        if self.visibility is not Visibility.SHARED:
            raise ForbiddenError(detail="Only shared images have members.")
        if project_id in self.members:
            raise ConflictError(detail=f"Member {project_id} already exists for image {self.id}.")
        if len(self.members) >= limit:
            raise LimitExceededError(what="image members", limit=limit)
        member = Member(self.id, project_id)
        self.members[project_id] = member
        self.removed_members.discard(project_id)
        return member

    def remove_member(self, project_id: str) -> None:
        """Stop sharing with a project (404 when it is not a member)."""
        if self.members.pop(project_id, None) is None:
            raise NotFoundError(kind="member", id=project_id)
        self.removed_members.add(project_id)

    def is_deleted(self) -> bool:
        """True for tombstones."""
        return self.status is ImageStatus.DELETED
