"""Tasks: the status table, the task service (events, idempotence), and how imports and copies finish tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.data.memory import MemoryImageRepository, MemoryTaskRepository
from shared.domain.context import RequestContext
from shared.domain.image import Image, ImageData
from shared.domain.listing import TaskQuery
from shared.domain.location import Location, LocationStatus
from shared.domain.status import ImageStatus
from shared.domain.task import TASK_TRANSITIONS, InvalidTaskTransitionError, Task, TaskStatus
from shared.jobs import ImportJob
from shared.notifications import RecordingNotifier
from shared.notifications.events import Events
from shared.services.tasks import TaskService
from shared.services.unit_of_work import TaskUnitOfWork

TTL = timedelta(hours=48)
CTX = RequestContext("req-1", "proj", "user", frozenset({"member"}))


@pytest.mark.parametrize("start", list(TaskStatus))
@pytest.mark.parametrize("target", list(TaskStatus))
def test_every_status_pair__follows_the_transition_table(start: TaskStatus, target: TaskStatus) -> None:
    task = Task.new("import", "p", {}, None, None, None)
    task.status = start
    move = {
        TaskStatus.PROCESSING: task.begin_processing,
        TaskStatus.SUCCESS: lambda: task.succeed({}, TTL),
        TaskStatus.FAILURE: lambda: task.fail("x", TTL),
        TaskStatus.PENDING: lambda: task._move(TaskStatus.PENDING),
    }[target]
    if target in TASK_TRANSITIONS[start]:
        move()
        assert task.status is target
    else:
        with pytest.raises(InvalidTaskTransitionError):
            move()


def _service() -> tuple[TaskService, RecordingNotifier]:
    notifier = RecordingNotifier()
    return TaskService(TaskUnitOfWork(MemoryTaskRepository(TTL), Events(notifier), attempts=8), TTL), notifier


def test_service__sends_glance_task_events_and_ignores_redeliveries() -> None:
    service, notifier = _service()
    task = service.create(CTX, "api_image_import", {"image_id": "i"}, "i")

    service.processing(task.id, "req-1")
    service.succeed(task.id, {"image_id": "i"}, "req-1")
    service.processing(task.id, "req-1")  # a redelivered job
    service.fail(task.id, "late", "req-1")

    assert notifier.event_types == ["task.create", "task.run", "task.processing", "task.success"]
    done = service.get(task.id)
    assert (done.status, done.request_id, done.user_id, done.owner) == (TaskStatus.SUCCESS, "req-1", "user", "proj")
    assert done.expires_at == done.updated_at + TTL


def _active_image(images: MemoryImageRepository) -> Image:
    image = Image.new(owner="proj", disk_format="raw", container_format="bare")
    image.transition(ImageStatus.IMPORTING)
    image.activate(ImageData(3, "md5", "sha512", "hash", None), Location("s3", "s3://b/k", LocationStatus.ACTIVE))
    return images.add(image)


def test_import_outcomes__finish_the_task() -> None:
    service, _ = _service()
    images = MemoryImageRepository()
    image = _active_image(images)
    ok = service.create(CTX, "api_image_import", {}, image.id)
    gone = service.create(CTX, "api_image_import", {}, "missing")

    service.record_import_outcome(images, ImportJob("web-download", image.id, "s", task_id=ok.id), "active")
    service.record_import_outcome(images, ImportJob("web-download", "missing", "s", task_id=gone.id), "orphan")

    assert service.get(ok.id).result == {"image_id": image.id}
    assert "deleted" in service.get(gone.id).message


def test_copy_batch__task_waits_for_every_copy_then_names_failed_stores() -> None:
    service, _ = _service()
    images = MemoryImageRepository()
    image = _active_image(images)
    task = service.create(CTX, "api_image_import", {}, image.id)
    image.plan_copies(["swift", "ceph"], task.id, must_succeed=False)
    image = images.save(image)

    service.settle_copy_task(images, image.id, task.id, None)
    assert service.get(task.id).status is TaskStatus.PENDING  # copies still pending

    for loc in image.locations:
        if loc.store == "swift":
            loc.status = LocationStatus.ACTIVE
        elif loc.store == "ceph":
            loc.status = LocationStatus.FAILED
    images.save(image)
    service.settle_copy_task(images, image.id, task.id, None)

    done = service.get(task.id)
    assert done.status is TaskStatus.FAILURE and "ceph" in done.message


def test_memory_list__filters_by_status_within_budget() -> None:
    repo = MemoryTaskRepository(TTL)
    tasks = [repo.add(Task.new("import", "p", {}, None, None, None)) for _ in range(4)]
    failed = tasks[1]
    failed.fail("x", TTL)
    repo.save(failed)

    page = repo.list_page(TaskQuery("p", "failure", None, "created_at", False, 10, None, 100))

    assert [t.id for t in page.items] == [failed.id] and page.next_marker is None
