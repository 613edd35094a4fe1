"""qemu's own format probe, on the bytes of a stream: which image format ``qemu-img`` would read them as.

When a consumer (Nova, Cinder, an operator's ``qemu-img info``) opens an image without naming its format, qemu
reads the first 2048 bytes (``BLOCK_PROBE_BUF_SIZE``; zeros past the end of a shorter file) and asks every block
driver's ``bdrv_probe``; the raw driver scores 1, so any driver that recognises the bytes wins. What a driver
recognises is the oracle here, not what oslo.utils can parse: oslo misses headers qemu still accepts (a qcow2
magic with an odd header length, VMDK descriptors after comment or binary lines), and an image declared raw that
qemu reads as qcow2 or VMDK makes qemu follow its backing file or extents (``/etc/passwd``).

The checks follow qemu's drivers (qemu 7.2+, ``block/*.c``), each at least as wide as qemu's own, so that a
newer qemu accepting a little more is still covered:

- ``qcow2``/``qcow``: ``QFI\\xfb`` at offset 0, any version, any header length (qemu: version >= 2 or == 1);
- ``vmdk``: ``KDMV`` or ``COWD`` at 0 (sparse extents, their embedded descriptor included), or a text
  descriptor: after any number of ``#`` lines (any bytes up to the newline) and blank lines, a ``version=N`` line.
  qemu wants exactly ``version=1|2|3`` then ``\\n`` or ``\\r\\n``; any case, spacing, quoting or number counts here;
- ``vdi``: 0xbeda107f (little-endian) at 0x40; ``vpc`` (VHD): ``conectix`` at 0; ``vhdx``: ``vhdxfile`` at 0;
  ``qed``: ``QED\\0`` at 0; ``luks``: ``LUKS\\xba\\xbe`` at 0 (any version); ``parallels``: ``WithoutFreeSpace``
  or ``WithouFreSpacExt`` at 0 (any version); ``bochs``: ``Bochs Virtual HD Image`` at 0; ``cloop``: its shell
  header at 0;
- ``dmg``: qemu recognises DMG by the file name alone (``.dmg``), so any content would do; what makes a file one is
  its UDIF trailer, ``koly`` at 512 bytes from the end, and that is what is checked.

A fixed VHD (its footer only at the end) is raw to qemu and is left to oslo's inspector.
"""

from __future__ import annotations

import re
import struct

# qemu's BLOCK_PROBE_BUF_SIZE: how much of the file every driver's probe sees.
PROBE_BYTES = 2048
# The UDIF trailer (DMG) is the last 512 bytes.
TRAILER_BYTES = 512

_QCOW_MAGIC = b"QFI\xfb"
_VDI_SIGNATURE = 0xBEDA107F
_CLOOP_HEADER = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"KDMV", "vmdk"),
    (b"COWD", "vmdk"),
    (b"conectix", "vpc"),
    (b"vhdxfile", "vhdx"),
    (b"QED\x00", "qed"),
    (b"LUKS\xba\xbe", "luks"),
    (b"WithoutFreeSpace", "parallels"),
    (b"WithouFreSpacExt", "parallels"),
    (b"Bochs Virtual HD Image\x00", "bochs"),
    (_CLOOP_HEADER, "cloop"),
)
# A descriptor's version line, in any spelling a lenient parser might take (qemu: exactly "version=[123]").
_VERSION_LINE = re.compile(rb'[ \t]*version[ \t]*=[ \t]*"?[ \t]*[0-9]+[ \t]*"?[ \t]*\r?', re.IGNORECASE)

# qemu's driver names -> Glance's disk_format names (the others have none: refused whatever was declared).
GLANCE_FORMATS = {"qcow2": "qcow2", "vmdk": "vmdk", "vpc": "vhd", "vhdx": "vhdx", "vdi": "vdi", "parallels": "ploop",
                  "qed": "qed", "luks": "luks"}  # fmt: skip


def probe(head: bytes, tail: bytes = b"") -> str | None:
    """The qemu driver that would claim an image starting with ``head`` and ending with ``tail``; None for raw.

    ``head``: the first ``PROBE_BYTES`` bytes (fewer for a shorter image); ``tail``: the last ``TRAILER_BYTES``.
    """
    buf = head[:PROBE_BYTES].ljust(PROBE_BYTES, b"\x00")
    if buf.startswith(_QCOW_MAGIC):
        (version,) = struct.unpack_from(">I", buf, 4)
        return "qcow" if version == 1 else "qcow2"
    for prefix, driver in _PREFIXES:
        if buf.startswith(prefix):
            return driver
    if struct.unpack_from("<I", buf, 0x40)[0] == _VDI_SIGNATURE:
        return "vdi"
    if _is_vmdk_descriptor(buf):
        return "vmdk"
    if len(tail) >= TRAILER_BYTES and tail[-TRAILER_BYTES:].startswith(b"koly"):
        return "dmg"
    return None


def _is_vmdk_descriptor(buf: bytes) -> bool:
    """qemu's vmdk_probe for text descriptors: comment and blank lines, then the version line."""
    for line in buf.split(b"\n")[:-1]:  # the last piece has no newline: qemu never matches it
        if line.startswith(b"#"):
            continue
        if not line.strip(b" \t\r"):
            # qemu: only lines of spaces count as blank (an empty line ends the probe); any blank line counts here.
            continue
        return _VERSION_LINE.fullmatch(line) is not None
    return False
