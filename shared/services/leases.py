"""Leases: who moves an in-flight image's bytes now, and until when without a word from them.

A holder (the API streaming PUT /file or PUT /stage, a worker, a job) takes the lease of the image's open session
when it starts and renews it as it makes progress (``Heartbeat``: a conditional write at most every third of the
lease). A lease that runs out means its holder died; the sweeper (``shared/services/sweeper.py``) then returns the
image to queued with the reason. A holder whose session was aborted, swept or replaced stops at its next beat.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.domain.errors import NotFoundError, UploadSupersededError
from shared.domain.image import Image, utcnow
from shared.domain.status import IN_FLIGHT

if TYPE_CHECKING:
    from shared.services.unit_of_work import ImageUnitOfWork

# Holders, as shown in the reason of an abandoned upload.
API_HOLDER = "api"
QUEUE_HOLDER = "queue"
WORKER_HOLDER = "worker"
JOB_HOLDER = "job"


def holds(image: Image, session_id: str) -> bool:
    """Whether ``session_id`` is still the in-flight session of ``image``."""
    return image.status in IN_FLIGHT and image.upload is not None and image.upload.id == session_id


@dataclass
class Heartbeat:
    """Takes and renews the lease of one session for one holder."""

    uow: ImageUnitOfWork
    image_id: str
    session_id: str
    holder: str
    lease: timedelta
    clock: Callable[[], datetime] = utcnow
    _renewed: datetime | None = field(default=None, init=False)

    def take(self) -> None:
        """Take the lease now (UploadSupersededError when the session is no longer the image's)."""
        self._renew(self.clock())

    def beat(self) -> None:
        """Progress was made: renew the lease if a third of it went by since the last renewal."""
        now = self.clock()
        if self._renewed is None or now - self._renewed >= self.lease / 3:
            self._renew(now)

    def _renew(self, now: datetime) -> None:
        def renew(image: Image) -> bool:
            if not holds(image, self.session_id):
                return False
            image.hold(self.holder, now + self.lease)
            return True

        try:
            held = self.uow.update(self.image_id, renew)
        except NotFoundError:
            held = False
        if not held:
            raise UploadSupersededError(image_id=self.image_id)
        self._renewed = now
