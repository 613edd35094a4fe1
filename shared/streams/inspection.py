"""Upload content inspection: Glance 33's format checks on an image's bytes, fed chunk by chunk.

The entry point is ``ImageInspector``: built from what the uploader declared, fed every chunk in order (``feed``,
chunks of any size), it returns one ``Inspection`` verdict from ``finish``: what the bytes are, the virtual size
Glance would record, and whether the image must be refused. ``StreamDigest`` drives it in the same pass that
hashes the bytes; ``inspect`` does the same for chunks at hand. Further checks (qemu's view of the image) belong
inside ``finish``, so every caller gets them through the same verdict. Detection and
safety checks are oslo.utils' ``format_inspector`` (what Glance runs); the verdict follows
``glance.location.ImageProxy.set_data`` with ``[image_format] require_image_format_match = True``:

- only ``container_format == "bare"`` is inspected (anything else passes with nothing detected);
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

Memory stays small: oslo's inspectors keep only the regions they parse (at most about 1 MiB), and this module
holds back less than one 64 KiB block.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, cast

from oslo_utils.imageutils import format_inspector

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

LOG = logging.getLogger(__name__)

# oslo's inspectors only see each block once and some decide where to look next only after a block ends, so a
# block that spans several structures makes them miss one (a VHDX fed in 8 MiB chunks never finds its size).
# Glance reads in glance_store's 64 KiB chunks; re-blocking to that size makes the verdict the same for any
# chunking the caller uses.
INSPECTION_BLOCK = 64 * 1024

# Detected formats that qemu's raw driver reads as they are; any other detected format carries metadata qemu
# would interpret (backing files, extents, data files), so declaring it raw is format confusion.
RAW_COMPATIBLE_FORMATS = frozenset({"raw", "gpt", "iso"})

# Kernels and ramdisks may carry a recognisable but deliberately invalid MBR (Glance: mbr is never fatal). As in
# Glance this only matters for gpt content, which the format match already refuses for aki/ari; kept for parity.
_MBR_CHECK_EXEMPT = frozenset({"aki", "ari"})

_INSPECTION_FAILED = "format inspection failed"


@dataclass(frozen=True)
class Inspection:
    """What the bytes are and whether the image may become active (``error`` None) or must be refused."""

    detected_format: str | None
    virtual_size: int | None
    error: str | None

    @property
    def accepted(self) -> bool:
        """True when nothing in the content stops the image from becoming active."""
        return self.error is None


class _Refused(Exception):
    """Ends the verdict early with a reason the uploader may read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Mismatch(_Refused):
    """The bytes are not the declared format (or no single format): refused only when a match is required."""


