"""The Notifier box of Glance's domain controller: Glance's notifications, published to EventBridge.

``Notifier.send`` never raises: a failed publish is logged and counted, and the user's request goes on
(docs/notifications.md). Payload formats live in ``payloads.py``; the EventBridge publisher in ``eventbridge.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Priority = Literal["INFO", "WARN", "ERROR"]

# Every event type this service emits, by group (Glance's notifier.py).
EVENT_TYPES: tuple[str, ...] = (
    "image.create",
    "image.update",
    "image.delete",
    "image.prepare",
    "image.upload",
    "image.activate",
    "image.send",
    "image.member.create",
    "image.member.update",
    "image.member.delete",
    "task.create",
    "task.run",
    "task.processing",
    "task.success",
    "task.failure",
    "metadef_namespace.create",
    "metadef_namespace.update",
    "metadef_namespace.delete",
    "metadef_namespace.delete_objects",
    "metadef_namespace.delete_properties",
    "metadef_namespace.delete_tags",
    "metadef_object.create",
    "metadef_object.update",
    "metadef_object.delete",
    "metadef_property.create",
    "metadef_property.update",
    "metadef_property.delete",
    "metadef_resource_type.create",
    "metadef_resource_type.delete",
    "metadef_tag.create",
    "metadef_tag.update",
    "metadef_tag.delete",
)


@dataclass(frozen=True)
class Notification:
    """One event as published: Glance's oslo.messaging envelope plus the request id."""

    event_type: str
    payload: dict[str, Any] | str
    priority: Priority
    publisher_id: str
    request_id: str | None
    timestamp: str
    message_id: str

    def detail(self) -> dict[str, Any]:
        """The EventBridge ``detail`` object."""
        return {
            "event_type": self.event_type,
            "priority": self.priority,
            "publisher_id": self.publisher_id,
            "request_id": self.request_id,
            "timestamp": self.timestamp,
            "message_id": self.message_id,
            "payload": self.payload,
        }


def is_enabled(event_type: str, disabled: Iterable[str]) -> bool:
    """Glance's rule: an entry of ``disabled`` names an exact type or the group before the first dot."""
    group = event_type.split(".", 1)[0]
    return not any(entry in (event_type, group) for entry in disabled)


@dataclass
class Notifier(ABC):
    """Sends Glance notifications; ``send`` never raises."""

    publisher_id: str = "image.localhost"
    disabled: tuple[str, ...] = ()

    def send(
        self, event_type: str, payload: dict[str, Any] | str, request_id: str | None, priority: Priority = "INFO"
    ) -> None:
        """Publish one event unless its type is disabled (Glance's disabled_notifications)."""
        if not is_enabled(event_type, self.disabled):
            return
        import uuid

        notification = Notification(
            event_type=event_type,
            payload=payload,
            priority=priority,
            publisher_id=self.publisher_id,
            request_id=request_id,
            timestamp=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
            message_id=str(uuid.uuid4()),
        )
        self._publish(notification)

    @abstractmethod
    def _publish(self, notification: Notification) -> None:
        """Deliver one notification; must not raise."""


@dataclass
class NullNotifier(Notifier):
    """Publishes nothing (Glance's noop driver)."""

    def _publish(self, notification: Notification) -> None:
        return None


@dataclass
class RecordingNotifier(Notifier):
    """Keeps what was sent, for unit tests."""

    sent: list[Notification] = field(default_factory=list)

    def _publish(self, notification: Notification) -> None:
        self.sent.append(notification)

    @property
    def event_types(self) -> list[str]:
        """The types sent so far, in order."""
        return [n.event_type for n in self.sent]
