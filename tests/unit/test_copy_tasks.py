"""store_sync and tasks/notifications: a copy-image request's task settles with its last copy; each copy sends
image.prepare and image.upload naming its store (file stores, in-memory repositories)."""

from __future__ import annotations

from pathlib import Path

from shared.domain.context import RequestContext
from shared.domain.task import TaskStatus
from shared.notifications import RecordingNotifier
from shared.services.tasks import TaskService
from tests.unit.test_replication import World


def _world(tmp_path: Path) -> tuple[World, TaskService, RecordingNotifier]:
    world = World(tmp_path)
    return world, world.container.tasks, world.notifier


def test_copy_image_task__succeeds_when_the_last_copy_lands(tmp_path: Path) -> None:
    world, tasks, notifier = _world(tmp_path)
    task = tasks.create(RequestContext("req-c", "proj", "u"), "api_image_import", {}, world.image_id)
    first, second = world.request("f1", "f2", batch=task.id)
    tasks.processing(task.id, "req-c")  # as the copy-image call does once the copies are planned

    world.sync.run(first)
    assert tasks.get(task.id).status is TaskStatus.PROCESSING
    world.sync.run(second)

    done = tasks.get(task.id)
    assert done.status is TaskStatus.SUCCESS and done.result == {"image_id": world.image_id, "stores": ["f1", "f2"]}
    uploads = [n.payload for n in notifier.sent if n.event_type == "image.upload"]
    assert [p["backend"] for p in uploads if isinstance(p, dict)] == ["f1", "f2"]
    assert "image.activate" not in notifier.event_types


def test_policy_batches__have_no_task_and_change_nothing(tmp_path: Path) -> None:
    world, tasks, _ = _world(tmp_path)
    (job,) = world.request("f1", batch="not-a-task")
    world.sync.run(job)
    assert world.image().stores == ["p", "f1"]