class _BlockSource:
    """The readable that ``InspectWrapper`` pulls from: each read returns the block pushed just before it."""

    def __init__(self) -> None:
        self.block = b""

    def read(self, size: int = -1) -> bytes:
        """The pending block, once."""
        block, self.block = self.block, b""
        return block


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
        container_format: the declared container; only "bare" images are inspected.
        allow_raw_mismatch: accept any format declared raw, as Glance does (virtual size = actual size).
        gpt_safety_checks_nonfatal: GPT check names ("mbr") that only warn, as Glance's option of that name.
        require_format_match: refuse bytes that are not the declared format (Glance's require_image_format_match).
        """
        self._disk_format = disk_format
        self._allow_raw_mismatch = allow_raw_mismatch
        self._require_match = require_format_match
        self._gpt_nonfatal = gpt_safety_checks_nonfatal
        self._source = _BlockSource()
        self._wrapper: format_inspector.InspectWrapper | None = None
        if container_format == "bare":
            # The wrapper only ever calls read() and close() on its source.
            self._wrapper = format_inspector.InspectWrapper(cast("IO[bytes]", self._source))
        self._pending = bytearray()
        self._result: Inspection | None = None

    def feed(self, chunk: bytes) -> None:
        """Present the next chunk of the image (any size, empty included).

        Raises:
            RuntimeError: ``finish`` was already called.
        """
        if self._result is not None:
            raise RuntimeError("feed() called after finish()")
        wrapper = self._wrapper
        if wrapper is None:
            return
        start = 0
        if self._pending:
            start = INSPECTION_BLOCK - len(self._pending)
            self._pending += chunk[:start]
            if len(self._pending) < INSPECTION_BLOCK:
                return
            self._push(wrapper, bytes(self._pending))
            self._pending.clear()
        end = len(chunk) - (len(chunk) - start) % INSPECTION_BLOCK
        for offset in range(start, end, INSPECTION_BLOCK):
            self._push(wrapper, chunk[offset : offset + INSPECTION_BLOCK])
        self._pending += chunk[end:]

    def finish(self) -> Inspection:
        """The verdict, once the last chunk has been fed (later calls return the same verdict)."""
        if self._result is None:
            self._result = self._conclude()
        return self._result

    def _push(self, wrapper: format_inspector.InspectWrapper, block: bytes) -> None:
        self._source.block = block
        wrapper.read(len(block))

    def _conclude(self) -> Inspection:
        wrapper = self._wrapper
        if wrapper is None:
            return Inspection(None, None, None)
        if self._pending:
            self._push(wrapper, bytes(self._pending))
            self._pending.clear()
        wrapper.close()
        try:
            inspector = self._detected(wrapper)
        except _Refused as refusal:
            if not self._require_match:
                LOG.warning("format match not required, accepting: %s", refusal.reason)
                return Inspection(None, None, None)
            return Inspection(None, None, refusal.reason)
        except Exception:
            # oslo's own properties can fail on hostile bytes (Glance: "Image format inspection failed").
            LOG.exception("format detection raised")
            if not self._require_match:
                return Inspection(None, None, None)
            return Inspection(None, None, f"{_INSPECTION_FAILED}: the image structure could not be read")
        return self._judge(inspector)

    @staticmethod
    def _detected(wrapper: format_inspector.InspectWrapper) -> format_inspector.FileInspector:
        matches = wrapper.formats
        if not matches:
            raise _Mismatch(f"{_INSPECTION_FAILED}: no format could be determined")
        by_name = {str(match): match for match in matches}
        if by_name.keys() == {"iso", "gpt"}:
            # A bootable-as-disk ISO legitimately carries a GPT in its system area.
            return by_name["iso"]
        if len(by_name) > 1:
            raise _Mismatch(f"image data matches several formats ({', '.join(sorted(by_name))})")
        return matches[0]

    def _judge(self, inspector: format_inspector.FileInspector) -> Inspection:
        detected = str(inspector)
        confused = self._disk_format == "raw" and detected not in RAW_COMPATIBLE_FORMATS
        try:
            virtual_size = None if confused and not self._allow_raw_mismatch else self._matched_size(inspector)
            self._check_safety(inspector)
        except _Refused as refusal:
            return Inspection(detected, None, refusal.reason)
        except format_inspector.ImageFormatError as exc:
            return Inspection(detected, None, f"{_INSPECTION_FAILED}: {detected}: {_lower_first(str(exc))}")
        except Exception:
            LOG.exception("%s inspection raised", detected)
            return Inspection(detected, None, f"{_INSPECTION_FAILED}: the {detected} structure could not be read")
        if confused and not self._allow_raw_mismatch:
            return Inspection(
                detected,
                None,
                f"disk_format raw does not match the image data, which is {detected} "
                f"(upload it with disk_format {detected})",
            )
        return Inspection(detected, virtual_size if virtual_size and virtual_size > 0 else None, None)

    def _matched_size(self, inspector: format_inspector.FileInspector) -> int | None:
        """The virtual size to record; a mismatch refuses only when a match is required (then: no size)."""
        try:
            return self._virtual_size(inspector)
        except _Mismatch as mismatch:
            if self._require_match:
                raise
            LOG.warning("format match not required, accepting without a virtual size: %s", mismatch.reason)
            return None

    def _virtual_size(self, inspector: format_inspector.FileInspector) -> int | None:
        detected, declared = str(inspector), self._disk_format
        if detected == declared:
            return inspector.virtual_size
        if detected == "raw" and declared not in format_inspector.ALL_FORMATS:
            return None
        if declared == "raw":
            LOG.warning("image declared raw holds %s; using its actual size as virtual size", detected)
            return inspector.actual_size
        raise _Mismatch(f"disk_format {declared} does not match the image data, which is {detected}")

    def _check_safety(self, inspector: format_inspector.FileInspector) -> None:
        try:
            inspector.safety_check()
        except format_inspector.SafetyCheckFailed as exc:
            fatal = set(exc.failures) - self._gpt_nonfatal
            if self._disk_format in _MBR_CHECK_EXEMPT:
                fatal.discard("mbr")
            if inspector.NAME == "gpt" and not fatal:
                LOG.warning("non-fatal gpt safety check failures: %s", _describe(exc.failures))
                return
            raise _Refused(f"{inspector} image refused: {_describe(exc.failures)}") from exc


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


def _describe(failures: Mapping[str, object]) -> str:
    return "; ".join(f"{check}: {_lower_first(str(reason)) or 'failed'}" for check, reason in failures.items())


def _lower_first(text: str) -> str:
    """'Image has a backing file' -> 'image has a backing file', but 'MBR PTE 0 ...' stays as it is."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
