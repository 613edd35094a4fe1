"""Download an image's data with verification: size, MD5 and the image's secure hash, computed while writing.

The bytes go to ``FILE.part`` first and are renamed to ``FILE`` only once every check passed; an interrupted
download resumes from what ``FILE.part`` holds (a range request; the bytes already there are hashed again). A
redirect to a presigned S3 GET is followed without the API's credentials.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import urllib3

from sglance.api import ImageApi
from sglance.errors import ChecksumMismatchError, UploadConflictError
from sglance.hashing import StreamDigest, read_chunks
from sglance.progress import NoProgress, Progress
from sglance.sources import ApiSource

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class DownloadResult:
    """What one download did: the image's digests (verified), and the bytes this run received."""

    image_id: str
    path: str
    size: int
    checksum: str | None
    os_hash_algo: str | None
    os_hash_value: str | None
    bytes_received: int
    resumed_from: int
    seconds: float


class Downloader:
    """Downloads image data from ``api``, following redirects with ``pool``."""

    def __init__(self, api: ImageApi, pool: urllib3.PoolManager | None = None) -> None:
        self.api = api
        self.pool = pool or urllib3.PoolManager(num_pools=4, maxsize=8)

    def download(
        self, image_id: str, path: str | Path | None, progress: Progress | None = None, *, resume: bool = True
    ) -> DownloadResult:
        """Write the data of ``image_id`` to ``path`` (None: standard output), verified.

        Raises:
            UploadConflictError: the image has no data yet (not ``active`` or ``deactivated``).
            ChecksumMismatchError: what arrived is not the image (the file is removed; stdout already got it).
        """
        image = self.api.show(image_id)
        if image.get("status") not in ("active", "deactivated") or image.get("size") is None:
            raise UploadConflictError(f"image {image_id} is {image.get('status')}: it has no data to download")
        size = int(image["size"])
        bars = progress or NoProgress()
        if path is None:
            return self._run(image, size, sys.stdout.buffer, "-", 0, bars)
        target = Path(path)
        partial = target.with_name(target.name + PART_SUFFIX)
        offset = partial.stat().st_size if resume and partial.exists() else 0
        if offset > size:
            offset = 0
        with partial.open("ab" if offset else "wb") as out:
            try:
                result = self._run(image, size, out, str(target), offset, bars, partial)
            except ChecksumMismatchError:
                partial.unlink(missing_ok=True)
                raise
        os.replace(partial, target)
        return result

    def _run(
        self,
        image: dict[str, Any],
        size: int,
        out: BinaryIO,
        label: str,
        offset: int,
        bars: Progress,
        partial: Path | None = None,
    ) -> DownloadResult:
        image_id = str(image["id"])
        algorithm = image.get("os_hash_algo")
        digest = StreamDigest(str(algorithm) if algorithm else None)
        started = time.monotonic()
        try:
            bars.begin("checking" if offset else "downloading", size, 0)
            if offset and partial is not None:
                digest.feed(read_chunks(partial, offset=0), bars)
                bars.begin("downloading", size, offset)
            if size > offset:
                source = ApiSource(self.api, image_id, size, self.pool)
                for chunk in source.chunks(offset, size - offset, threading.Event()):
                    out.write(chunk)
                    digest.update(chunk)
                    bars.advance(len(chunk))
            out.flush()
            _verify(image, digest)
        finally:
            digest.close()
            bars.close()
        return DownloadResult(
            image_id=image_id,
            path=label,
            size=size,
            checksum=image.get("checksum"),
            os_hash_algo=algorithm,
            os_hash_value=image.get("os_hash_value"),
            bytes_received=size - offset,
            resumed_from=offset,
            seconds=time.monotonic() - started,
        )


def _verify(image: dict[str, Any], digest: StreamDigest) -> None:
    checks: dict[str, tuple[object, object]] = {"size": (image.get("size"), digest.size)}
    if image.get("checksum"):
        checks["checksum"] = (image["checksum"], digest.md5)
    algorithm = image.get("os_hash_algo")
    if algorithm and image.get("os_hash_value"):
        checks["os_hash_value"] = (image["os_hash_value"], digest.hexdigest(str(algorithm)))
    mismatches = {name: pair for name, pair in checks.items() if pair[0] != pair[1]}
    if mismatches:
        raise ChecksumMismatchError(str(image["id"]), mismatches)
