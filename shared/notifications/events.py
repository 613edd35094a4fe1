"""Glance's events: one method per event, and ``publish`` for the domain events an aggregate recorded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.domain import events as de
from shared.domain.image import Image
from shared.domain.member import Member
from shared.domain.task import Task
from shared.notifications import Notifier, Priority
from shared.notifications import payloads as p


@dataclass(frozen=True)
class Events:
    """Formats and sends Glance's events through a notifier; never raises."""

    notifier: Notifier

    def publish(self, aggregate: Image | Task, events: Iterable[de.DomainEvent], request_id: str | None) -> None:
        """Send the Glance event of each domain event ``aggregate`` recorded, in order (after its write)."""
        for event in events:
            if isinstance(aggregate, Task):
                assert isinstance(event, de.TaskChanged)
                self.task(event.event_type, aggregate, request_id)
            else:
                self._image_event(aggregate, event, request_id)

    def _image_event(self, image: Image, event: de.DomainEvent, request_id: str | None) -> None:
        match event:
            case de.ImageCreated():
                self.image_created(image, request_id)
            case de.ImageUpdated():
                self.image_updated(image, request_id)
            case de.ImageDeleted():
                self.image_deleted(image, request_id)
            case de.DataUploaded(store=store):
                self.image_uploaded(image, store, request_id)
            case de.CopyUploaded(store=store):
                self.copy_uploaded(image, store, request_id)
            case de.UploadFailed(reason=reason):
                self.upload_failed(image.id, reason, request_id)
            case de.MemberCreated(member=member):
                self.member_created(member, request_id)
            case de.MemberUpdated(member=member):
                self.member_updated(member, request_id)
            case de.MemberDeleted(member=member):
                self.member_deleted(member, request_id)
            case _:
                raise TypeError(f"no Glance event for {event!r}")

    def image_created(self, image: Image, request_id: str | None) -> None:
        """``image.create``."""
        self.notifier.send("image.create", p.image_payload(image), request_id)

    def image_updated(self, image: Image, request_id: str | None) -> None:
        """``image.update``: every save of a changed image, as Glance's repository proxy sends it."""
        self.notifier.send("image.update", p.image_payload(image), request_id)

    def image_deleted(self, image: Image, request_id: str | None) -> None:
        """``image.delete`` (``deleted`` and ``deleted_at`` set)."""
        self.notifier.send("image.delete", p.image_payload(image), request_id)

    def image_prepare(self, image: Image, backend: str | None, request_id: str | None) -> None:
        """``image.prepare``: data is about to be written."""
        self.notifier.send("image.prepare", p.upload_payload(image, backend), request_id)

    def image_uploaded(self, image: Image, backend: str | None, request_id: str | None) -> None:
        """``image.upload`` then ``image.activate``: the data was verified and the image is active."""
        self.notifier.send("image.upload", p.upload_payload(image, backend), request_id)
        self.notifier.send("image.activate", p.image_payload(image), request_id)

    def copy_uploaded(self, image: Image, backend: str, request_id: str | None) -> None:
        """``image.upload`` alone: a copy to another store finished (Glance's copy-image sets no status)."""
        self.notifier.send("image.upload", p.upload_payload(image, backend), request_id)

    def upload_failed(self, image_id: str, reason: str, request_id: str | None) -> None:
        """``image.upload`` at ERROR with a string payload, as Glance sends a failed upload."""
        self.notifier.send("image.upload", f"Cannot save data for image {image_id}: {reason}", request_id, "ERROR")

    def image_sent(
        self,
        image: Image,
        bytes_sent: int,
        expected: int,
        project_id: str | None,
        user_id: str | None,
        request_id: str | None,
    ) -> None:
        """``image.send``: ERROR when fewer (or more) bytes than expected went out."""
        priority: Priority = "INFO" if bytes_sent == expected else "ERROR"
        self.notifier.send("image.send", p.send_payload(image, bytes_sent, project_id, user_id), request_id, priority)

    def member_created(self, member: Member, request_id: str | None) -> None:
        """``image.member.create``."""
        self.notifier.send("image.member.create", p.member_payload(member), request_id)

    def member_updated(self, member: Member, request_id: str | None) -> None:
        """``image.member.update``."""
        self.notifier.send("image.member.update", p.member_payload(member), request_id)

    def member_deleted(self, member: Member, request_id: str | None) -> None:
        """``image.member.delete``."""
        self.notifier.send("image.member.delete", p.member_payload(member, deleted=True), request_id)

    def metadef(self, event_type: str, payload: dict[str, Any], request_id: str | None) -> None:
        """A ``metadef_*`` event (payloads: ``payloads.metadef_*_payload``)."""
        self.notifier.send(event_type, payload, request_id)

    def task(self, event_type: str, task: Task, request_id: str | None) -> None:
        """``task.create``, ``task.run``, ``task.processing``, ``task.success`` or ``task.failure``."""
        self.notifier.send(event_type, p.task_payload(task), request_id)
