"""Glance's download (``GET /v2/images/{id}/file``): nothing, a presigned redirect, or a (ranged) stream of chunks.

Plain arguments in and an iterator of byte chunks out (``Download.chunks``), so any entry point serves it. The
bytes come from the first preferred store holding the image (else the highest-weighted one); every download sends
Glance's ``image.send`` with the bytes that went out.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain.errors import InvalidInputError, InvalidRangeError, NotFoundError, StoreUnavailableError
from shared.domain.status import ImageStatus
from shared.stores.errors import StoreError, StoreNotFoundError, StoreRangeError
from shared.upload_bucket import RangeNotSatisfiableError, UploadBucket

if TYPE_CHECKING:
    from collections.abc import Iterator

    from shared.config import Settings
    from shared.domain.context import RequestContext
    from shared.domain.image import Image
    from shared.notifications.events import Events
    from shared.stores.registry import StoreSet

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")


@dataclass(frozen=True)
class Download:
    """How to answer GET /file: nothing (no data), a redirect, or ``length`` bytes of ``chunks``."""

    image: Image
    redirect: str | None = None
    chunks: Iterator[bytes] | None = None
    length: int = 0
    # "bytes a-b/total" for a ranged read, else None.
    content_range: str | None = None


@dataclass
class Downloads:
    """Serves image data; every image passed in was authorised for download."""

    bucket: UploadBucket
    stores: StoreSet
    settings: Settings
    events: Events

    def open(
        self,
        ctx: RequestContext,
        image: Image,
        range_header: str | None = None,
        content_range: str | None = None,
        prefer: str | None = None,
    ) -> Download:
        """The image's data from its best store (``prefer``: comma-separated store ids, in order)."""
        wanted = [p.strip() for p in (prefer or "").split(",") if p.strip()]
        order = self.stores.by_preference(image.stores, wanted)
        if image.status not in (ImageStatus.ACTIVE, ImageStatus.DEACTIVATED) or not order:
            return Download(image)
        location = image.location(order[0])
        assert location is not None
        byte_range = _byte_range(range_header, content_range)
        if location.store != self.stores.primary_id:
            return self._metered(ctx, self._from_store(image, location.store, location.url, byte_range))
        key = location.url.split("/", 3)[3]
        if self.settings.data_delivery == "redirect":
            url = self.bucket.presign_get(key, self.settings.presign_ttl_seconds)
            return self._metered(ctx, Download(image, redirect=url))
        try:
            read = self.bucket.read(key, byte_range)
        except RangeNotSatisfiableError:
            raise InvalidRangeError(detail=byte_range or "") from None
        download = Download(image, chunks=read.chunks, length=read.length, content_range=read.content_range)
        return self._metered(ctx, download)

    def _metered(self, ctx: RequestContext, download: Download) -> Download:
        """image.send: for a redirect, with the image size when the URL is issued (the bytes go from the store,
        docs/notifications.md); for a stream, with the bytes that went out, when it ends."""
        if download.redirect is not None:
            size = download.image.size or 0
            self.events.image_sent(download.image, size, size, ctx.project_id, ctx.user_id, ctx.request_id)
            return download
        assert download.chunks is not None
        return dataclasses.replace(download, chunks=self._counted(ctx, download))

    def _counted(self, ctx: RequestContext, download: Download) -> Iterator[bytes]:
        sent = 0
        try:
            for chunk in download.chunks or ():
                yield chunk
                sent += len(chunk)
        finally:
            self.events.image_sent(download.image, sent, download.length, ctx.project_id, ctx.user_id, ctx.request_id)

    def _from_store(self, image: Image, store: str, url: str, byte_range: str | None) -> Download:
        """A copy held by another store, streamed through the service (its driver reads it), or redirected to."""
        driver = self.stores.driver(store)
        if self.settings.data_delivery == "redirect" and driver.capabilities.presigned_gets:
            # as for the primary bucket: the client follows with its Range header, which S3 honours
            return Download(image, redirect=driver.presign_get(url, self.settings.presign_ttl_seconds))
        try:
            if byte_range is None:
                read = driver.get(url)  # one request; only a range needs the size first
            else:
                offset, length = _offset_length(byte_range, driver.get_size(url))
                read = driver.get(url, offset, length)
        except StoreRangeError:
            raise InvalidRangeError(detail=byte_range or "") from None
        except StoreNotFoundError:
            raise NotFoundError(kind="image data in store", id=store) from None
        except StoreError as exc:
            raise StoreUnavailableError(detail=f"store {store}: {type(exc).__name__}") from exc
        content = None
        if byte_range is not None:
            content = f"bytes {read.offset}-{read.offset + read.length - 1}/{read.total_size}"
        return Download(image, chunks=read.chunks, length=read.length, content_range=content)


def _offset_length(byte_range: str, total: int) -> tuple[int, int]:
    """An HTTP byte range (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) as offset and length within ``total``."""
    match = _RANGE.match(byte_range)
    assert match is not None
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = min(int(last), total)
        if suffix == 0:
            raise InvalidRangeError(detail=byte_range)
        return total - suffix, suffix
    start = int(first)
    if start >= total:
        raise InvalidRangeError(detail=byte_range)
    end = min(int(last), total - 1) if last else total - 1
    if end < start:
        raise InvalidRangeError(detail=byte_range)
    return start, end - start + 1


def _byte_range(range_header: str | None, content_range: str | None) -> str | None:
    """One HTTP range as S3 takes it; multiple ranges are refused (400) as in Glance."""
    if range_header:
        value = range_header.strip()
        if "," in value or not _RANGE.match(value) or value == "bytes=-":
            raise InvalidInputError(f"Invalid or unsupported Range header: {range_header}")
        return value
    if content_range:
        match = _CONTENT_RANGE.match(content_range.strip())
        if not match:
            raise InvalidInputError(f"Invalid Content-Range header: {content_range}")
        return f"bytes={match.group(1)}-{match.group(2)}"
    return None
