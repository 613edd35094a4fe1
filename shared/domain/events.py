"""Domain events: what happened to an aggregate, recorded by its methods and published after the change commits.

An aggregate (``Image``, ``Task``) collects the events its methods record; the unit of work
(``shared/services/unit_of_work.py``) takes them when it writes the aggregate and hands them to the notifier
once the write has committed, so no notification ever announces a change that was not stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.member import Member


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened to an aggregate."""


@dataclass(frozen=True)
class ImageCreated(DomainEvent):
    """A new image was registered (``image.create``)."""


@dataclass(frozen=True)
class ImageUpdated(DomainEvent):
    """The image changed (``image.update``; one per write, however many changes it carries)."""


@dataclass(frozen=True)
class ImageDeleted(DomainEvent):
    """The image was deleted (``image.delete``)."""


@dataclass(frozen=True)
class DataUploaded(DomainEvent):
    """Verified bytes made the image active in ``store`` (``image.upload`` then ``image.activate``)."""

    store: str


@dataclass(frozen=True)
class CopyUploaded(DomainEvent):
    """A copy of the image's bytes landed in another store (``image.upload`` alone)."""

    store: str


@dataclass(frozen=True)
class UploadFailed(DomainEvent):
    """Uploaded bytes were refused, with the reason (``image.upload`` at ERROR)."""

    reason: str


@dataclass(frozen=True)
class MemberCreated(DomainEvent):
    """The image was shared with a project (``image.member.create``)."""

    member: Member


@dataclass(frozen=True)
class MemberUpdated(DomainEvent):
    """A member project changed its status (``image.member.update``)."""

    member: Member


@dataclass(frozen=True)
class MemberDeleted(DomainEvent):
    """The image is no longer shared with a project (``image.member.delete``)."""

    member: Member


@dataclass(frozen=True)
class TaskChanged(DomainEvent):
    """A task was created or moved (``task.create``, ``task.run``, ``task.processing``, ``task.success``,
    ``task.failure``)."""

    event_type: str


class EventRecorder:
    """Mixin of the aggregates: ``events`` holds what was recorded since the aggregate was read."""

    events: list[DomainEvent]

    def record(self, event: DomainEvent) -> None:
        """Remember ``event`` for publication after the next write (an equal event is kept once)."""
        if event not in self.events:
            self.events.append(event)

    def take_events(self) -> list[DomainEvent]:
        """The recorded events, in order; the aggregate forgets them."""
        taken, self.events[:] = list(self.events), []
        return taken
