"""Notifications: Glance's disabled_notifications rule, payload shapes, and publishing that never fails a request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.image import Image
from shared.domain.location import Location, LocationStatus
from shared.domain.member import Member
from shared.notifications import EVENT_TYPES, RecordingNotifier, is_enabled
from shared.notifications.eventbridge import EventBridgeNotifier
from shared.notifications.events import Events
from shared.notifications.payloads import image_payload, member_payload


@pytest.mark.parametrize(
    ("disabled", "event_type", "enabled"),
    [
        ((), "image.create", True),
        (("image.create",), "image.create", False),
        (("image.create",), "image.update", True),
        (("image",), "image.member.create", False),
        (("image.member",), "image.member.create", True),  # Glance's group is the text before the first dot
        (("task",), "task.success", False),
        (("task.success",), "task.failure", True),
    ],
)
def test_is_enabled__follows_glance_exact_type_or_group_prefix(
    disabled: tuple[str, ...], event_type: str, enabled: bool
) -> None:
    assert is_enabled(event_type, disabled) is enabled


def test_disabled_group__sends_nothing_of_that_group() -> None:
    notifier = RecordingNotifier(disabled=("image",))
    events = Events(notifier)
    image = Image.new(owner="p")

    events.image_created(image, "req-1")
    events.member_created(Member(image.id, "q"), "req-1")

    assert notifier.sent == []


def test_image_payload__has_glance_fields_and_never_locations() -> None:
    image = Image.new(owner="p", name="n", tags=["b", "a"], extra_properties={"k": "v"}, visibility="public")
    image.locations.append(Location("s3", "s3://bucket/secret-key", LocationStatus.ACTIVE))

    payload = image_payload(image)

    assert set(payload) == {
        "id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected", "checksum", "owner",
        "disk_format", "container_format", "size", "virtual_size", "is_public", "visibility", "properties", "tags",
        "deleted", "deleted_at",
    }  # fmt: skip
    assert payload["is_public"] is True and payload["tags"] == ["a", "b"] and payload["properties"] == {"k": "v"}
    assert "secret-key" not in json.dumps(payload)


def test_member_payload__marks_deletion() -> None:
    payload = member_payload(Member("img", "proj"), deleted=True)
    assert payload["deleted"] is True and payload["deleted_at"] is not None


class _RaisingClient:
    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        raise ConnectionError("bus unreachable")


class _RefusingClient:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}]}


def test_eventbridge_publish_failure__is_counted_and_never_raised(capsys: pytest.CaptureFixture[str]) -> None:
    notifier = EventBridgeNotifier(client=_RaisingClient)

    Events(notifier).image_created(Image.new(owner="p"), "req-1")

    assert notifier.failures == 1
    metric = json.loads(
        next(line for line in capsys.readouterr().out.splitlines() if "NotificationPublishFailed" in line)
    )
    assert metric["NotificationPublishFailed"] == [1.0] and metric["event_type"] == "image.create"


def test_eventbridge_refused_entry__is_a_failure_too() -> None:
    client = _RefusingClient()
    notifier = EventBridgeNotifier(client=lambda: client, bus_name="bus", source="src")

    notifier.send("image.update", {"id": "x"}, "req-2")

    assert notifier.failures == 1
    entry = client.calls[0]["Entries"][0]
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == ("bus", "src", "image.update")
    detail = json.loads(entry["Detail"])
    assert detail["payload"] == {"id": "x"} and detail["request_id"] == "req-2"
    assert detail["publisher_id"] == "image.localhost" and detail["timestamp"]


def test_event_types__cover_glance_image_member_task_and_metadef_groups() -> None:
    groups = {t.split(".", 1)[0] for t in EVENT_TYPES}
    assert groups == {"image", "task", "metadef_namespace", "metadef_object", "metadef_property",
                      "metadef_resource_type", "metadef_tag"}  # fmt: skip
    assert "image.send" in EVENT_TYPES and "task.failure" in EVENT_TYPES
