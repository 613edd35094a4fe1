"""The jobs on the work queues: what the API and the workers hand each other, as dataclasses.

On the queue a job is a JSON object (``message()``; fields that are None are left out); a worker reads it back
with ``import_job`` or ``store_sync_job``, which refuse a malformed message (it goes to the DLQ).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping

COPY = "copy"
DELETE = "delete"


class MalformedJobError(ValueError):
    """A queue message is not a job this worker runs."""


@dataclass(frozen=True)
class _Job:
    def message(self) -> dict[str, Any]:
        """The JSON object sent to the queue."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ImportJob(_Job):
    """Finish one import (``glance-direct``, ``web-download``, ``glance-download``, or a service-added ``location``)."""

    method: str
    image_id: str
    session_id: str
    request_id: str | None = None
    task_id: str | None = None
    # web-download: the URL to fetch.
    uri: str | None = None
    # location: where the service put the bytes, and the hash it vouches for.
    store: str | None = None
    url: str | None = None
    validation_data: dict[str, str] | None = None
    # glance-download: the remote region's image, the catalog interface, and the caller's token (Glance's flow keeps
    # it in the task's context; here it travels in the job, never in its repr or in an error message).
    glance_region: str | None = None
    glance_image_id: str | None = None
    glance_service_interface: str | None = None
    auth_token: str | None = dataclasses.field(default=None, repr=False)


@dataclass(frozen=True)
class CopyJob(_Job):
    """Copy an image's bytes to ``store``, for the copy request ``batch``."""

    op: ClassVar[str] = COPY
    image_id: str
    store: str
    batch: str | None
    request_id: str | None = None

    def message(self) -> dict[str, Any]:
        """The JSON object sent to the queue (with its ``op``)."""
        return {"op": self.op, **super().message()}


@dataclass(frozen=True)
class DeleteJob(_Job):
    """Delete the bytes behind one location."""

    op: ClassVar[str] = DELETE
    image_id: str
    store: str
    url: str

    def message(self) -> dict[str, Any]:
        """The JSON object sent to the queue (with its ``op``)."""
        return {"op": self.op, **super().message()}


@dataclass(frozen=True)
class FinalizeJob(_Job):
    """Verify and record the uploaded object ``key`` (what an S3 event asks the finaliser)."""

    key: str
    request_id: str | None = None


Job = ImportJob | CopyJob | DeleteJob | FinalizeJob
StoreSyncJob = CopyJob | DeleteJob

# The kinds of job a job runner takes (``envelope``): each names the worker whose service runs it.
FINALIZE = "finalize"
IMPORT = "import"
STORE_SYNC = "store_sync"


def envelope(job: Job) -> dict[str, Any]:
    """A job as a job runner takes it: its kind and its message."""
    if isinstance(job, FinalizeJob):
        kind = FINALIZE
    elif isinstance(job, ImportJob):
        kind = IMPORT
    else:
        kind = STORE_SYNC
    return {"kind": kind, "job": job.message()}


def read_envelope(body: Mapping[str, Any]) -> Job:
    """The job of an envelope (MalformedJobError for anything else)."""
    kind, message = body.get("kind"), body.get("job")
    if not isinstance(message, dict):
        raise MalformedJobError(f"job envelope without a job: {list(body)!r}")
    if kind == FINALIZE:
        return FinalizeJob(**_strings(message, ("key",), ("request_id",)))
    if kind == IMPORT:
        return import_job(message)
    if kind == STORE_SYNC:
        return store_sync_job(message)
    raise MalformedJobError(f"unknown job kind {kind!r}")


def _shown(body: Mapping[str, Any]) -> dict[str, Any]:
    """A message as an error may show it: a caller's token is never printed."""
    return {k: ("***" if k == "auth_token" else v) for k, v in body.items()}


def _strings(body: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in required:
        if not isinstance(body.get(name), str):
            raise MalformedJobError(f"job without {name!r}: {_shown(body)!r}")
        fields[name] = body[name]
    for name in optional:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise MalformedJobError(f"job with a malformed {name!r}: {_shown(body)!r}")
        fields[name] = value
    return fields


def import_job(body: Mapping[str, Any]) -> ImportJob:
    """The import job of a queue message."""
    optional = ("request_id", "task_id", "uri", "store", "url")
    remote = ("glance_region", "glance_image_id", "glance_service_interface", "auth_token")
    fields = _strings(body, ("method", "image_id", "session_id"), optional + remote)
    validation = body.get("validation_data")
    if validation is not None and not isinstance(validation, dict):
        raise MalformedJobError(f"job with malformed validation_data: {_shown(body)!r}")
    return ImportJob(**fields, validation_data=validation)


def store_sync_job(body: Mapping[str, Any]) -> StoreSyncJob:
    """The store_sync job of a queue message."""
    op = body.get("op")
    if op == COPY:
        return CopyJob(**_strings(body, ("image_id", "store"), ("batch", "request_id")))
    if op == DELETE:
        return DeleteJob(**_strings(body, ("image_id", "store", "url"), ()))
    raise MalformedJobError(f"malformed store_sync job: {dict(body)!r}")
