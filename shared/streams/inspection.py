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

import logging
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, cast

from oslo_utils.imageutils import format_inspector

from shared.streams import qemu_probe

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

# Containers whose bytes are the disk itself (Glance inspects "bare" only), and tarballs holding disks.
DISK_CONTAINERS = frozenset({"bare", "ami", "aki", "ari", "docker"})
ARCHIVE_CONTAINERS = frozenset({"ova", "ovf"})
# Members of an OVF package that are not disks: the descriptor, the manifest, the certificate, VMware's NVRAM.
_NON_DISK_SUFFIXES = (".ovf", ".mf", ".cert", ".nvram")

# Kernels and ramdisks may carry a recognisable but deliberately invalid MBR (Glance: mbr is never fatal). As in
# Glance this only matters for gpt content, which the format match already refuses for aki/ari; kept for parity.
_MBR_CHECK_EXEMPT = frozenset({"aki", "ari"})

_INSPECTION_FAILED = "format inspection failed"
_TAR_BLOCK = 512


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


class _ProbeWindow:
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
class _Rules:
    """What the uploader declared and how strictly the bytes must match it (see ``ImageInspector``)."""

    disk_format: str | None
    allow_raw_mismatch: bool
    gpt_nonfatal: frozenset[str]
    require_match: bool


class _DiskInspector:
    """One disk's bytes, in order: oslo's detection and safety checks, then qemu's probe."""

    def __init__(self, rules: _Rules) -> None:
        self._disk_format = rules.disk_format
        self._allow_raw_mismatch = rules.allow_raw_mismatch
        self._gpt_nonfatal = rules.gpt_nonfatal
        self._require_match = rules.require_match
        self._source = _BlockSource()
        # The wrapper only ever calls read() and close() on its source.
        self._wrapper = format_inspector.InspectWrapper(cast("IO[bytes]", self._source))
        self._window = _ProbeWindow()
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


class _ArchiveInspector:
    """An OVA/OVF tarball: every disk member inspected as the declared format, one member at a time.

    The first 512 bytes decide: a valid tar header makes it an archive; anything else is inspected as the disk.
    """

    def __init__(self, rules: _Rules) -> None:
        self._rules = rules
        self._window = _ProbeWindow()
        self._block = bytearray()  # a header (or padding) being collected
        self._not_tar: _DiskInspector | None = None
        self._decided = False
        self._member: _DiskInspector | None = None
        self._member_name = ""
        self._remaining = 0  # data bytes of the current member still to come
        self._padding = 0  # bytes after the member's data, up to the next 512-byte boundary
        self._meta: bytearray | None = None  # the data of a pax or GNU long-name header, collected
        self._meta_type = b""
        self._next_name: str | None = None
        self._zero_blocks = 0
        self._ended = False
        self._error: str | None = None
        self._verdicts: list[tuple[str, Inspection]] = []

    def feed(self, chunk: bytes) -> None:
        """The next chunk of the archive."""
        if self._not_tar is not None:
            self._not_tar.feed(chunk)
            return
        self._window.feed(chunk)
        view = memoryview(chunk)
        while view and self._error is None and not self._ended:
            view = self._step(view)
            if self._not_tar is not None:
                self._not_tar.feed(view)
                return

    def _step(self, view: memoryview) -> memoryview:
        if self._remaining:
            take = min(self._remaining, len(view))
            if self._member is not None:
                self._member.feed(view[:take])
            elif self._meta is not None and len(self._meta) < 1024 * 1024:
                self._meta += view[:take]
            self._remaining -= take
            if not self._remaining:
                self._end_member()
            return view[take:]
        if self._padding:
            take = min(self._padding, len(view))
            self._padding -= take
            return view[take:]
        take = min(_TAR_BLOCK - len(self._block), len(view))
        self._block += view[:take]
        if len(self._block) == _TAR_BLOCK:
            header = bytes(self._block)
            self._block.clear()
            self._header(header)
        return view[take:]

    def _header(self, header: bytes) -> None:
        if not self._decided and (header == bytes(_TAR_BLOCK) or not _valid_tar_header(header)):
            self._not_tar = _DiskInspector(self._rules)
            self._not_tar.feed(header)
            return
        if header == bytes(_TAR_BLOCK):
            self._zero_blocks += 1
            self._ended = self._zero_blocks == 2
            return
        if self._zero_blocks or not _valid_tar_header(header):
            self._error = "the archive holds a damaged tar header"
            return
        self._decided = True
        try:
            size = _tar_number(header[124:136])
        except ValueError:
            self._error = "the archive holds a damaged tar header"
            return
        kind = header[156:157]
        name = self._next_name or _tar_name(header)
        self._next_name = None
        self._remaining, self._padding = size, -size % _TAR_BLOCK
        if kind in (b"x", b"L"):
            self._meta, self._meta_type = bytearray(), kind
        elif kind in (b"0", b"\x00", b"7") and not name.lower().endswith(_NON_DISK_SUFFIXES):
            self._member, self._member_name = _DiskInspector(self._rules), name
        elif kind == b"S":
            self._error = f"the archive member {name} is a sparse file, which is not inspected"
        if not self._remaining:
            self._end_member()

    def _end_member(self) -> None:
        if self._member is not None:
            self._verdicts.append((self._member_name, self._member.finish()))
            self._member = None
        if self._meta is not None:
            self._next_name = _meta_name(bytes(self._meta), self._meta_type)
            if self._meta_type == b"x" and b"GNU.sparse." in self._meta:
                self._error = "the archive holds a sparse member, which is not inspected"
            self._meta = None

    def finish(self) -> Inspection:
        """The verdict on the archive."""
        if self._not_tar is not None:
            return self._not_tar.finish()
        if self._error is None and (self._remaining or self._member is not None):
            self._error = "the archive ends inside a member"
        if self._error is None and self._block and not self._decided:
            # Shorter than one tar header: the bytes are the disk.
            disk = _DiskInspector(self._rules)
            disk.feed(bytes(self._block))
            return disk.finish()
        if self._error is not None:
            return Inspection(None, None, f"{_INSPECTION_FAILED}: {self._error}")
        driver = self._window.driver()
        if driver is not None:
            return Inspection(driver, None, f"the archive itself reads as a {driver} image to qemu")
        if not self._verdicts:
            return Inspection(None, None, f"{_INSPECTION_FAILED}: the archive holds no disk image")
        for name, verdict in self._verdicts:
            if verdict.error is not None:
                return Inspection(verdict.detected_format, None, f"archive member {name}: {verdict.error}")
        return self._verdicts[0][1]


