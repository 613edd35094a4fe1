"""How operators describe stores (Glance's ``enabled_backends`` plus each backend's section).

``SGLANCE_STORES`` is a JSON object from store id to its configuration, e.g.::

    {"swift1": {"type": "swift", "auth_url": "https://keystone.example/v3", "auth_version": "3",
                "user": "glance", "project_name": "service", "secret_arn": "arn:aws:secretsmanager:...",
                "container": "glance", "weight": 50},
     "ceph1": {"type": "ceph", "endpoint_url": "https://rgw.example", "bucket": "glance",
               "secret_arn": "arn:aws:secretsmanager:..."}}

The primary store (the image bucket every upload lands in) is always present under ``primary_store_id`` and is
not listed here. Credentials come from Secrets Manager (``secret_arn``: a JSON object with the same field names
as the inline ones) or, for local development only, inline (``key``, ``secret_access_key``). No location URL
ever carries them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

MiB = 1024 * 1024
GiB = 1024 * MiB


class _StoreBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str | None = None
    # Higher weights are preferred for downloads (Glance's weight); ties keep configuration order.
    weight: int = 0
    # Secrets Manager secret holding this store's credentials as JSON (field names as the inline ones).
    secret_arn: str | None = None


class _S3Common(_StoreBase):
    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    # Object keys are ``<prefix><image id>``.
    prefix: str = "images/"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    # Objects of at least this size are written as multipart uploads of part_size parts, threads at a time.
    large_object_size: int = Field(default=100 * MiB, ge=5 * MiB)
    part_size: int = Field(default=16 * MiB, ge=5 * MiB)
    upload_threads: int = Field(default=2, ge=1, le=16)
    # Path-style addressing (emulators, Ceph RGW without wildcard DNS).
    path_style: bool = True
    # Behind API Gateway (data_delivery=redirect), downloads from this store redirect to a presigned GET on
    # endpoint_url; set False when clients cannot reach that endpoint (the bytes then stream through the API,
    # which API Gateway limits to ~6 MB responses).
    presigned_downloads: bool = True

    @field_validator("endpoint_url", mode="after")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must be an http:// or https:// URL")
        return value


class S3StoreConfig(_S3Common):
    """Any S3 API: AWS S3 in another bucket or region, or an S3-compatible service."""

    type: Literal["s3"] = "s3"


class CephStoreConfig(_S3Common):
    """Ceph through the RADOS Gateway's S3 API (see docs/stores.md for why S3 rather than Swift)."""

    type: Literal["ceph"] = "ceph"
    endpoint_url: str


class SwiftStoreConfig(_StoreBase):
    """OpenStack Swift (or Ceph RGW's Swift API), authenticated by Keystone v3 or tempauth (v1)."""

    type: Literal["swift"] = "swift"
    auth_url: str
    auth_version: Literal["1", "3"] = "3"
    user: str
    key: SecretStr | None = None
    # Keystone v3 only.
    project_name: str | None = None
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str | None = None
    endpoint_type: str = "publicURL"
    container: str = "glance"
    # Images of at least this size are Static Large Objects of segment_size segments (Swift refuses single
    # objects over 5 GiB), uploaded upload_threads at a time.
    large_object_size: int = Field(default=5 * GiB, ge=1 * MiB, le=5 * GiB)
    segment_size: int = Field(default=200 * MiB, ge=1 * MiB, le=5 * GiB)
    upload_threads: int = Field(default=1, ge=1, le=16)
    timeout_seconds: float = Field(default=60.0, gt=0)

    @field_validator("auth_url", mode="after")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("auth_url must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _keystone_needs_a_project(self) -> SwiftStoreConfig:
        if self.auth_version == "3" and not self.project_name:
            raise ValueError("auth_version 3 (Keystone) needs project_name")
        return self


class FileStoreConfig(_StoreBase):
    """A directory: a local path in development, an EFS mount in Lambda."""

    type: Literal["file"] = "file"
    data_dir: str
    chunk_size: int = Field(default=8 * MiB, ge=64 * 1024)


class RbdStoreConfig(_StoreBase):
    """Ceph RBD through librados/librbd (python3-rbd): images as RBD images with a protected snapshot ``snap``."""

    type: Literal["rbd"] = "rbd"
    pool: str = Field(default="images", min_length=1)
    # The cluster's ceph.conf (mon addresses); in Lambda, a file shipped with the function or on EFS.
    conffile: str = "/etc/ceph/ceph.conf"
    # The cephx client id (client.<user>), with caps on the pool (Glance's rbd_store_user).
    user: str = Field(default="glance", min_length=1)
    # A keyring file, or the cephx key itself (inline for development; else the ``key`` field of secret_arn).
    # Neither: whatever ceph.conf says (or a cluster with auth none).
    keyring: str | None = None
    key: SecretStr | None = None
    # The cluster's fsid, if known: owns() then needs no connection, and a connection to another cluster is refused.
    fsid: str | None = None
    # RBD object size and write size: a power of two (Glance's rbd_store_chunk_size, in bytes here).
    chunk_size: int = Field(default=8 * MiB, ge=64 * 1024, le=32 * MiB)
    # Skip writing all-zero chunks: the image stays sparse (Glance's rbd_thin_provisioning).
    thin_provisioning: bool = False
    # Seconds (librados takes whole seconds) to reach the monitors (Glance's rados_connect_timeout).
    connect_timeout: int = Field(default=10, ge=1)
    # Seconds for one monitor or OSD operation (0: wait for ever, librados' default).
    op_timeout: int = Field(default=60, ge=0)
    # Where python3-rbd's rados/rbd extension modules are, when they are not importable (see shared/stores/rbd.py).
    bindings_dir: str | None = None

    @field_validator("chunk_size", mode="after")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError("chunk_size must be a power of two (it is the RBD object size)")
        return value

    @field_validator("pool", mode="after")
    @classmethod
    def _pool_name(cls, value: str) -> str:
        if "/" in value or "@" in value:
            raise ValueError("pool names hold no '/' or '@'")
        return value


StoreConfig = Annotated[
    S3StoreConfig | CephStoreConfig | SwiftStoreConfig | FileStoreConfig | RbdStoreConfig,
    Field(discriminator="type"),
]
