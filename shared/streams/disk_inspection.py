"""One disk's bytes judged in order: oslo's detection and safety checks, then qemu's probe (``DiskInspector``), and
the verdict they give (``Inspection``). ``shared.streams.inspection`` (the entry point) documents the rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, cast

from oslo_utils.imageutils import format_inspector

from shared.streams import qemu_probe

if TYPE_CHECKING:
    from collections.abc import Mapping

LOG = logging.getLogger(__name__)

# oslo's inspectors only see each block once and some decide where to look next only after a block ends, so a
# block that spans several structures makes them miss one (a VHDX fed in 8 MiB chunks never finds its size).
# Glance reads in glance_store's 64 KiB chunks; re-blocking to that size makes the verdict the same for any
# chunking the caller uses.
INSPECTION_BLOCK = 64 * 1024

# Detected formats that qemu's raw driver reads as they are; any other detected format carries metadata qemu
# would interpret (backing files, extents, data files), so declaring it raw is format confusion.
RAW_COMPATIBLE_FORMATS = frozenset({"raw", "gpt", "iso"})

# Containers whose bytes are the disk itself (Glance inspects "bare" only), and tarballs holding disks.
DISK_CONTAINERS = frozenset({"bare", "ami", "aki", "ari", "docker"})
ARCHIVE_CONTAINERS = frozenset({"ova", "ovf"})

# Kernels and ramdisks may carry a recognisable but deliberately invalid MBR (Glance: mbr is never fatal). As in
# Glance this only matters for gpt content, which the format match already refuses for aki/ari; kept for parity.
MBR_CHECK_EXEMPT = frozenset({"aki", "ari"})

INSPECTION_FAILED = "format inspection failed"


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


class Refused(Exception):
    """Ends the verdict early with a reason the uploader may read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Mismatch(Refused):
    """The bytes are not the declared format (or no single format): refused only when a match is required."""


class BlockSource:
    """The readable that ``InspectWrapper`` pulls from: each read returns the block pushed just before it."""

    def __init__(self) -> None:
        self.block = b""

    def read(self, size: int = -1) -> bytes:
        """The pending block, once."""
        block, self.block = self.block, b""
        return block


