"""The image aggregate: the rules Glance's domain enforces on an image, its uploads, store copies and members."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from shared.domain.copies import StoreCopies
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
)
from shared.domain.events import (
    DataUploaded,
    DomainEvent,
    ImageCreated,
    ImageDeleted,
    ImageUpdated,
    UploadFailed,
)
from shared.domain.image_members import ImageMembers
from shared.domain.limits import check_db_int, check_metadata_size
from shared.domain.location import FAILED_IMPORT_PROPERTY, Location
from shared.domain.member import Member
from shared.domain.properties import WRITABLE_BASE_PROPERTIES, check_extra_property_name
from shared.domain.status import (
    FORMATS_MUTABLE_IN,
    IN_FLIGHT,
    NEEDS_FORMATS_FROM,
    NEEDS_FORMATS_TO,
    VALID_TRANSITIONS,
    ImageStatus,
)
from shared.domain.upload import UPLOAD_ERROR_PROPERTY, Lease, UploadSession


class Visibility(StrEnum):
    """Who may see an image."""

    PUBLIC = "public"
    COMMUNITY = "community"
    SHARED = "shared"
    PRIVATE = "private"


def utcnow() -> datetime:
    """The current time, timezone-aware, truncated to microseconds as stored."""
    return datetime.now(UTC)


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
class Image(StoreCopies, ImageMembers):
    """A Glance image record; status changes only through the methods below, which record their events."""

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
    # What the image counted toward its owner's quota usage when it was read: (owner, usage); None for a new
    # image. The repository turns the difference to the image's usage now into counter updates (shared/quota).
    counted: tuple[str | None, dict[str, int]] | None = field(default=None, compare=False, repr=False)
    # Events recorded since the image was read, published by the unit of work after the next write; not stored.
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

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
        image.record(ImageCreated())
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
        if self.status in NEEDS_FORMATS_FROM and target in NEEDS_FORMATS_TO:
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
        self.record(ImageUpdated())

    def reactivate(self) -> None:
        """Make a deactivated image active again; no-op when already active."""
        if self.status is ImageStatus.ACTIVE:
            return
        if self.status is not ImageStatus.DEACTIVATED:
            raise ForbiddenError(detail=f"Not allowed to reactivate image in status '{self.status.value}'")
        self.transition(ImageStatus.ACTIVE)
        self.record(ImageUpdated())

    def delete(self) -> None:
        """Mark the image deleted (its record stays as a tombstone so the id is never reused)."""
        if self.protected:
            raise ProtectedImageDeleteError(image_id=self.id)
        self.transition(ImageStatus.DELETED)
        self.deleted_at = utcnow()
        self.record(ImageDeleted())

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
        self.extra_properties.pop(FAILED_IMPORT_PROPERTY, None)
        self.record(ImageUpdated())
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
        self.extra_properties.pop(FAILED_IMPORT_PROPERTY, None)
        self.transition(ImageStatus.IMPORTING)
        self.record(ImageUpdated())

    def begin_finalize(self) -> None:
        """The bytes are complete: uploading -> importing while they are verified (idempotent)."""
        if self._finalizing():
            self.record(ImageUpdated())

    def _finalizing(self) -> bool:
        """uploading -> importing; whether the status changed."""
        if self.status is ImageStatus.UPLOADING:
            self.transition(ImageStatus.IMPORTING)
            return True
        if self.status is not ImageStatus.IMPORTING:
            raise ConflictError(detail=f"Image {self.id} is {self.status.value}, not being uploaded.")
        return False

    def activate(self, data: ImageData, location: Location) -> None:
        """Verified bytes: record what was computed and where they are, then importing -> active."""
        self._finalizing()
        self.size = data.size
        self.virtual_size = data.virtual_size
        self.checksum = data.checksum
        self.os_hash_algo = data.os_hash_algo
        self.os_hash_value = data.os_hash_value
        self.locations = [location]
        self.upload = None
        self.transition(ImageStatus.ACTIVE)
        self.record(DataUploaded(location.store))
        self.record(ImageUpdated())

    def fail_upload(self, reason: str) -> None:
        """Refused or failed bytes: back to queued as Glance does, with the reason visible on the image."""
        self.upload = None
        self.transition(ImageStatus.QUEUED)
        self.extra_properties[UPLOAD_ERROR_PROPERTY] = reason[:255]
        self.record(UploadFailed(reason))
        self.record(ImageUpdated())

    def refuse_import(self, stores: Iterable[str]) -> None:
        """An import refused before it began (a web-download URL the policy refuses): the image keeps its status
        and, as after any failed import, names the ``stores`` in ``os_glance_failed_import`` (the next import
        clears it)."""
        self.extra_properties[FAILED_IMPORT_PROPERTY] = ",".join(dict.fromkeys(stores))
        self.record(ImageUpdated())

    def abort_upload(self) -> None:
        """The owner gives up, whoever moves the bytes (client, API, worker, job): uploading or importing -> queued.

        Raises:
            ConflictError: the image has no upload in flight.
        """
        if self.status not in (ImageStatus.UPLOADING, ImageStatus.IMPORTING) or self.upload is None:
            raise ConflictError(detail=f"Image {self.id} has no upload to abort ({self.status.value}).")
        self.upload = None
        self.transition(ImageStatus.QUEUED)
        self.record(ImageUpdated())

    # -- owners and deadlines of the in-flight statuses -------------------------------------------

    def deadline(self) -> datetime | None:
        """When an in-flight image (saving, uploading, importing) is abandoned unless its owner acts, or, for an active
        image, when the first copy being written to another store is; None when nothing is in flight. An in-flight
        image without a session has no owner: its deadline is its last change."""
        if self.status in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED):
            return self.copy_deadline()
        if self.status not in IN_FLIGHT:
            return None
        if self.upload is None:
            return self.updated_at
        return self.upload.deadline

    def hold(self, holder: str, until: datetime) -> None:
        """Lease the open session to ``holder`` (the API, a worker, a job) until ``until``; renewed on progress.

        Raises:
            ConflictError: the image has no upload in flight.
        """
        if self.status not in IN_FLIGHT or self.upload is None:
            raise ConflictError(detail=f"Image {self.id} has no upload in flight ({self.status.value}).")
        self.upload.lease = Lease(holder, until)

    def release(self) -> None:
        """The holder is done with the bytes and the client holds the session again (staged bytes wait for the
        import call until the session expires)."""
        if self.upload is not None:
            self.upload.lease = None

    def abandon(self, reason: str, now: datetime, stores: Iterable[str] = ()) -> bool:
        """The deadline passed with no word from the owner: back to queued with ``reason`` (and, for an import,
        the ``stores`` it was importing to in ``os_glance_failed_import``); whether the image was abandoned."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return False
        importing = self.status is ImageStatus.IMPORTING
        targets = list(self.upload.targets) if self.upload is not None else []
        self.fail_upload(reason)
        failed = list(dict.fromkeys([*stores, *targets]))
        if importing and failed:
            self.extra_properties[FAILED_IMPORT_PROPERTY] = ",".join(failed)
        return True

    # -- attributes -----------------------------------------------------------------------------

    def set_attribute(self, name: str, value: object) -> None:
        """Set a writable base attribute, enforcing Glance's per-status mutability."""
        if name not in WRITABLE_BASE_PROPERTIES:
            raise ReadOnlyPropertyError(name=name)
        if name in ("disk_format", "container_format") and self.status not in FORMATS_MUTABLE_IN:
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
            check_db_int(name, getattr(self, name))
        if not isinstance(self.visibility, Visibility):
            self.visibility = Visibility(self.visibility)

    def record_edit(self, limits: ImageLimits) -> None:
        """A PATCH's changes are applied: check the per-image limits, then record the update."""
        self.check_limits(limits)
        self.record(ImageUpdated())

    def add_tag(self, tag: str, limits: ImageLimits) -> None:
        """Tag the image (nothing happens for a tag it has).

        Raises:
            LimitExceededError: the image would carry more than ``limits.max_tags`` tags.
        """
        if tag in self.tags:
            return
        self.tags.add(tag)
        if len(self.tags) > limits.max_tags:
            raise LimitExceededError(what="image tags", limit=limits.max_tags)
        check_metadata_size((self.name, self.owner), self.extra_properties, self.tags)
        self.record(ImageUpdated())

    def remove_tag(self, tag: str) -> None:
        """Untag the image (404 for a tag it does not have)."""
        if tag not in self.tags:
            raise NotFoundError(kind="tag", id=tag)
        self.tags.discard(tag)
        self.record(ImageUpdated())

    def check_limits(self, limits: ImageLimits) -> None:
        """Raise when the image carries more properties or tags than allowed."""
        if len(self.extra_properties) > limits.max_properties:
            raise LimitExceededError(what="image properties", limit=limits.max_properties)
        if len(self.tags) > limits.max_tags:
            raise LimitExceededError(what="image tags", limit=limits.max_tags)
        check_metadata_size((self.name, self.owner), self.extra_properties, self.tags)

    def touch(self) -> None:
        """Record a change."""
        self.updated_at = utcnow()

    def is_deleted(self) -> bool:
        """True for tombstones."""
        return self.status is ImageStatus.DELETED
