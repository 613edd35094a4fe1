"""sglance: the client of Serverless Glance for what Glance's clients lack.

* ``sglance.uploader.Uploader``: create an image and upload its file through presigned URLs, in parallel and
  resumably, wait for ``active`` and compare the checksums (``docs/uploads.md``);
* ``sglance.download.Downloader``: download with verification, resumable;
* ``sglance.migrate``: copy the images of a running Glance, with their members and data (``docs/migration.md``);
* ``sglance.connection.ApiConnection``: clouds.yaml, ``OS_*``, a token or the dev stack's headers;
* ``sglance.cli`` is the ``sglance`` command, ``sglance.osc`` the ``openstack image upload|download|migrate`` plugin.

This package talks HTTP only: it imports nothing from the service.
"""

from sglance.connection import ApiConnection
from sglance.errors import (
    ApiError,
    ChecksumMismatchError,
    ConfigurationError,
    SglanceError,
    SourceError,
    TransferError,
    UploadConflictError,
    UploadInterruptedError,
    UploadRefusedError,
    WaitTimeoutError,
)
from sglance.uploader import Uploader
from sglance.wire import UploadResult, UploadSession

__all__ = [
    "ApiConnection",
    "ApiError",
    "ChecksumMismatchError",
    "ConfigurationError",
    "SglanceError",
    "SourceError",
    "TransferError",
    "UploadConflictError",
    "UploadInterruptedError",
    "UploadRefusedError",
    "UploadResult",
    "UploadSession",
    "Uploader",
    "WaitTimeoutError",
]
