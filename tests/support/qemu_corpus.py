"""A corpus of format-confusion payloads, and qemu's own verdict on each (``qemu-img info``, no format given).

Payloads are made with ``qemu-img create`` (real images of every format it writes, some naming ``/etc/passwd``
as their backing file) or packed by hand where qemu accepts more than a tool writes: qcow2 magic with odd header
lengths, VMDK descriptors in many spellings (comments with binary bytes, blank lines, CRLF, quoting, spacing, case,
versions), sparse VMDK headers with an embedded descriptor naming a host file, bochs/cloop/parallels/QED/LUKS
signatures, a DMG trailer, ISOs whose system area starts with another format, a tarball whose first member name
is a VMDK version line. ``qemu_format`` asks qemu about one payload, the oracle the inspector is held to: any
answer but ``raw`` (including a failure to open what qemu's probe claimed) means qemu would not read the bytes as
a plain disk.

``BENIGN`` are payloads qemu reads as raw and the inspector must accept declared raw.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.image_corpus import KiB, MiB, gpt_disk, iso_image, raw_image, vmdk_sparse

QEMU_IMG = shutil.which("qemu-img")
HOST_FILE = "/etc/passwd"


@dataclass(frozen=True)
class Payload:
    """One payload: its bytes, the qemu driver its generator built it for, and the file suffix qemu should see."""

    name: str
    data: bytes
    # qemu's driver name ("qcow2", "vmdk", "vpc", ...; "raw" for benign payloads).
    kind: str
    suffix: str = ".img"
    # qemu 7.2 reads it as raw although a lenient reader (or a newer qemu) might not; refused all the same.
    qemu_reads_raw: bool = False

    def qemu_may_say(self) -> frozenset[str]:
        """The answers of ``qemu_format`` that match what the generator built."""
        if self.kind == "raw" or self.qemu_reads_raw:
            return frozenset({"raw"})
        # "error": qemu's probe claimed the bytes for ``kind``, then opening them failed.
        return frozenset({self.kind, "error"})


def qemu_format(data: bytes, suffix: str = ".img") -> str:
    """qemu's view of ``data``: the ``format`` of ``qemu-img info --output=json`` (no ``-f``), or ``error``."""
    assert QEMU_IMG is not None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"payload{suffix}"
        path.write_bytes(data)
        done = subprocess.run(
            [QEMU_IMG, "info", "-U", "--output=json", str(path)], capture_output=True, timeout=60, check=False
        )
    if done.returncode != 0:
        return "error"
    return str(json.loads(done.stdout)["format"])


def _made(fmt: str, *options: str, size: str = "1M", secret: bool = False) -> bytes:
    """An image made by ``qemu-img create -f fmt``."""
    assert QEMU_IMG is not None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"made.{fmt}"
        args = [QEMU_IMG, "create", "-q", "-f", fmt]
        if secret:
            args += ["--object", "secret,id=sec0,data=hostile", "-o", "key-secret=sec0"]
        for option in options:
            args += ["-o", option]
        # LUKS benchmarks its key derivation on CPU time, which a busy machine can fail to measure: try again.
        for _ in range(5):
            done = subprocess.run([*args, str(path), size], capture_output=True, timeout=60, check=False)
            if done.returncode == 0:
                return path.read_bytes()
        raise RuntimeError(f"qemu-img create -f {fmt} failed: {done.stderr.decode(errors='replace')}")


