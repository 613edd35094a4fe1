"""Upload content inspection: Glance 33's format checks and qemu's probe on an image's bytes, fed chunk by chunk.

The entry point is ``ImageInspector``: built from what the uploader declared, fed every chunk in order (``feed``,
chunks of any size), it returns one ``Inspection`` verdict from ``finish``: what the bytes are, the virtual size
Glance would record, and whether the image must be refused. ``StreamDigest`` drives it in the same pass that
hashes the bytes; ``inspect`` does the same for chunks at hand. Every upload path (the S3 finaliser, ``PUT /file``,
staging and import) gets its verdict here.

Two views of the bytes, and both must agree with the declared ``disk_format``:

1. oslo.utils' ``format_inspector`` (what Glance runs), its verdict following ``glance.location.ImageProxy.set_data``
   with ``[image_format] require_image_format_match = True``:

   - ISO+GPT (a hybrid, bootable ISO) counts as ISO; any other multiple match is refused;
   - declared == detected: accepted, virtual size from the inspector;
   - detected raw, declared a format oslo cannot inspect (ami, aki, ari, ...): accepted, no virtual size;
   - declared raw, detected otherwise: Glance accepts it with the actual size as virtual size. We do that only for
     gpt and iso (a partition table, a filesystem: the raw driver reads them as they are) and refuse any other
     format unless ``allow_raw_mismatch``: an image whose metadata qemu would obey must not pass as raw;
   - anything else is refused; then the detected inspector's safety checks run, and a failure refuses the image,
     except GPT failures listed in ``gpt_safety_checks_nonfatal`` and, for aki/ari, the ``mbr`` check.

   ``require_format_match=False`` is Glance's ``require_image_format_match = False``: a format that does not match
   the declared one (or no single format at all, or a structure that cannot be read) is accepted without a virtual
   size. Unlike Glance, the detected format's safety checks still run: a mismatch setting is no reason to let a
   backing file or a data file through.

2. qemu's own probe (``shared.streams.qemu_probe``), which Glance does not run: content in which qemu would find
   a format other than the declared one is refused (declared raw: unless ``allow_raw_mismatch``), whether or not
   oslo recognised it. Without ``require_format_match`` only content declared raw is held to it: that is format
   confusion, not a format mismatch.

Containers (beyond Glance, which inspects ``bare`` only): ``bare``, ``ami``, ``aki``, ``ari`` and ``docker`` are
inspected as the disk they carry; ``ova`` and ``ovf`` tarballs have every disk member inspected as the declared
``disk_format`` (tar members streamed, the descriptor, manifest and certificate skipped) and the archive itself
probed by qemu; an ``ovf`` or ``ova`` upload that is not a tar archive is inspected as the disk itself.
``compressed`` (and no container) is not inspected: its bytes are not the disk until something unpacks them.

Memory stays small: oslo's inspectors keep only the regions they parse (at most about 1 MiB), this module holds
back less than one 64 KiB block, qemu's probe keeps 2 KiB from the start and 512 bytes from the end, and tar
members are inspected one at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.streams.archive_inspection import ArchiveInspector
from shared.streams.disk_inspection import ARCHIVE_CONTAINERS, DISK_CONTAINERS, DiskInspector, Inspection, Rules

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["ImageInspector", "Inspection", "inspect"]


class ImageInspector:
    """Detects and judges an image's format from its bytes, given in order in chunks of any size."""

    def __init__(
        self,
        disk_format: str | None,
        container_format: str | None,
        *,
        allow_raw_mismatch: bool = False,
        gpt_safety_checks_nonfatal: frozenset[str] = frozenset(),
        require_format_match: bool = True,
    ) -> None:
        """Args:
        disk_format: the format the uploader declared.
        container_format: the declared container: disk containers are inspected as the disk, ova/ovf tarballs
            member by member, compressed (or none) not at all.
        allow_raw_mismatch: accept any format declared raw, as Glance does (virtual size = actual size).
        gpt_safety_checks_nonfatal: GPT check names ("mbr") that only warn, as Glance's option of that name.
        require_format_match: refuse bytes that are not the declared format (Glance's require_image_format_match).
        """
        rules = Rules(disk_format, allow_raw_mismatch, gpt_safety_checks_nonfatal, require_format_match)
        self._inner: DiskInspector | ArchiveInspector | None = None
        if container_format in DISK_CONTAINERS:
            self._inner = DiskInspector(rules)
        elif container_format in ARCHIVE_CONTAINERS:
            self._inner = ArchiveInspector(rules)
        self._result: Inspection | None = None

    def feed(self, chunk: bytes) -> None:
        """Present the next chunk of the image (any size, empty included).

        Raises:
            RuntimeError: ``finish`` was already called.
        """
        if self._result is not None:
            raise RuntimeError("feed() called after finish()")
        if self._inner is not None and chunk:
            self._inner.feed(chunk)

    def finish(self) -> Inspection:
        """The verdict, once the last chunk has been fed (later calls return the same verdict)."""
        if self._result is None:
            self._result = Inspection(None, None, None) if self._inner is None else self._inner.finish()
        return self._result


def inspect(
    chunks: Iterable[bytes],
    disk_format: str | None,
    container_format: str | None,
    *,
    allow_raw_mismatch: bool = False,
    gpt_safety_checks_nonfatal: frozenset[str] = frozenset(),
    require_format_match: bool = True,
) -> Inspection:
    """The verdict on ``chunks`` (an image's bytes in order), as ``ImageInspector`` gives it."""
    inspector = ImageInspector(
        disk_format,
        container_format,
        allow_raw_mismatch=allow_raw_mismatch,
        gpt_safety_checks_nonfatal=gpt_safety_checks_nonfatal,
        require_format_match=require_format_match,
    )
    for chunk in chunks:
        inspector.feed(chunk)
    return inspector.finish()
