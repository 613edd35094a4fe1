"""S3's failures as store errors: botocore's exceptions, and S3 error codes and statuses (never messages)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from shared.stores.errors import (
    StoreConfigError,
    StoreError,
    StoreIntegrityError,
    StoreNotFoundError,
    StoreRangeError,
    StoreUnavailableError,
    error_for_status,
)

_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchUpload", "404", "NotFound"})
_REFUSED = frozenset(
    {
        "AccessDenied",
        "403",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "InvalidBucketName",
        "AuthorizationHeaderMalformed",
        "PermanentRedirect",
    }
)
_RETRYABLE = frozenset({"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"})
_CORRUPT = frozenset({"BadDigest", "InvalidDigest", "IncompleteBody"})


def _client_error(exc: Any, what: str) -> StoreError:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _NOT_FOUND:
        return StoreNotFoundError(f"{what}: no such object")
    if code == "InvalidRange" or status == 416:
        return StoreRangeError(f"{what}: range not satisfiable")
    if code in _REFUSED:
        return StoreConfigError(f"{what}: refused ({code})")
    if code in _CORRUPT:
        return StoreIntegrityError(f"{what}: the server saw other bytes than announced ({code})")
    if code in _RETRYABLE:
        return StoreUnavailableError(f"{what}: {code}")
    return error_for_status(status, f"{what}: {code or status}") if status else StoreError(f"{what}: {code}")


def s3_error(exc: BaseException, what: str) -> StoreError | None:
    """The store error for a botocore exception (None for anything else, which passes unchanged)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        IncompleteReadError,
        NoCredentialsError,
        PartialCredentialsError,
        UnseekableStreamError,
    )

    if isinstance(exc, ClientError):
        return _client_error(exc, what)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StoreConfigError(f"{what}: no usable credentials")
    if isinstance(exc, ConnectionError | HTTPClientError | IncompleteReadError | UnseekableStreamError):
        # (UnseekableStreamError: botocore wanted to resend a stream; the caller may add again)
        return StoreUnavailableError(f"{what}: {type(exc).__name__}")
    if isinstance(exc, BotoCoreError):
        return StoreError(f"{what}: {type(exc).__name__}")
    return None


@contextlib.contextmanager
def mapped(what: str) -> Iterator[None]:
    """Turn botocore's exceptions into store errors; the caller's own (a failing chunk iterator) pass unchanged."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        error = s3_error(exc, what)
        if error is None:
            raise
        raise error from exc