def _backed(fmt: str) -> bytes:
    """A ``fmt`` image whose backing file is ``/etc/passwd`` (read as raw)."""
    assert QEMU_IMG is not None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"backed.{fmt}"
        subprocess.run(
            [QEMU_IMG, "create", "-q", "-u", "-f", fmt, "-b", HOST_FILE, "-F", "raw", str(path), "1M"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return path.read_bytes()


def qcow2_header(version: int = 3, header_length: int = 104, *, backing: str | None = HOST_FILE) -> bytes:
    """A bare qcow2 header (no tables): qemu's probe needs only the magic and the version."""
    backing_bytes = (backing or "").encode()
    backing_offset = 512 if backing else 0
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQI",
        b"QFI\xfb",
        version,
        backing_offset,
        len(backing_bytes),
        16,  # cluster_bits
        1 * MiB,  # size
        0,  # crypt
        1,  # l1_size
        0x30000,  # l1_table_offset
        0x10000,  # refcount_table_offset
        1,  # refcount_table_clusters
        0,  # nb_snapshots
        0,  # snapshots_offset
        0,  # incompatible features
        0,  # compatible features
        0,  # autoclear features
    ) + struct.pack(">II", 4, header_length)
    data = bytearray(4 * KiB)
    data[: len(header)] = header
    if backing:
        data[backing_offset : backing_offset + len(backing_bytes)] = backing_bytes
    return bytes(data)


def _qcow1_header() -> bytes:
    backing = HOST_FILE.encode()
    header = struct.pack(">4sIQIIQBBHIQ", b"QFI\xfb", 1, 64, len(backing), 0, 1 * MiB, 12, 9, 0, 0, 128)
    data = bytearray(4 * KiB)
    data[: len(header)] = header
    data[64 : 64 + len(backing)] = backing
    return bytes(data)


_DESCRIPTOR_BODY = 'CID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\n'


def vmdk_descriptor(
    *,
    before: bytes = b"# Disk DescriptorFile\n",
    version: str = "version=1",
    newline: str = "\n",
    extent: str = f'RW 8 FLAT "{HOST_FILE}" 0',
    body: str = _DESCRIPTOR_BODY,
    pad_to: int = 0,
) -> bytes:
    """A monolithicFlat VMDK text descriptor whose extent is ``/etc/passwd``; every part can be respelled."""
    text = (version + "\n" + body + extent + "\n").replace("\n", newline).encode()
    data = before + text
    return data.ljust(pad_to, b"\x00")


def _sparse_with_host_extent() -> bytes:
    """A KDMV sparse header whose embedded descriptor names a flat extent on the host."""
    return vmdk_sparse(4 * MiB, create_type="monolithicFlat", extent=HOST_FILE)


def _bochs() -> bytes:
    header = bytearray(512)
    header[0:23] = b"Bochs Virtual HD Image\x00"
    header[32:40] = b"Redolog\x00"
    header[48:56] = b"Growing\x00"
    header[64:68] = struct.pack("<I", 0x00020000)
    header[68:72] = struct.pack("<I", 512)  # header size
    return bytes(header) + bytes(4 * KiB)


def _cloop() -> bytes:
    head = b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
    return head.ljust(128, b"\x00") + struct.pack(">II", 64 * KiB, 1) + bytes(4 * KiB)


def _parallels() -> bytes:
    header = struct.pack("<16sIIIIIQI", b"WithoutFreeSpace", 2, 16, 32, 2048, 1, 2048, 0) + bytes(64)
    return header.ljust(64 * KiB, b"\x00")


def _dmg() -> bytes:
    """Data followed by a UDIF trailer (``koly``, version 4, 512 bytes) pointing at no plist."""
    trailer = bytearray(512)
    trailer[0:4] = b"koly"
    trailer[4:8] = struct.pack(">I", 4)
    trailer[8:12] = struct.pack(">I", 512)
    return bytes(64 * KiB) + bytes(trailer)


def iso_with(head: bytes) -> bytes:
    """An ISO 9660 volume whose system area (the first 32 KiB, free for anything) starts with ``head``."""
    iso = bytearray(iso_image(256 * KiB))
    iso[: len(head)] = head
    return bytes(iso)


def tar_named(member: str, content: bytes) -> bytes:
    """A GNU tar archive holding one member ``member`` with ``content``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(member)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _hostile() -> list[Payload]:
    payloads = [
        Payload("qcow2 made by qemu-img, backed by /etc/passwd", _backed("qcow2"), "qcow2"),
        Payload("qcow2 v2 made by qemu-img", _made("qcow2", "compat=0.10"), "qcow2"),
        Payload("qed made by qemu-img, backed by /etc/passwd", _backed("qed"), "qed"),
        Payload("qcow v1, backed by /etc/passwd", _qcow1_header(), "qcow"),
        Payload("vmdk monolithicSparse made by qemu-img", _made("vmdk"), "vmdk"),
        Payload("vmdk streamOptimized", _made("vmdk", "subformat=streamOptimized"), "vmdk"),
        Payload("vmdk sparse header, embedded descriptor names a host extent", _sparse_with_host_extent(), "vmdk"),
        Payload("vhd dynamic made by qemu-img", _made("vpc"), "vpc"),
        Payload("vhdx made by qemu-img", _made("vhdx"), "vhdx"),
        Payload("vdi made by qemu-img", _made("vdi"), "vdi"),
        Payload("parallels made by qemu-img", _made("parallels"), "parallels"),
        Payload("luks made by qemu-img", _made("luks", "iter-time=100", secret=True), "luks"),
        Payload("parallels header", _parallels(), "parallels"),
        Payload("bochs header", _bochs(), "bochs"),
        Payload("cloop header", _cloop(), "cloop"),
        Payload("dmg trailer", _dmg(), "dmg", suffix=".dmg"),
    ]
    for version in (2, 3, 4):
        for length in (0, 1, 72, 105, 4097):
            data = qcow2_header(version, length)
            payloads.append(Payload(f"qcow2 magic v{version}, header length {length}", data, "qcow2"))
    payloads.append(Payload("qcow2 magic and version only (8 bytes)", b"QFI\xfb\x00\x00\x00\x03", "qcow2"))
    payloads.append(Payload("qcow2 header, 104 bytes", qcow2_header(3, 104)[:104], "qcow2"))
    spellings: dict[str, bytes] = {
        "canonical": vmdk_descriptor(),
        "no leading comment": vmdk_descriptor(before=b""),
        "version 2": vmdk_descriptor(version="version=2"),
        "version 3": vmdk_descriptor(version="version=3"),
        "CRLF": vmdk_descriptor(newline="\r\n"),
        "comment with binary bytes": vmdk_descriptor(before=b"#\x00\x01\x02\xff\xfe binary\x7f\n"),
        "many comment lines": vmdk_descriptor(before=b"".join(b"# comment %d\n" % i for i in range(60))),
        "blank lines of spaces": vmdk_descriptor(before=b"   \n \r\n# c\n      \n"),
        "unquoted createType": vmdk_descriptor(body=_DESCRIPTOR_BODY.replace('"monolithicFlat"', "monolithicFlat")),
        "spaced extent": vmdk_descriptor(extent=f'RW    8      FLAT     "{HOST_FILE}"     0'),
        "tab-spaced extent": vmdk_descriptor(extent=f'RW\t8\tFLAT\t"{HOST_FILE}"\t0'),
        "lower-case access": vmdk_descriptor(extent=f'rw 8 FLAT "{HOST_FILE}" 0'),
        "read-only extent": vmdk_descriptor(extent=f'RDONLY 8 FLAT "{HOST_FILE}" 0'),
        "vmfs extent": vmdk_descriptor(body='createType="vmfs"\n', extent=f'RW 8 VMFS "{HOST_FILE}"'),
        "sparse extent": vmdk_descriptor(body='createType="monolithicSparse"\n', extent=f'RW 8 SPARSE "{HOST_FILE}"'),
        "version line alone": b"version=1\n",
        "padded with zeros": vmdk_descriptor(pad_to=64 * KiB),
        "upper-case key": vmdk_descriptor(version="VERSION=1"),
        "spaced key": vmdk_descriptor(version="version = 1"),
        "quoted version": vmdk_descriptor(version='version="1"'),
    }
    for spelling, data in spellings.items():
        name = f"vmdk descriptor: {spelling}"
        payloads.append(Payload(name, data, "vmdk", qemu_reads_raw=name in LENIENT_ONLY))
    payloads += [
        Payload("iso whose system area starts with qcow2", iso_with(qcow2_header()[:1024]), "qcow2"),
        Payload("iso whose system area is a vmdk descriptor", iso_with(vmdk_descriptor()), "vmdk"),
        Payload("iso whose system area starts with vhdx", iso_with(b"vhdxfile" + bytes(8)), "vhdx"),
        Payload("tar whose first member name is a vmdk version line", tar_named("version=1\n", b"x" * 100), "vmdk"),
    ]
    return payloads


# Spellings qemu 7.2 reads as raw (its probe wants exactly "version=[123]" within the first 512 bytes) that a
# lenient reader or a newer qemu might not: refused all the same.
LENIENT_ONLY = frozenset(
    {
        "vmdk descriptor: upper-case key",
        "vmdk descriptor: spaced key",
        "vmdk descriptor: quoted version",
        "vmdk descriptor: many comment lines",
    }
)


def _benign() -> list[Payload]:
    raw = "raw"
    return [
        Payload("zeros", raw_image(1 * MiB), raw),
        Payload("pseudo-random bytes", raw_image(1 * MiB, random_bytes=True), raw),
        Payload("text", b"hello, world\n" * 100, raw),
        Payload("shell script", b"#!/bin/sh\necho hello\n" * 10, raw),
        Payload("gpt disk", gpt_disk(), raw),
        Payload("iso", iso_image(), raw),
        Payload("raw made by qemu-img", _made("raw"), raw),
        Payload("tar of a text file", tar_named("notes.txt", b"hello\n" * 50), raw),
        Payload("comment lines only", b"# just a comment\n# another\n" + bytes(4 * KiB), raw),
    ]


HOSTILE: Callable[[], list[Payload]] = _hostile
BENIGN: Callable[[], list[Payload]] = _benign
