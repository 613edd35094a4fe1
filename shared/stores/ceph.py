"""The Ceph store: a Ceph cluster through the RADOS Gateway's S3 API (the S3 driver, with RGW's quirks handled).

Why the S3 API rather than RGW's Swift API: multipart uploads send parts in parallel, each checked against its
md5 on arrival (Content-MD5) and again by its ETag; presigned GETs could serve downloads straight from the gateway
as they do from the image bucket; and boto3 is already a dependency of every function, where the Swift API would
add python-swiftclient and Keystone or tempauth round trips. An operator who prefers RGW's Swift API can point a
``swift`` store at it instead.

What RGW 16 (Pacific) does differently from AWS S3, and how the S3 adapter (``shared.stores.s3_objects``) copes:

* ``CompleteMultipartUpload`` answers with an empty ``<ETag>``. The adapter then asks HEAD, whose ETag is the usual
  ``"<md5 of the part md5s>-<parts>"``, and compares that with the part md5s it computed.
* It knows none of the flexible checksums (``x-amz-checksum-*``) that botocore sends by default since 1.36; a
  streaming client (every store driver's) computes and validates checksums only when an operation requires them.
* Error bodies carry an empty ``<Message>``; only codes and statuses are mapped, never messages.
"""

from __future__ import annotations

from typing import Any, ClassVar

from shared.stores.config import CephStoreConfig, S3StoreConfig
from shared.stores.s3_store import S3Store


class CephStore(S3Store):
    """Images as objects in one RGW bucket, over the S3 API."""

    type_name = "ceph"
    config_type: ClassVar[type[S3StoreConfig | CephStoreConfig]] = CephStoreConfig

    def properties(self) -> dict[str, Any]:
        """The S3 store's detail, plus the gateway's endpoint (it is the cluster's address, not a credential)."""
        return {**super().properties(), "endpoint": self.config.endpoint_url}
