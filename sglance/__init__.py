"""sglance: a client of Serverless Glance's presigned upload API (``sglance upload IMAGE_ID FILE``).

The library is :mod:`sglance.uploader` (``Uploader``); the command line is :mod:`sglance.cli`. The protocol is
described in ``docs/uploads.md``. This package talks HTTP only: it imports nothing from the service.
"""

from sglance.uploader import (
    ApiError,
    ChecksumMismatchError,
    SglanceError,
    TransferError,
    UploadConflictError,
    Uploader,
    UploadInterruptedError,
    UploadRefusedError,
    UploadResult,
    UploadSession,
    WaitTimeoutError,
)

__all__ = [
    "ApiError",
    "ChecksumMismatchError",
    "SglanceError",
    "TransferError",
    "UploadConflictError",
    "UploadInterruptedError",
    "UploadRefusedError",
    "UploadResult",
    "UploadSession",
    "Uploader",
    "WaitTimeoutError",
]
