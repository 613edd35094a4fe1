"""The store driver interface: one image's bytes in one backend (Glance's glance_store ``Store``).

A driver is built from its store's configuration (``shared.stores.config``) and knows nothing of images beyond
their ids. ``add`` streams the bytes once, computing md5 and the secure hash of exactly what it sent, so the
caller can compare them with the image's recorded checksums; ``get`` streams (part of) what a location holds;
``delete`` removes every object behind a location (segments and manifest included). Location URLs never carry
credentials: they name the store's own namespace (bucket, container, directory), and the credentials stay in
the store's configuration.

Errors are the ``StoreError`` family below; ``StoreUnavailableError`` is the retryable one (connection
refused, timeouts, 5xx), everything else is final for the operation that raised it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from shared.stores.config import StoreConfig
    from shared.stores.registry import SecretReader


@dataclass(frozen=True)
class AddResult:
    """What ``add`` wrote (Glance's 5-tuple: url, size, md5, multihash, metadata)."""

    url: str
    size: int
    checksum: str
    multihash: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreRead:
    """An open read of a location: ``length`` bytes from ``offset`` of an object of ``total_size`` bytes."""

    chunks: Iterator[bytes]
    length: int
    total_size: int
    offset: int = 0


class StoreError(Exception):
    """A store operation failed."""


class StoreNotFoundError(StoreError):
    """Nothing is stored at the location (Glance: NotFound)."""


class StoreUnavailableError(StoreError):
    """The backend could not be reached or answered with a server error; the operation may be retried."""


class StoreSizeMismatchError(StoreError):
    """The stream carried a different number of bytes than announced (nothing is left stored)."""


class StoreIntegrityError(StoreError):
    """The backend reports holding other bytes than were sent (an ETag differs); nothing is left stored."""


class StoreRangeError(StoreError):
    """The requested byte range lies outside the object."""


class StoreInUseError(StoreError):
    """The backend refuses to delete what others still use (RBD clones of the image; Glance's InUseByStore, 409)."""


class StoreConfigError(StoreError):
    """The store's configuration is unusable (missing credentials, bad URL)."""


class StoreDriver(ABC):
    """One configured store. Instances are built once per process and reused; clients are made lazily."""

    # The ``type`` a store's configuration names (the registry key).
    type_name: ClassVar[str]

    def __init__(self, store_id: str) -> None:
        self.store_id = store_id

    @classmethod
    @abstractmethod
    def from_config(cls, store_id: str, config: StoreConfig, secrets: SecretReader | None) -> StoreDriver:
        """The driver for ``config`` (of this driver's type); ``secrets`` reads a ``secret_arn``'s fields."""

    @abstractmethod
    def add(self, image_id: str, chunks: Iterable[bytes], size: int, hashing_algo: str) -> AddResult:
        """Store ``size`` bytes (the chunks, in order) as image ``image_id``, replacing a previous copy.

        Returns the location and the md5 + ``hashing_algo`` digests of the bytes sent. On any failure nothing
        is left behind (segments and parts are removed).

        Raises:
            StoreSizeMismatchError: the chunks did not add up to ``size``.
            StoreIntegrityError: the backend's checksum of a segment/part differs from what was sent.
            StoreUnavailableError: a retryable backend failure.
        """

    @abstractmethod
    def get(self, url: str, offset: int = 0, length: int | None = None) -> StoreRead:
        """Stream ``length`` bytes (None: to the end) starting at ``offset`` from the object at ``url``.

        Raises:
            StoreNotFoundError: nothing at ``url``.
            StoreRangeError: ``offset`` is past the end.
        """

    @abstractmethod
    def get_size(self, url: str) -> int:
        """The size in bytes of what ``url`` holds (StoreNotFoundError if nothing)."""

    @abstractmethod
    def delete(self, url: str) -> None:
        """Delete everything behind ``url`` (large-object segments too). StoreNotFoundError if nothing."""

    @abstractmethod
    def owns(self, url: str) -> bool:
        """True if ``url`` names an object in this store's namespace (used to accept service-added locations)."""

    def properties(self) -> dict[str, Any]:
        """Driver settings shown by ``GET /v2/info/stores/detail`` (no credentials)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections."""


def key_from_secret(
    store_id: str, default_user: str, arn: str, secrets: SecretReader | None
) -> Callable[[], tuple[str, str]]:
    """A reader of (user, key) from the Secrets Manager secret ``arn``: its ``key`` field, and ``user`` when it
    has one. Nothing is read until the reader is called (the driver's first connection)."""
    if secrets is None:
        raise StoreConfigError(f"store {store_id}: secret_arn is set but no secret reader was given")
    read = secrets

    def from_secret() -> tuple[str, str]:
        fields = read(arn)
        if not fields.get("key"):
            raise StoreConfigError(f"store {store_id}: the secret has no 'key' field")
        return fields.get("user") or default_user, fields["key"]

    return from_secret
