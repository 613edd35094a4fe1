"""The store driver interface: one image's bytes in one backend (Glance's glance_store ``Store``), as a template.

A driver is built from its store's configuration (``shared.stores.config``) and knows nothing of images beyond
their ids. The public operations are written once, here: ``add`` streams the bytes once through a ``SizedSource``
(exact size, md5 and the secure hash of exactly what was sent, so the caller can compare them with the image's
recorded checksums) and leaves nothing behind when it fails; ``get`` checks the range and streams (part of) what
a location holds; ``get_size``, ``delete``, ``owns`` and ``presign_get`` resolve the location first. Every
backend exception is mapped onto the ``StoreError`` tree (``shared.stores.errors``) through the driver's one
table, ``_backend_error``.

A driver implements only its primitive calls (``_write``, ``_open``, ``_size``, ``_delete`` ...) and declares
what its backend can do as ``StoreCapabilities``, which callers read instead of probing the driver. Location
URLs never carry credentials: they name the store's own namespace (bucket, container, directory, pool).
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from shared.stores.errors import (
    StoreConfigError,
    StoreError,
    StoreIntegrityError,
    StoreRangeError,
    StoreSizeMismatchError,
)
from shared.stores.sized_source import SizedSource, SourceFailedError
from shared.streams.digest import StreamDigest

if TYPE_CHECKING:
    from shared.stores.config import StoreConfig
    from shared.stores.credentials import SecretReader

# The error tree is part of this interface: callers catch it from here or from shared.stores.errors.
__all__ = [
    "AddResult",
    "Opened",
    "ReadStream",
    "StoreCapabilities",
    "StoreDriver",
    "StoreRead",
]

# What a driver resolves a location to: an object key, (container, object), a file path, (image, snapshot).
Ref = TypeVar("Ref")

_MD5_HEX = re.compile(r"[0-9a-f]{32}")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreCapabilities:
    """What a store's backend can do, declared by its driver as data (callers and the template read it)."""

    # get() from an offset or of a length (glance_store's READ_RANDOM); without it a ranged get is a StoreRangeError.
    ranged_reads: bool = True
    # Writes of at least this many bytes take the driver's large-object path (S3 multipart, Swift SLO); None: none.
    large_object_size: int | None = None
    # presign_get() gives a short-lived URL that clients GET the bytes from directly (downloads by redirect).
    presigned_gets: bool = False
    # A single-object write answers with the backend's own md5 of what it stored (Swift's ETag): that is the
    # checksum, and only the secure hash is computed here. Otherwise an md5 the write reports is checked.
    stored_md5: bool = False


@dataclass(frozen=True)
class AddResult:
    """What ``add`` wrote (Glance's 5-tuple: url, size, md5, multihash, metadata)."""

    url: str
    size: int
    checksum: str
    multihash: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Opened:
    """What a driver's ``_open`` gives: ``length`` bytes as chunks, and the object's size when the backend said."""

    chunks: Iterator[bytes]
    length: int
    # None: the backend did not say (an HTTP answer without Content-Range)
    total_size: int | None
    # Releases the backend's stream (a connection, a file), whether or not the chunks were read.
    close: Callable[[], None]


class ReadStream(Iterator[bytes]):
    """The chunks of an open read: backend errors are mapped as they come, and the backend's stream is released
    at the end, on an error, or on ``close()`` (read or not)."""

    def __init__(self, opened: Opened, mapped: Callable[[], AbstractContextManager[None]]) -> None:
        self._chunks = opened.chunks
        self._release = opened.close
        self._mapped = mapped
        self._closed = False

    def __next__(self) -> bytes:
        if self._closed:
            raise StopIteration
        try:
            with self._mapped():
                chunk = next(self._chunks, None)
        except BaseException:
            self.close()
            raise
        if chunk is None:
            self.close()
            raise StopIteration
        return chunk

    def close(self) -> None:
        """Release the backend's stream."""
        if not self._closed:
            self._closed = True
            self._release()


@dataclass(frozen=True)
class StoreRead:
    """An open read of a location: ``length`` bytes from ``offset`` of an object of ``total_size`` bytes."""

    chunks: ReadStream
    length: int
    total_size: int
    offset: int = 0

    def close(self) -> None:
        """Release what the read holds open, when its chunks are not read to the end."""
        self.chunks.close()


def _nothing() -> None:
    """Nothing to release."""


def _empty(total_size: int, offset: int) -> StoreRead:
    return StoreRead(ReadStream(Opened(iter(()), 0, total_size, _nothing), nullcontext), 0, total_size, offset)


def byte_span(offset: int, length: int | None, total: int) -> int:
    """How many bytes a read of ``length`` (None: to the end) from ``offset`` gets of ``total``; clipped at the end.

    Raises:
        StoreRangeError: ``offset`` is past the end (offset 0 of an empty object is not).
    """
    if offset >= total and not (offset == 0 and total == 0):
        raise StoreRangeError(f"offset {offset} is past the end of a {total}-byte image")
    return total - offset if length is None else min(length, total - offset)


