"""Store copies: the image's copy rules, and store_sync jobs run against real file stores and the memory repository.

The queue is a list (these are unit tests); the integration suite runs the same jobs through SQS on moto, Swift and
Ceph RGW. Every copy here really streams bytes from one directory to another, so checksums are real.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, cast

import pytest

from shared.bootstrap import Container
from shared.config import Settings
from shared.data.memory import MemoryImageRepository, MemoryTaskRepository
from shared.domain.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from shared.domain.image import Image
from shared.domain.location import FAILED_IMPORT_PROPERTY, IMPORTING_PROPERTY, Location, LocationStatus
from shared.domain.status import ImageStatus
from shared.jobs import CopyJob, DeleteJob, MalformedJobError, StoreSyncJob, store_sync_job
from shared.notifications import RecordingNotifier
from shared.queues import WorkQueue
from shared.services.replication import (
    JobFailedError,
    Replicator,
    RetryLaterError,
    SyncOutcome,
)
from shared.stores.config import FileStoreConfig
from shared.stores.registry import StoreSet
from tests.support.fakes import ListQueue

DATA = os.urandom(3 * 1024 * 1024 + 17)


class World:
    """A primary file store holding one active image, two more file stores, the repository and the worker."""

    def __init__(self, root: Path, max_attempts: int = 3) -> None:
        self.root = root
        self.settings = Settings(
            auth_mode="trusted-headers",
            store_sync_max_attempts=max_attempts,
            store_sync_backoff_base_seconds=2,
            store_sync_backoff_max_seconds=5,
        )
        self.stores = StoreSet(
            "p",
            FileStoreConfig(data_dir=str(root / "p"), weight=10),
            {"f1": FileStoreConfig(data_dir=str(root / "f1")), "f2": FileStoreConfig(data_dir=str(root / "f2"))},
        )
        self.repo = MemoryImageRepository()
        self.queue = ListQueue()
        self.notifier = RecordingNotifier()
        self.container = Container(
            self.settings,
            {
                "image_repository": self.repo,
                "task_repository": MemoryTaskRepository(),
                "stores": self.stores,
                "store_sync_queue": self.queue,
                "notifier": self.notifier,
            },
        )
        self.replicator = self.container.replicator
        self.sync = self.container.store_sync
        added = self.stores.driver("p").add("img", iter([DATA]), len(DATA), "sha512")
        image = Image.new(owner="proj", disk_format="raw", container_format="bare")
        image.status = ImageStatus.ACTIVE
        image.size = len(DATA)
        image.checksum = added.checksum
        image.os_hash_algo = "sha512"
        image.os_hash_value = hashlib.sha512(DATA).hexdigest()
        image.locations = [Location("p", added.url)]
        self.image_id = self.repo.add(image).id

    def image(self) -> Image:
        return self.repo.get(self.image_id)

    def request(self, *stores: str, must_succeed: bool = True, batch: str = "b1") -> list[StoreSyncJob]:
        image = self.image()
        image.plan_copies(stores, batch, must_succeed=must_succeed)
        self.repo.save(image)
        self.replicator.dispatch(self.repo.get(self.image_id))
        return self.jobs()

    def jobs(self) -> list[StoreSyncJob]:
        jobs = self.queue.take()
        assert all(isinstance(j, CopyJob | DeleteJob) for j in jobs)
        return cast(list[StoreSyncJob], jobs)

    def stored(self, store: str) -> bytes | None:
        path = self.root / store / self.image_id
        return path.read_bytes() if path.exists() else None


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_copy__streams_the_bytes_and_records_an_active_location(world: World) -> None:
    (job,) = world.request("f1")
    assert job == CopyJob(world.image_id, "f1", "b1")
    assert job.message() == {"op": "copy", "image_id": world.image_id, "store": "f1", "batch": "b1"}
    assert world.image().import_progress() == {IMPORTING_PROPERTY: "f1", FAILED_IMPORT_PROPERTY: ""}

    assert world.sync.run(job) is SyncOutcome.COPIED

    image = world.image()
    assert image.stores == ["p", "f1"]
    location = image.location("f1")
    assert location is not None and location.url == f"file://{world.root / 'f1' / world.image_id}"
    assert world.stored("f1") == DATA
    assert image.import_progress() == {IMPORTING_PROPERTY: "", FAILED_IMPORT_PROPERTY: ""}


def test_copy__a_duplicate_delivery_changes_nothing(world: World) -> None:
    (job,) = world.request("f1")
    world.sync.run(job)
    version = world.image().version
    assert world.sync.run(job) is SyncOutcome.DUPLICATE
    assert world.image().version == version


def test_copy__bytes_that_do_not_match_the_image_are_retried_then_recorded_failed(world: World) -> None:
    image = world.image()
    image.os_hash_value = "0" * 128  # the recorded hash no longer matches the bytes
    world.repo.save(image)
    (job,) = world.request("f1")

    with pytest.raises(RetryLaterError) as first:
        world.sync.run(job, attempt=1)
    assert first.value.delay == 2
    assert world.stored("f1") is None, "a copy that fails verification is deleted"
    note = world.image().location("f1")
    assert note is not None and note.status is LocationStatus.UPLOADING
    assert "CopyVerificationError" in note.metadata["error"]
    with pytest.raises(RetryLaterError) as second:
        world.sync.run(job, attempt=2)
    assert second.value.delay == 4
    with pytest.raises(JobFailedError, match="after 3 attempts"):
        world.sync.run(job, attempt=3)

    image = world.image()
    failed = image.location("f1")
    assert failed is not None and failed.status is LocationStatus.FAILED and failed.url == ""
    assert image.stores == ["p"]
    assert image.import_progress() == {IMPORTING_PROPERTY: "", FAILED_IMPORT_PROPERTY: "f1"}
    assert world.stored("f1") is None


def test_copy__backoff_is_capped(tmp_path: Path) -> None:
    world = World(tmp_path, max_attempts=10)
    image = world.image()
    image.checksum = "0" * 32
    world.repo.save(image)
    (job,) = world.request("f1")
    delays = []
    for attempt in range(1, 5):
        with pytest.raises(RetryLaterError) as exc:
            world.sync.run(job, attempt=attempt)
        delays.append(exc.value.delay)
    assert delays == [2, 4, 5, 5]


def _break(world: World, store: str) -> None:
    """Make ``store`` unwritable: its directory becomes a file."""
    (world.root / store).write_bytes(b"not a directory")


def test_copy__all_stores_must_succeed_rolls_back_the_copies_already_made(world: World) -> None:
    jobs = world.request("f1", "f2", must_succeed=True)
    _break(world, "f2")
    assert world.sync.run(jobs[0]) is SyncOutcome.COPIED
    for attempt in (1, 2):
        with pytest.raises(RetryLaterError):
            world.sync.run(jobs[1], attempt=attempt)
    with pytest.raises(JobFailedError):
        world.sync.run(jobs[1], attempt=3)

    image = world.image()
    assert image.stores == ["p"]
    assert image.location("f1") is None, "the finished copy of the same request is taken back"
    assert image.import_progress()[FAILED_IMPORT_PROPERTY] == "f2"
    (cleanup,) = world.jobs()
    assert isinstance(cleanup, DeleteJob) and cleanup.store == "f1"
    assert world.stored("f1") == DATA
    assert world.sync.run(cleanup) is SyncOutcome.DELETED
    assert world.stored("f1") is None


def test_copy__without_all_stores_must_succeed_the_other_copies_stay(world: World) -> None:
    jobs = world.request("f1", "f2", must_succeed=False)
    _break(world, "f2")
    world.sync.run(jobs[0])
    with pytest.raises(JobFailedError):
        world.sync.run(jobs[1], attempt=3)
    image = world.image()
    assert image.stores == ["p", "f1"]
    assert image.import_progress() == {IMPORTING_PROPERTY: "", FAILED_IMPORT_PROPERTY: "f2"}
    assert world.queue.take() == []


def test_copy__a_rolled_back_copy_is_skipped_when_its_job_arrives(world: World) -> None:
    jobs = world.request("f1", "f2", must_succeed=True)
    _break(world, "f1")
    with pytest.raises(JobFailedError):
        world.sync.run(jobs[0], attempt=3)
    assert world.sync.run(jobs[1]) is SyncOutcome.SKIPPED
    assert world.stored("f2") is None
    f2 = world.image().location("f2")
    assert f2 is not None and f2.status is LocationStatus.FAILED
    assert "rolled back" in f2.metadata["error"]


def test_copy__a_failed_store_can_be_asked_again(world: World) -> None:
    _break(world, "f1")
    (job,) = world.request("f1")
    with pytest.raises(JobFailedError):
        world.sync.run(job, attempt=3)
    (world.root / "f1").unlink()
    (retry,) = world.request("f1", batch="b2")
    assert world.sync.run(retry) is SyncOutcome.COPIED
    assert world.image().stores == ["p", "f1"]


def test_copy__bytes_written_for_an_image_deleted_meanwhile_are_removed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    (job,) = world.request("f1")
    target = world.stores.driver("f1")
    real_add = target.add

    def add_then_delete_image(*args: Any, **kwargs: Any) -> Any:
        result = real_add(*args, **kwargs)
        image = world.image()
        image.delete()
        world.repo.save(image)
        return result

    monkeypatch.setattr(target, "add", add_then_delete_image)
    assert world.sync.run(job) is SyncOutcome.ORPHAN
    assert world.stored("f1") is None


def test_copy__of_a_deleted_image_writes_nothing(world: World) -> None:
    (job,) = world.request("f1")
    image = world.image()
    image.delete()
    world.repo.save(image)
    assert world.sync.run(job) is SyncOutcome.ORPHAN
    assert world.stored("f1") is None


def test_purge__deletes_every_copy_and_empties_the_tombstone(world: World) -> None:
    (job,) = world.request("f1")
    world.sync.run(job)
    image = world.image()
    image.delete()
    world.repo.save(image)
    world.replicator.purge(image.id, image.locations)
    jobs = world.jobs()
    assert sorted(j.store for j in jobs) == ["f1", "p"]
    for delete in jobs:
        assert world.sync.run(delete) is SyncOutcome.DELETED
    assert world.stored("f1") is None and world.stored("p") is None
    assert world.image().locations == []
    # a redelivered delete finds nothing to do
    assert world.sync.run(jobs[0]) is SyncOutcome.DUPLICATE


def test_run__refuses_malformed_jobs_and_unknown_stores(world: World) -> None:
    for message in ({}, {"op": "x", "image_id": "i", "store": "f1"}, {"op": "copy", "store": "f1"}):
        with pytest.raises(MalformedJobError, match="malformed|without"):
            store_sync_job(message)
    with pytest.raises(ValueError, match="unknown store"):
        world.sync.run(store_sync_job({"op": "copy", "image_id": world.image_id, "store": "nope"}))


def test_policy_targets__star_means_every_other_store(world: World) -> None:
    policy = world.settings.model_copy(update={"replicate_to": ("*",)})
    replicator = Replicator(world.stores, cast(WorkQueue, world.queue), policy)  # a second policy, same stores
    assert replicator.policy_targets() == ["f1", "f2"]
    image = world.image()
    replicator.plan_on_activation(image, ["f2", "p"], "s1", must_succeed=True)
    assert [(loc.store, loc.batch, loc.metadata["must_succeed"]) for loc in image.locations[1:]] == [
        ("f2", "s1", "true"),
        ("f1", "s1-policy", "false"),
    ]


def test_check_stores__names_an_unknown_store(world: World) -> None:
    assert world.replicator.check_stores(["f1", "f1", "p"]) == ["f1", "p"]
    with pytest.raises(InvalidInputError, match="Store for identifier nope not found"):
        world.replicator.check_stores(["nope"])


# -- the image's rules ----------------------------------------------------------------------------


def test_plan_copies__only_for_active_images_and_new_stores(world: World) -> None:
    image = world.image()
    with pytest.raises(InvalidInputError, match="already present at store 'p'"):
        image.plan_copies(["p"], "b", must_succeed=True)
    image.plan_copies(["f1"], "b", must_succeed=True)
    with pytest.raises(InvalidInputError, match="already present at store 'f1'"):
        image.plan_copies(["f1"], "c", must_succeed=True)
    queued = Image.new(owner="proj")
    with pytest.raises(ConflictError):
        queued.plan_copies(["f1"], "b", must_succeed=True)


def test_remove_copy__follows_glances_rules(world: World) -> None:
    image = world.image()
    with pytest.raises(ForbiddenError, match="only store"):
        image.remove_copy("p")
    with pytest.raises(NotFoundError):
        image.remove_copy("f1")
    image.locations.append(Location("f1", "file:///x/y"))
    removed = image.remove_copy("p")
    assert removed.store == "p" and image.stores == ["f1"]
    image.deactivate()
    with pytest.raises(ConflictError):
        image.remove_copy("f1")


def test_by_preference__prefer_first_then_weight_then_order(world: World) -> None:
    assert world.stores.by_preference(["f2", "f1", "p"]) == ["p", "f1", "f2"]
    assert world.stores.by_preference(["f1", "p", "f2"], ["f2", "nope", "f1"]) == ["f2", "f1", "p"]
    assert world.stores.by_preference(["f1"], ["p"]) == ["f1"]