class ProbeWindow:
    """The bytes qemu's probe looks at: the first ``PROBE_BYTES`` and the last ``TRAILER_BYTES`` of a stream."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = b""

    def feed(self, chunk: bytes | memoryview) -> None:
        """The next chunk, in order."""
        if len(self.head) < qemu_probe.PROBE_BYTES:
            self.head += chunk[: qemu_probe.PROBE_BYTES - len(self.head)]
        if len(chunk) >= qemu_probe.TRAILER_BYTES:
            self.tail = bytes(chunk[-qemu_probe.TRAILER_BYTES :])
        elif chunk:
            self.tail = (self.tail + bytes(chunk))[-qemu_probe.TRAILER_BYTES :]

    def driver(self) -> str | None:
        """The qemu driver that would claim the stream (None: raw)."""
        return qemu_probe.probe(bytes(self.head), self.tail)


@dataclass(frozen=True)
class Rules:
    """What the uploader declared and how strictly the bytes must match it (see ``ImageInspector``)."""

    disk_format: str | None
    allow_raw_mismatch: bool
    gpt_nonfatal: frozenset[str]
    require_match: bool


class DiskInspector:
    """One disk's bytes, in order: oslo's detection and safety checks, then qemu's probe."""

    def __init__(self, rules: Rules) -> None:
        self._disk_format = rules.disk_format
        self._allow_raw_mismatch = rules.allow_raw_mismatch
        self._gpt_nonfatal = rules.gpt_nonfatal
        self._require_match = rules.require_match
        self._source = BlockSource()
        # The wrapper only ever calls read() and close() on its source.
        self._wrapper = format_inspector.InspectWrapper(cast("IO[bytes]", self._source))
        self._window = ProbeWindow()
        self._pending = bytearray()

    def feed(self, chunk: bytes | memoryview) -> None:
        """The next chunk of the disk (any size)."""
        self._window.feed(chunk)
        start = 0
        if self._pending:
            start = INSPECTION_BLOCK - len(self._pending)
            self._pending += chunk[:start]
            if len(self._pending) < INSPECTION_BLOCK:
                return
            self._push(bytes(self._pending))
            self._pending.clear()
        end = len(chunk) - (len(chunk) - start) % INSPECTION_BLOCK
        for offset in range(start, end, INSPECTION_BLOCK):
            self._push(bytes(chunk[offset : offset + INSPECTION_BLOCK]))
        self._pending += chunk[end:]

    def _push(self, block: bytes) -> None:
        self._source.block = block
        self._wrapper.read(len(block))

    def finish(self) -> Inspection:
        """The verdict on everything fed."""
        if self._pending:
            self._push(bytes(self._pending))
            self._pending.clear()
        self._wrapper.close()
        verdict = self._oslo_verdict()
        if verdict.error is not None:
            return verdict
        return self._qemu_verdict(verdict)

    def _oslo_verdict(self) -> Inspection:
        try:
            inspector = self._detected(self._wrapper)
        except Refused as refusal:
            if not self._require_match:
                LOG.warning("format match not required, accepting: %s", refusal.reason)
                return Inspection(None, None, None)
            return Inspection(None, None, refusal.reason)
        except Exception:
            # oslo's own properties can fail on hostile bytes (Glance: "Image format inspection failed").
            LOG.exception("format detection raised")
            if not self._require_match:
                return Inspection(None, None, None)
            return Inspection(None, None, f"{INSPECTION_FAILED}: the image structure could not be read")
        return self._judge(inspector)

    def _qemu_verdict(self, verdict: Inspection) -> Inspection:
        """Refuse what qemu would read as a format other than the declared one."""
        declared = self._disk_format
        driver = self._window.driver()
        if driver is None:
            return verdict
        found = qemu_probe.GLANCE_FORMATS.get(driver)
        if found == declared or (declared == "raw" and self._allow_raw_mismatch):
            return verdict
        if declared != "raw" and not self._require_match:
            LOG.warning("format match not required, accepting %s that qemu reads as %s", declared, driver)
            return verdict
        hint = f" (upload it with disk_format {found})" if found else ""
        return Inspection(
            found or driver,
            None,
            f"disk_format {declared} does not match the image data, which qemu reads as {driver}{hint}",
        )

    @staticmethod
    def _detected(wrapper: format_inspector.InspectWrapper) -> format_inspector.FileInspector:
        matches = wrapper.formats
        if not matches:
            raise Mismatch(f"{INSPECTION_FAILED}: no format could be determined")
        by_name = {str(match): match for match in matches}
        if by_name.keys() == {"iso", "gpt"}:
            # A bootable-as-disk ISO legitimately carries a GPT in its system area.
            return by_name["iso"]
        if len(by_name) > 1:
            raise Mismatch(f"image data matches several formats ({', '.join(sorted(by_name))})")
        return matches[0]

    def _judge(self, inspector: format_inspector.FileInspector) -> Inspection:
        detected = str(inspector)
        confused = self._disk_format == "raw" and detected not in RAW_COMPATIBLE_FORMATS
        try:
            virtual_size = None if confused and not self._allow_raw_mismatch else self._matched_size(inspector)
            self._check_safety(inspector)
        except Refused as refusal:
            return Inspection(detected, None, refusal.reason)
        except format_inspector.ImageFormatError as exc:
            return Inspection(detected, None, f"{INSPECTION_FAILED}: {detected}: {_lower_first(str(exc))}")
        except Exception:
            LOG.exception("%s inspection raised", detected)
            return Inspection(detected, None, f"{INSPECTION_FAILED}: the {detected} structure could not be read")
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
        except Mismatch as mismatch:
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
        raise Mismatch(f"disk_format {declared} does not match the image data, which is {detected}")

    def _check_safety(self, inspector: format_inspector.FileInspector) -> None:
        try:
            inspector.safety_check()
        except format_inspector.SafetyCheckFailed as exc:
            fatal = set(exc.failures) - self._gpt_nonfatal
            if self._disk_format in MBR_CHECK_EXEMPT:
                fatal.discard("mbr")
            if inspector.NAME == "gpt" and not fatal:
                LOG.warning("non-fatal gpt safety check failures: %s", describe(exc.failures))
                return
            raise Refused(f"{inspector} image refused: {describe(exc.failures)}") from exc


def describe(failures: Mapping[str, object]) -> str:
    return "; ".join(f"{check}: {_lower_first(str(reason)) or 'failed'}" for check, reason in failures.items())


def _lower_first(text: str) -> str:
    """'Image has a backing file' -> 'image has a backing file', but 'MBR PTE 0 ...' stays as it is."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
