"""Upload sessions: one open transfer of an image's bytes into the upload bucket, and its rules."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.errors import InvalidInputError

MiB = 1024 * 1024
# S3 limits: parts of 5 MiB .. 5 GiB, at most 10 000 of them; single PUTs up to 5 GiB.
S3_MIN_PART = 5 * MiB
S3_MAX_PART = 5 * 1024 * MiB
S3_MAX_PARTS = 10_000
# The property that tells users why their last upload was refused (Glance has no error state).
UPLOAD_ERROR_PROPERTY = "os_glance_upload_error"
# Who holds a session that no one has leased: the client, which sends the bytes (or calls the import) until the
# session expires.
CLIENT_HOLDER = "client"


class UploadMethod(StrEnum):
    """How the client sends the bytes."""

    SINGLE = "single"
    MULTIPART = "multipart"
    # Bytes stream through the API (PUT /file); finalised inline.
    PROXY = "proxy"
    # Bytes staged through the API (PUT /stage); finalised when glance-direct import is called.
    STAGE = "stage"
    # Bytes fetched from a URL by the import worker (web-download); finalised inline by the worker.
    WEB = "web-download"
    # Bytes a service put in one of our stores (POST /v2/images/{id}/locations), verified by the import worker.
    LOCATION = "location"

    @property
    def finalised_inline(self) -> bool:
        """Whether the writer of the bytes records the outcome itself (the S3 event only backs it up)."""
        return self in (UploadMethod.PROXY, UploadMethod.WEB, UploadMethod.LOCATION)


@dataclass(frozen=True)
class UploadPlan:
    """The server's choice of method and part size for a declared size."""

    method: UploadMethod
    part_size: int | None
    parts_count: int


def plan_upload(
    size: int, *, multipart_threshold: int, part_size: int, max_parts: int, force: bool | None
) -> UploadPlan:
    """Single PUT below the threshold, multipart above; parts grow so that the count stays under ``max_parts``."""
    if size < 0:
        raise InvalidInputError("size must not be negative")
    multipart = size >= multipart_threshold if force is None else force
    if not multipart:
        if size > S3_MAX_PART:
            raise InvalidInputError("a single PUT is limited to 5 GiB; use a multipart upload")
        return UploadPlan(UploadMethod.SINGLE, None, 1)
    chosen = max(part_size, S3_MIN_PART, math.ceil(size / max_parts / MiB) * MiB)
    if chosen > S3_MAX_PART:
        raise InvalidInputError("the image is larger than a multipart upload can hold")
    return UploadPlan(UploadMethod.MULTIPART, chosen, max(1, math.ceil(size / chosen)))


@dataclass(frozen=True)
class Lease:
    """Who is moving a session's bytes now (the API, a worker, a job), and until when without a word from it.

    The holder renews the lease as it makes progress; a lease that runs out means the holder died, and the sweeper
    (shared/services/sweeper.py) returns the image to queued with the reason.
    """

    holder: str
    until: datetime


@dataclass
class UploadSession:
    """An open upload of one image: where its bytes go and what the client declared."""

    id: str
    key: str
    method: UploadMethod
    size: int | None
    created_at: datetime
    expires_at: datetime
    part_size: int | None = None
    s3_upload_id: str | None = None
    checksum: str | None = None
    # Stores besides the primary the image is copied to once active (X-Image-Meta-Store, import ``stores``),
    # and whether a failure in any of them rolls back the others (``all_stores_must_succeed``).
    targets: tuple[str, ...] = ()
    all_stores_must_succeed: bool = True
    # The import's task: the copies to ``targets`` are planned as its batch, so the task settles with them.
    task_id: str | None = None
    # The process moving the bytes now, if any (None: the client holds the session until ``expires_at``).
    lease: Lease | None = None

    @classmethod
    def new(
        cls,
        plan: UploadPlan,
        *,
        object_key: Callable[[str], str],
        size: int | None,
        now: datetime,
        ttl: timedelta,
        checksum: str | None = None,
    ) -> UploadSession:
        """A session with a fresh id; ``object_key`` names the object its bytes go to, given the session id."""
        session_id = uuid.uuid4().hex
        return cls(
            id=session_id,
            key=object_key(session_id),
            method=plan.method,
            size=size,
            created_at=now,
            expires_at=now + ttl,
            part_size=plan.part_size,
            checksum=checksum,
        )

    def expired(self, now: datetime) -> bool:
        """Whether the session outlived its time (its URLs are long dead; it may be replaced)."""
        return now >= self.expires_at

    @property
    def holder(self) -> str:
        """Who owns the session now: the lease's holder, else the client."""
        return self.lease.holder if self.lease is not None else CLIENT_HOLDER

    @property
    def deadline(self) -> datetime:
        """When the session is abandoned unless its owner acts: the lease's end, else the session's expiry."""
        return self.lease.until if self.lease is not None else self.expires_at

    def part_range(self, part_number: int) -> int:
        """Size of part ``part_number`` (1-based).

        Raises:
            InvalidInputError: not a part of this upload.
        """
        if self.part_size is None or self.size is None:
            raise InvalidInputError("this upload has no parts")
        count = max(1, math.ceil(self.size / self.part_size))
        if not 1 <= part_number <= count:
            raise InvalidInputError(f"part number must be between 1 and {count}")
        if part_number < count:
            return self.part_size
        return self.size - self.part_size * (count - 1)

    @property
    def parts_count(self) -> int:
        """Number of parts (1 for single uploads)."""
        if self.part_size is None or self.size is None:
            return 1
        return max(1, math.ceil(self.size / self.part_size))
