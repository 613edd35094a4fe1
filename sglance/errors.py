"""Every error the client raises, as one tree::

SglanceError
├── ConfigurationError       no usable credentials or endpoint (clouds.yaml, OS_*, options)
├── ApiError                 an image API (ours or a Glance) answered with an error status, or was unreachable
├── TransferError            S3 refused a presigned request, or it kept failing after the retries
├── SourceError              the bytes could not be read from their source (a file, a Glance) as declared
├── UploadConflictError      another upload is open that cannot be resumed (abort it, or restart)
├── UploadInterruptedError   stopped after ``stop_after_parts`` parts; the session stays open to resume
├── UploadRefusedError       the server verified the bytes and sent the image back to queued
├── WaitTimeoutError         the image did not become active in time
└── ChecksumMismatchError    an image's size, checksum or hash is not what was sent (or received)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class SglanceError(Exception):
    """Base of every error this client raises."""


class ConfigurationError(SglanceError):
    """The command line, clouds.yaml and ``OS_*`` variables do not describe a usable cloud."""


class ApiError(SglanceError):
    """The image API answered ``status`` to ``method path`` (0: no answer at all)."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path}: " + (f"{status} {message}" if status else message))
        self.method = method
        self.path = path
        self.status = status
        self.message = message


class TransferError(SglanceError):
    """A presigned request to S3 was refused, or kept failing after every retry."""


class SourceError(SglanceError):
    """The source of the bytes ended early, changed, or failed (a file shorter than hashed, a Glance GET cut off)."""


class UploadConflictError(SglanceError):
    """The image has an open upload this client cannot resume (another size or method, or a single PUT)."""


class UploadInterruptedError(SglanceError):
    """The transfer stopped on purpose (``stop_after_parts``); the session stays open and can be resumed."""

    def __init__(self, image_id: str, parts_sent: Sequence[int]) -> None:
        super().__init__(f"upload of image {image_id} stopped after {len(parts_sent)} part(s); it can be resumed")
        self.image_id = image_id
        self.parts_sent = tuple(parts_sent)


class UploadRefusedError(SglanceError):
    """The server did not accept the bytes: the image is ``queued`` again (or gone), with ``reason``."""

    def __init__(self, image_id: str, status: str, reason: str) -> None:
        super().__init__(f"image {image_id} is {status}: {reason}")
        self.image_id = image_id
        self.status = status
        self.reason = reason


class WaitTimeoutError(SglanceError):
    """The image did not leave ``uploading``/``importing`` within the timeout."""


class ChecksumMismatchError(SglanceError):
    """An image's size, checksum or hash differs from the bytes' (server values first, then ours)."""

    def __init__(self, image_id: str, mismatches: Mapping[str, tuple[object, object]]) -> None:
        detail = "; ".join(f"{name}: server {theirs!r}, local {ours!r}" for name, (theirs, ours) in mismatches.items())
        super().__init__(f"image {image_id} does not hold this file: {detail}")
        self.image_id = image_id
        self.mismatches = dict(mismatches)
