"""The services on in-memory fakes, for unit tests of the upload, import and sweep flows: a ``Container`` whose image
and task repositories, upload bucket, notifier and queues are fakes that record. Every step is the services' own
code; the same flows run against moto and a real Ceph RGW in tests/integration and tests/api."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from shared.bootstrap import Container
from shared.config import Settings
from shared.data.memory import MemoryImageRepository, MemoryTaskRepository
from shared.domain.image import Image
from shared.notifications import RecordingNotifier
from shared.upload_bucket.memory import MemoryUploadBucket
from tests.support.fakes import ListQueue


@dataclass
class MemoryWorld:
    """The container and the fakes a test looks into."""

    container: Container
    repo: MemoryImageRepository
    bucket: MemoryUploadBucket
    notifier: RecordingNotifier
    imports: ListQueue

    @classmethod
    def build(cls, settings: Settings) -> Self:
        """A container built from ``settings`` on fresh fakes."""
        repo, bucket, notifier = MemoryImageRepository(), MemoryUploadBucket(), RecordingNotifier()
        imports = ListQueue()
        overrides: dict[str, object] = {
            "image_repository": repo,
            "task_repository": MemoryTaskRepository(),
            "image_bucket": bucket,
            "notifier": notifier,
            "import_queue": imports,
            "store_sync_queue": ListQueue(),
        }
        return cls(Container(settings, overrides), repo, bucket, notifier, imports)

    def new_image(self) -> Image:
        """A new raw/bare image of project-a, in status queued."""
        image = Image.new(owner="project-a", disk_format="raw", container_format="bare")
        return self.container.images.add(image, "req-create")

    def image(self, image_id: str) -> Image:
        """The image as stored now."""
        return self.container.images.get(image_id)

    def events(self) -> list[str]:
        """The notifications sent so far, by event type."""
        return self.notifier.event_types