class StoreDriver(ABC, Generic[Ref]):
    """One configured store. Instances are built once per process and reused; clients are made lazily."""

    # The ``type`` a store's configuration names (the registry key).
    type_name: ClassVar[str]
    # Characters (besides "/" and NUL, which no backend's names take) and prefixes an image id may not have here.
    reserved_id_chars: ClassVar[str] = ""
    reserved_id_prefixes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, store_id: str, capabilities: StoreCapabilities) -> None:
        self.store_id = store_id
        self.capabilities = capabilities

    @classmethod
    @abstractmethod
    def from_config(cls, store_id: str, config: StoreConfig, secrets: SecretReader | None) -> StoreDriver[Any]:
        """The driver for ``config`` (of this driver's type); ``secrets`` reads a ``secret_arn``'s fields."""

    # -- the operations -------------------------------------------------------------------------

    def add(self, image_id: str, chunks: Iterable[bytes], size: int, hashing_algo: str) -> AddResult:
        """Store ``size`` bytes (the chunks, in order) as image ``image_id``, replacing a previous copy.

        Returns the location and the md5 + ``hashing_algo`` digests of the bytes sent. On any failure nothing
        is left behind (segments and parts are removed); a failure of ``chunks`` itself is raised unchanged.

        Raises:
            StoreSizeMismatchError: the chunks did not add up to ``size``.
            StoreIntegrityError: the backend's checksum of the object, a segment or a part differs from what was sent.
            StoreConfigError: ``image_id`` cannot name an object of this store.
            StoreUnavailableError: a retryable backend failure.
        """
        ref = self._ref_for(self._checked_id(image_id))
        if size < 0:
            raise StoreSizeMismatchError(f"a size of {size} bytes")
        large_size = self.capabilities.large_object_size
        large = large_size is not None and size >= large_size
        trusted = self.capabilities.stored_md5 and not large
        what = f"store {self.store_id}: adding {image_id}"
        written = False
        with StreamDigest(hashing_algo, None, size, md5=not trusted) as digest:
            source = SizedSource(chunks, size, digest)
            try:
                with self._mapped(what):
                    reported = self._write_large(ref, source) if large else self._write(ref, source)
                    written = True
                    source.finish()
                hashes = digest.finish()
                checksum = self._verified_md5(reported, hashes.checksum, trusted, what)
            except BaseException:
                if written:
                    self._discard_quietly(ref, what)
                if source.error is not None:  # the chunk iterator's own failure, unchanged
                    raise source.error from None
                raise
        return AddResult(self._url_for(ref), size, checksum, hashes.os_hash_value)

    def get(self, url: str, offset: int = 0, length: int | None = None) -> StoreRead:
        """Stream ``length`` bytes (None: to the end) starting at ``offset`` from the object at ``url``.

        Raises:
            StoreNotFoundError: nothing at ``url``.
            StoreRangeError: ``offset`` is past the end, or a range of a store without ranged reads.
        """
        ref = self._locate(url)
        if offset < 0 or (length is not None and length < 0):
            raise StoreRangeError(f"store {self.store_id}: offset {offset}, length {length}")
        ranged = offset > 0 or length is not None
        if ranged and not self.capabilities.ranged_reads:
            raise StoreRangeError(f"store {self.store_id} reads no byte ranges")
        what = f"store {self.store_id}: reading {url}"
        if length == 0:
            total = self.get_size(url)
            byte_span(offset, 0, total)
            return _empty(total, offset)
        try:
            with self._mapped(what):
                opened = self._open(ref, offset, length)
        except StoreRangeError:
            # HTTP stores find any range of an empty object unsatisfiable; from 0 it is just an empty read
            if offset == 0 and self.get_size(url) == 0:
                return _empty(0, 0)
            raise
        total_size = opened.total_size
        if total_size is None:
            if ranged:
                opened.close()
                raise StoreError(f"{what}: the backend ignored the range")
            total_size = opened.length
        return StoreRead(ReadStream(opened, lambda: self._mapped(what)), opened.length, total_size, offset)

    def get_size(self, url: str) -> int:
        """The size in bytes of what ``url`` holds (StoreNotFoundError if nothing)."""
        ref = self._locate(url)
        with self._mapped(f"store {self.store_id}: sizing {url}"):
            return self._size(ref)

    def delete(self, url: str) -> None:
        """Delete everything behind ``url`` (large-object segments too).

        Raises:
            StoreNotFoundError: nothing at ``url``.
            StoreInUseError: the backend refuses while others use it (RBD clones).
        """
        ref = self._locate(url)
        with self._mapped(f"store {self.store_id}: deleting {url}"):
            self._delete(ref)

    def owns(self, url: str) -> bool:
        """True if ``url`` names an object in this store's namespace (used to accept service-added locations).

        A store that cannot tell now (an unreachable cluster whose fsid it must learn) owns nothing.
        """
        try:
            return self._parse(url) is not None
        except StoreError as exc:
            logger.warning("store %s cannot tell whether it owns a location: %s", self.store_id, exc)
            return False

    def url_for(self, image_id: str) -> str:
        """The location ``add`` gives image ``image_id`` (StoreConfigError if the id cannot name one here)."""
        return self._url_for(self._ref_for(self._checked_id(image_id)))

    def presign_get(self, url: str, ttl_seconds: int) -> str:
        """A URL that GETs the object at ``url`` directly for ``ttl_seconds`` (``capabilities.presigned_gets``).

        Raises:
            StoreConfigError: this store gives no presigned GETs, or ``url`` is not one of its locations.
        """
        if not self.capabilities.presigned_gets:
            raise StoreConfigError(f"store {self.store_id} gives no presigned GETs")
        ref = self._locate(url)
        with self._mapped(f"store {self.store_id}: presigning {url}"):
            return self._presign_get(ref, ttl_seconds)

    def properties(self) -> dict[str, Any]:
        """Driver settings shown by ``GET /v2/info/stores/detail`` (no credentials)."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and connections."""

    # -- what the template shares ---------------------------------------------------------------

    def _checked_id(self, image_id: str) -> str:
        reserved = "/\0" + self.reserved_id_chars
        if not image_id or any(c in image_id for c in reserved) or image_id.startswith(self.reserved_id_prefixes):
            raise StoreConfigError(f"store {self.store_id}: {image_id!r} cannot name an image here")
        return image_id

    def _locate(self, url: str) -> Ref:
        ref = self._parse(url)
        if ref is None:
            raise StoreConfigError(f"store {self.store_id}: not one of its locations: {url!r}")
        return ref

    @contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        """Turn the backend's exceptions into store errors; store errors and the caller's own pass unchanged."""
        try:
            yield
        except (StoreError, SourceFailedError):
            raise
        except Exception as exc:
            error = self._backend_error(exc, what)
            if error is None:
                raise
            raise error from exc

    def _verified_md5(self, reported: str | None, computed: str, trusted: bool, what: str) -> str:
        if trusted:
            stored = (reported or "").strip('"').lower()
            if not _MD5_HEX.fullmatch(stored):
                raise StoreIntegrityError(f"{what}: the backend's ETag {reported!r} is not an md5")
            return stored
        if reported is not None and reported != computed:
            raise StoreIntegrityError(f"{what}: the backend reports md5 {reported!r}, the bytes sent have {computed}")
        return computed

    def _discard_quietly(self, ref: Ref, what: str) -> None:
        try:
            with self._mapped(what):
                self._discard(ref)
        except Exception as exc:
            # the add's own failure is what the caller must see; delete() can finish this later
            logger.warning("%s: could not remove what the failed write left: %s", what, exc)

    # -- the primitives a driver implements -----------------------------------------------------

    @abstractmethod
    def _parse(self, url: str) -> Ref | None:
        """What ``url`` names in this store, or None when it is not one of this store's locations."""

    @abstractmethod
    def _ref_for(self, image_id: str) -> Ref:
        """Where ``add`` writes image ``image_id`` (already checked against the reserved characters)."""

    @abstractmethod
    def _url_for(self, ref: Ref) -> str:
        """The location URL of ``ref``."""

    @abstractmethod
    def _write(self, ref: Ref, source: SizedSource) -> str | None:
        """Write all of ``source`` as one object at ``ref``; returns the md5 the backend reports, if it does.

        On failure, remove whatever the write left (temporary names, parts) before raising.
        """

    def _write_large(self, ref: Ref, source: SizedSource) -> str | None:
        """The large-object write (drivers that declare ``large_object_size``); as ``_write`` otherwise."""
        return self._write(ref, source)

    @abstractmethod
    def _discard(self, ref: Ref) -> None:
        """Remove what a completed write put at ``ref``: the template found it wrong (size, md5)."""

    @abstractmethod
    def _open(self, ref: Ref, offset: int, length: int | None) -> Opened:
        """Open a read of ``length`` bytes (None: to the end, never 0) from ``offset`` (StoreRangeError past it)."""

    @abstractmethod
    def _size(self, ref: Ref) -> int:
        """The size of the object at ``ref`` (StoreNotFoundError if none)."""

    @abstractmethod
    def _delete(self, ref: Ref) -> None:
        """Delete everything behind ``ref`` (StoreNotFoundError if nothing)."""

    def _presign_get(self, ref: Ref, ttl_seconds: int) -> str:
        """A presigned GET of ``ref`` (drivers that declare ``presigned_gets``)."""
        raise StoreConfigError(f"store {self.store_id} gives no presigned GETs")

    @abstractmethod
    def _backend_error(self, exc: Exception, what: str) -> StoreError | None:
        """The store error for an exception of the backend's SDK, or None for one that is not the backend's."""