def _valid_tar_header(header: bytes) -> bool:
    """Whether the checksum of a 512-byte block says it is a tar header."""
    stored = header[148:156].split(b"\x00", 1)[0].strip(b" ")
    try:
        expected = int(stored, 8)
    except ValueError:
        return False
    return expected == sum(header[:148]) + 8 * 0x20 + sum(header[156:])


def _tar_number(field: bytes) -> int:
    """A tar size field: octal text, or base-256 when the top bit of its first byte is set."""
    if field[0] & 0x80:
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\x00", 1)[0].strip(b" ")
    return int(text, 8) if text else 0


def _tar_name(header: bytes) -> str:
    name = header[0:100].split(b"\x00", 1)[0]
    if header[257:262] == b"ustar":
        prefix = header[345:500].split(b"\x00", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    return name.decode("utf-8", "replace")


def _meta_name(data: bytes, kind: bytes) -> str | None:
    """The member name a GNU long-name header or a pax header gives the next member."""
    if kind == b"L":
        return data.split(b"\x00", 1)[0].decode("utf-8", "replace")
    for record in data.split(b"\n"):
        _, _, field = record.partition(b" ")
        key, _, value = field.partition(b"=")
        if key == b"path":
            return value.decode("utf-8", "replace")
    return None


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
        rules = _Rules(disk_format, allow_raw_mismatch, gpt_safety_checks_nonfatal, require_format_match)
        self._inner: _DiskInspector | _ArchiveInspector | None = None
        if container_format in DISK_CONTAINERS:
            self._inner = _DiskInspector(rules)
        elif container_format in ARCHIVE_CONTAINERS:
            self._inner = _ArchiveInspector(rules)
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


def _describe(failures: Mapping[str, object]) -> str:
    return "; ".join(f"{check}: {_lower_first(str(reason)) or 'failed'}" for check, reason in failures.items())


def _lower_first(text: str) -> str:
    """'Image has a backing file' -> 'image has a backing file', but 'MBR PTE 0 ...' stays as it is."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
