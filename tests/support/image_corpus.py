"""Small, deterministic disk images for format-inspection tests, packed with ``struct`` (no qemu-img).

Each builder returns the whole image as ``bytes`` and says what it builds. The structures follow the public
format specifications closely enough that oslo.utils' format inspector (what Glance 33 runs on uploads) parses
them the way it parses images made by real tools; where a builder stops short of a fully valid file, its
docstring says so. Every image is at most a little over 1 MiB.

``CORPUS`` lists upload cases (image bytes + declared disk/container format) and the verdict Glance 33's rules
give them, with this service's deliberate differences: rich formats declared ``raw`` are refused, and containers
other than ``bare`` are inspected too (shared/streams/inspection.py). The S3 finaliser and API upload tests reuse it.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
SECTOR = 512

# --------------------------------------------------------------------------------------------------- raw


def raw_image(size: int = 1 * MiB, *, random_bytes: bool = False, seed: int = 7) -> bytes:
    """A raw disk of ``size`` bytes: zeros, or pseudo-random bytes from ``seed`` (the same on every run)."""
    if not random_bytes:
        return bytes(size)
    return random.Random(seed).randbytes(size)


def kernel_like_image(size: int = 64 * KiB) -> bytes:
    """Bytes shaped like a Linux bzImage's first sector: boot-sector text where the MBR partition table would
    be, and the 0x55AA boot signature at 510, so it looks like an MBR with garbage partition entries."""
    data = bytearray(size)
    data[0:2] = b"MZ"
    message = b"Use a boot loader.\r\n\nRemove disk and press any key to reboot...\r\n"
    data[446 : 446 + len(message)] = message
    data[510:512] = b"\x55\xaa"
    return bytes(data)


# ------------------------------------------------------------------------------------------------- qcow2

QCOW2_MAGIC = b"QFI\xfb"
QCOW2_INCOMPAT_DIRTY = 1 << 0
QCOW2_INCOMPAT_DATA_FILE = 1 << 2  # external data file (CVE-2024-32498)
QCOW2_INCOMPAT_UNKNOWN = 1 << 5  # no qcow2 feature uses bit 5 (qemu 9)


def qcow2_image(
    virtual_size: int = 64 * MiB,
    *,
    backing_file: str | None = None,
    incompatible_features: int = 0,
    mbr_signature: bool = False,
) -> bytes:
    """A qcow2 v3 image as ``qemu-img create -f qcow2`` lays it out, with 64 KiB clusters and nothing written.

    Cluster 0 holds the 104-byte header, the end-of-extensions marker and, if given, the backing file name;
    cluster 1 the refcount table; cluster 2 the refcount block (clusters 0-3 referenced once); cluster 3 the L1
    table (all entries unallocated). ``incompatible_features`` is written as is (e.g. ``QCOW2_INCOMPAT_DATA_FILE``).
    ``mbr_signature`` also puts 0x55AA at offset 510 with a protective MBR entry, so the same bytes look like a
    GPT disk too (a polyglot).
    """
    cluster_bits = 16
    cluster = 1 << cluster_bits
    l1_entries = max(1, math.ceil(virtual_size / (cluster * (cluster // 8))))
    header_length = 104
    backing_offset = backing_size = 0
    name = b""
    if backing_file is not None:
        name = backing_file.encode()
        backing_offset, backing_size = header_length + 8, len(name)
    header = struct.pack(
        ">4sIQIIQIIQQIIQQQQII",
        QCOW2_MAGIC,
        3,  # version
        backing_offset,
        backing_size,
        cluster_bits,
        virtual_size,
        0,  # crypt_method
        l1_entries,
        3 * cluster,  # l1_table_offset
        1 * cluster,  # refcount_table_offset
        1,  # refcount_table_clusters
        0,  # nb_snapshots
        0,  # snapshots_offset
        incompatible_features,
        0,  # compatible_features
        0,  # autoclear_features
        4,  # refcount_order: 16-bit refcounts
        header_length,
    )
    image = bytearray(4 * cluster)
    image[: len(header)] = header
    image[header_length : header_length + 8] = struct.pack(">II", 0, 0)  # end of header extensions
    image[backing_offset : backing_offset + len(name)] = name
    image[cluster : cluster + 8] = struct.pack(">Q", 2 * cluster)  # refcount table -> refcount block
    for index in range(4):
        struct.pack_into(">H", image, 2 * cluster + 2 * index, 1)
    if mbr_signature:
        image[446:462] = _protective_mbr_entry(len(image) // SECTOR)
        image[510:512] = b"\x55\xaa"
    return bytes(image)


def qcow2_with_backing_file(backing_file: str = "/etc/passwd") -> bytes:
    """A qcow2 whose header names a backing file: qemu would read that host path (refused: ``backing_file``)."""
    return qcow2_image(backing_file=backing_file)


def qcow2_with_data_file() -> bytes:
    """A qcow2 with the external data-file incompatible bit set (CVE-2024-32498; refused: ``data_file``)."""
    return qcow2_image(incompatible_features=QCOW2_INCOMPAT_DATA_FILE)


def qcow2_with_unknown_feature() -> bytes:
    """A qcow2 with an incompatible feature bit no qemu defines (refused: ``unknown_features``)."""
    return qcow2_image(incompatible_features=QCOW2_INCOMPAT_UNKNOWN)


# -------------------------------------------------------------------------------------------------- vmdk

VMDK_GD_AT_END = 0xFFFFFFFFFFFFFFFF
_VMDK_GRAIN_SECTORS = 128  # 64 KiB grains
_VMDK_GTES_PER_GT = 512


def vmdk_descriptor(create_type: str, capacity_sectors: int, extent: str) -> bytes:
    """The text descriptor of a one-extent VMDK (as VMware and qemu-img write it)."""
    extent_kind = f'FLAT "{extent}" 0' if "flat" in create_type.lower() else f'SPARSE "{extent}"'
    return (
        "# Disk DescriptorFile\n"
        "version=1\n"
        "CID=12345678\n"
        "parentCID=ffffffff\n"
        f'createType="{create_type}"\n'
        "\n"
        "# Extent description\n"
        f"RW {capacity_sectors} {extent_kind}\n"
        "\n"
        "# The Disk Data Base\n"
        "#DDB\n"
        "\n"
        'ddb.virtualHWVersion = "4"\n'
        'ddb.adapterType = "ide"\n'
    ).encode("ascii")


def _vmdk_header(version: int, flags: int, capacity: int, gd_offset: int, rgd_offset: int, overhead: int) -> bytes:
    header = struct.pack(
        "<4sIIQQQQIQQQB4sH",
        b"KDMV",
        version,
        flags,
        capacity,
        _VMDK_GRAIN_SECTORS,
        1,  # descriptor offset (sectors)
        1,  # descriptor size (sectors)
        _VMDK_GTES_PER_GT,
        rgd_offset,
        gd_offset,
        overhead,
        0,  # unclean shutdown
        b"\n \r\n",  # the line-ending check characters
        1 if version == 3 else 0,  # compression: deflate for streamOptimized
    )
    return header.ljust(SECTOR, b"\x00")


def vmdk_sparse(
    virtual_size: int = 64 * MiB,
    *,
    create_type: str = "monolithicSparse",
    extent: str = "disk.vmdk",
) -> bytes:
    """A hosted sparse extent (``KDMV`` header, version 1) with its descriptor in sector 1, a redundant and a
    primary grain directory with their (empty) grain tables, padded to the first grain: an empty
    monolithicSparse disk of ``virtual_size`` bytes. ``create_type`` and ``extent`` go into the descriptor as
    given, to build the unsafe variants."""
    capacity = virtual_size // SECTOR
    tables = math.ceil(capacity / (_VMDK_GRAIN_SECTORS * _VMDK_GTES_PER_GT))
    gt_sectors = _VMDK_GTES_PER_GT * 4 // SECTOR
    gd_sectors = math.ceil(tables * 4 / SECTOR)
    rgd = 2
    gd = rgd + gd_sectors + tables * gt_sectors
    end = gd + gd_sectors + tables * gt_sectors
    overhead = math.ceil(end / _VMDK_GRAIN_SECTORS) * _VMDK_GRAIN_SECTORS
    image = bytearray(overhead * SECTOR)
    image[:SECTOR] = _vmdk_header(1, 0x3, capacity, gd, rgd, overhead)
    descriptor = vmdk_descriptor(create_type, capacity, extent)
    if len(descriptor) > SECTOR:
        raise ValueError("descriptor does not fit its one sector")
    image[SECTOR : SECTOR + len(descriptor)] = descriptor
    for directory in (rgd, gd):
        for table in range(tables):
            gt_sector = directory + gd_sectors + table * gt_sectors
            struct.pack_into("<I", image, directory * SECTOR + 4 * table, gt_sector)
    return bytes(image)


def vmdk_with_extent_path_traversal() -> bytes:
    """A monolithicSparse VMDK whose extent names a host path (CVE-2022-47951; refused: ``descriptor``)."""
    return vmdk_sparse(extent="/etc/shadow")


def vmdk_with_disallowed_create_type(create_type: str = "monolithicFlat") -> bytes:
    """A sparse-header VMDK whose descriptor declares a create-type oslo does not allow (refused)."""
    return vmdk_sparse(create_type=create_type)


def _vmdk_marker(value: int, marker_type: int) -> bytes:
    return struct.pack("<QII", value, 0, marker_type).ljust(SECTOR, b"\x00")


def vmdk_stream_optimized(virtual_size: int = 64 * MiB) -> bytes:
    """An empty streamOptimized VMDK (version 3, compressed grains and markers): the header with the grain
    directory "at end", descriptor in sector 1, padding to the first grain, then a grain-directory marker and
    directory (no tables: every grain reads as zeros), the footer marker, the footer (the header again with the
    real directory offset) and the end-of-stream marker."""
    capacity = virtual_size // SECTOR
    tables = math.ceil(capacity / (_VMDK_GRAIN_SECTORS * _VMDK_GTES_PER_GT))
    gd_sectors = math.ceil(tables * 4 / SECTOR)
    overhead = _VMDK_GRAIN_SECTORS
    flags = 0x30001  # valid newline test, compressed grains, markers
    head = bytearray(overhead * SECTOR)
    head[:SECTOR] = _vmdk_header(3, flags, capacity, VMDK_GD_AT_END, 0, overhead)
    descriptor = vmdk_descriptor("streamOptimized", capacity, "disk.vmdk")
    head[SECTOR : SECTOR + len(descriptor)] = descriptor
    gd = overhead + 1
    return b"".join(
        (
            bytes(head),
            _vmdk_marker(gd_sectors, 2),  # grain directory marker
            bytes(gd_sectors * SECTOR),
            _vmdk_marker(1, 3),  # footer marker
            _vmdk_header(3, flags, capacity, gd, 0, overhead),
            _vmdk_marker(0, 0),  # end of stream
        )
    )


# --------------------------------------------------------------------------------------------- iso / gpt


def _both_endian(fmt: str, value: int) -> bytes:
    return struct.pack("<" + fmt, value) + struct.pack(">" + fmt, value)


def iso_image(size: int = 256 * KiB, *, hybrid_gpt: bool = False) -> bytes:
    """An ISO 9660 volume of ``size`` bytes (a multiple of 2048): the 32 KiB system area, a primary volume
    descriptor (volume size, 2048-byte blocks, a root directory record) and the set terminator; no files.
    ``hybrid_gpt`` writes a protective MBR and primary GPT header into the system area, as isohybrid
    does for USB-bootable ISOs."""
    block = 2048
    if size % block:
        raise ValueError("an ISO is a whole number of 2048-byte blocks")
    image = bytearray(gpt_disk(size)[: 32 * KiB] if hybrid_gpt else bytes(size))
    image.extend(bytes(size - len(image)))
    root = struct.pack("<BB", 34, 0) + _both_endian("I", 18) + _both_endian("I", block)
    root += bytes(7) + struct.pack("<BBB", 0x02, 0, 0) + _both_endian("H", 1) + b"\x01\x00"
    pvd = bytearray(block)
    pvd[0:7] = b"\x01CD001\x01"
    pvd[8:40] = b"LINUX".ljust(32)
    pvd[40:72] = b"SERVERLESS_GLANCE_TEST".ljust(32)
    pvd[80:88] = _both_endian("I", size // block)
    pvd[120:124] = _both_endian("H", 1)  # volume set size
    pvd[124:128] = _both_endian("H", 1)  # volume sequence number
    pvd[128:132] = _both_endian("H", block)
    pvd[156 : 156 + len(root)] = root
    pvd[881] = 1  # file structure version
    pvd_offset = 16 * block
    image[pvd_offset : pvd_offset + block] = pvd
    image[pvd_offset + block : pvd_offset + block + 7] = b"\xffCD001\x01"
    return bytes(image)


def _protective_mbr_entry(total_sectors: int) -> bytes:
    return struct.pack(
        "<B3BB3BII", 0x00, 0x00, 0x02, 0x00, 0xEE, 0xFF, 0xFF, 0xFF, 1, min(total_sectors - 1, 2**32 - 1)
    )


_LINUX_FS_GUID = uuid.UUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")


def gpt_disk(size: int = 1 * MiB, *, bad_mbr: bool = False) -> bytes:
    """A GPT-partitioned raw disk of ``size`` bytes: protective MBR, primary header and entry array (one Linux
    filesystem partition), backup array and header, with valid CRC32s. ``bad_mbr`` gives the protective MBR
    entry an invalid boot flag (0x7F), which oslo's ``mbr`` check refuses."""
    sectors = size // SECTOR
    entries, entry_size = 128, 128
    array_sectors = entries * entry_size // SECTOR
    first_usable, last_usable = 2 + array_sectors, sectors - 2 - array_sectors
    partition = struct.pack(
        "<16s16sQQQ72s",
        _LINUX_FS_GUID.bytes_le,
        uuid.UUID(int=0x5E5E).bytes_le,
        first_usable + 6,
        last_usable,
        0,
        "root".encode("utf-16-le"),
    )
    array = partition.ljust(entries * entry_size, b"\x00")
    array_crc = zlib.crc32(array)

    def header(current: int, backup: int, array_lba: int) -> bytes:
        fields = [b"EFI PART", 0x00010000, 92, 0, 0, current, backup, first_usable, last_usable]
        tail = [uuid.UUID(int=0xD15C).bytes_le, array_lba, entries, entry_size, array_crc]
        unsigned = struct.pack("<8sIIIIQQQQ16sQIII", *fields, *tail)
        fields[3] = zlib.crc32(unsigned)
        return struct.pack("<8sIIIIQQQQ16sQIII", *fields, *tail).ljust(SECTOR, b"\x00")

    image = bytearray(size)
    mbr_entry = bytearray(_protective_mbr_entry(sectors))
    if bad_mbr:
        mbr_entry[0] = 0x7F
    image[446:462] = mbr_entry
    image[510:512] = b"\x55\xaa"
    image[SECTOR : 2 * SECTOR] = header(1, sectors - 1, 2)
    image[2 * SECTOR : (2 + array_sectors) * SECTOR] = array
    backup_array = sectors - 1 - array_sectors
    image[backup_array * SECTOR : (sectors - 1) * SECTOR] = array
    image[(sectors - 1) * SECTOR :] = header(sectors - 1, 1, backup_array)
    return bytes(image)


# ---------------------------------------------------------------------------------------- vhd / vhdx / vdi


def _vhd_checksum(data: bytes | bytearray) -> int:
    return ~sum(data) & 0xFFFFFFFF


def _vhd_footer(virtual_size: int, disk_type: int, data_offset: int) -> bytes:
    # Creator "qem2" with the maximum geometry is how qemu-img's force_size=on says: the size field is exact,
    # do not derive the size from the CHS geometry.
    cylinders, heads, sectors = 65535, 16, 255
    footer = bytearray(
        struct.pack(
            ">8sIIQI4sI4sQQHBBII16sB",
            b"conectix",
            2,  # features: reserved bit always set
            0x00010000,
            data_offset,
            0,  # timestamp
            b"qem2",
            0x00010000,
            b"Wi2k",
            virtual_size,  # original size
            virtual_size,  # current size
            cylinders,
            heads,
            sectors,
            disk_type,
            0,  # checksum, filled below
            uuid.UUID(int=0x7D).bytes,
            0,
        ).ljust(SECTOR, b"\x00")
    )
    struct.pack_into(">I", footer, 64, _vhd_checksum(footer))
    return bytes(footer)


def vhd_dynamic(virtual_size: int = 64 * MiB) -> bytes:
    """A dynamic VHD with no blocks written: footer copy, dynamic-disk header (``cxsparse``), a block
    allocation table of unused entries, and the footer (checksums valid)."""
    block_size = 2 * MiB
    bat_entries = math.ceil(virtual_size / block_size)
    bat_offset = 3 * SECTOR
    dynamic = bytearray(
        struct.pack(">8sQQIIII", b"cxsparse", 0xFFFFFFFFFFFFFFFF, bat_offset, 0x00010000, bat_entries, block_size, 0)
    )
    dynamic = dynamic.ljust(1024, b"\x00")
    struct.pack_into(">I", dynamic, 36, _vhd_checksum(dynamic))
    bat = (b"\xff" * 4 * bat_entries).ljust(math.ceil(bat_entries * 4 / SECTOR) * SECTOR, b"\x00")
    footer = _vhd_footer(virtual_size, 3, SECTOR)
    return footer + bytes(dynamic) + bat + footer


def vhd_fixed(virtual_size: int = 64 * KiB) -> bytes:
    """A fixed VHD: the disk's bytes followed by the 512-byte footer only (no copy at the start)."""
    return bytes(virtual_size) + _vhd_footer(virtual_size, 2, 0xFFFFFFFFFFFFFFFF)


_VHDX_METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
_VHDX_VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")


def vhdx_image(virtual_size: int = 64 * MiB) -> bytes:
    """The VHDX structures a streaming reader needs: the ``vhdxfile`` identifier, a region table at 192 KiB
    pointing at a metadata region at 1 MiB, whose table's virtual-disk-size item lives 64 KiB into the region.
    Not a complete VHDX (no headers, log, BAT or checksums), so qemu would not open it."""
    metadata = 1 * MiB
    image = bytearray(metadata + 128 * KiB)
    image[0:8] = b"vhdxfile"
    regions = 192 * KiB
    struct.pack_into("<4sIII", image, regions, b"regi", 0, 1, 0)
    struct.pack_into("<16sQII", image, regions + 16, _VHDX_METADATA_REGION.bytes_le, metadata, 1 * MiB, 1)
    struct.pack_into("<8sHH", image, metadata, b"metadata", 0, 1)
    struct.pack_into("<16sIII", image, metadata + 32, _VHDX_VIRTUAL_DISK_SIZE.bytes_le, 64 * KiB, 8, 0x2)
    struct.pack_into("<Q", image, metadata + 64 * KiB, virtual_size)
    return bytes(image)


def vdi_image(virtual_size: int = 64 * MiB) -> bytes:
    """A dynamic VirtualBox VDI with no blocks allocated: the 512-byte header (version 1.1) and a block map of
    unallocated entries."""
    block_size = 1 * MiB
    blocks = math.ceil(virtual_size / block_size)
    bmap_offset = SECTOR
    data_offset = bmap_offset + math.ceil(blocks * 4 / SECTOR) * SECTOR
    header = bytearray(SECTOR)
    header[0:64] = b"<<< Oracle VM VirtualBox Disk Image >>>\n".ljust(64, b"\x00")
    struct.pack_into("<IIII", header, 0x40, 0xBEDA107F, 0x00010001, 0x190, 1)  # signature, version, size, dynamic
    struct.pack_into("<II", header, 0x154, bmap_offset, data_offset)
    struct.pack_into("<I", header, 0x168, SECTOR)
    struct.pack_into("<QIIII", header, 0x170, virtual_size, block_size, 0, blocks, 0)
    header[0x188:0x198] = uuid.UUID(int=0xAD1).bytes
    bmap = (b"\xff" * 4 * blocks).ljust(data_offset - bmap_offset, b"\x00")
    return bytes(header) + bmap


# ---------------------------------------------------------------------------------------------- luks / qed


def luks2_header() -> bytes:
    """A LUKS2 header area (version 2; 16 KiB primary and secondary binary headers with a minimal JSON
    metadata area and valid SHA-256 checksums) followed by 16 KiB of "encrypted" payload. It has no key slots,
    so cryptsetup could not unlock it; oslo reads the version and refuses anything but LUKS1."""
    hdr_size = 16 * KiB
    metadata = (
        b'{"keyslots":{},"tokens":{},"segments":{"0":{"type":"crypt","offset":"32768","size":"dynamic",'
        b'"iv_tweak":"0","encryption":"aes-xts-plain64","sector_size":512}},"digests":{},'
        b'"config":{"json_size":"12288","keyslots_size":"0"}}'
    )

    def header(seqid: int, offset: int) -> bytes:
        binary = bytearray(4 * KiB)
        struct.pack_into(">6sHQQ", binary, 0, b"LUKS\xba\xbe" if offset == 0 else b"SKUL\xba\xbe", 2, hdr_size, seqid)
        binary[24:72] = b"".ljust(48, b"\x00")  # label
        binary[72:104] = b"sha256".ljust(32, b"\x00")
        binary[104:168] = hashlib.sha256(b"salt" + bytes([offset > 0])).digest() * 2
        binary[168:208] = str(uuid.UUID(int=0x1A55)).encode().ljust(40, b"\x00")
        struct.pack_into(">Q", binary, 256, offset)
        area = bytes(binary) + metadata.ljust(hdr_size - len(binary), b"\x00")
        binary[448:480] = hashlib.sha256(area).digest()
        return bytes(binary) + area[len(binary) :]

    return header(1, 0) + header(1, hdr_size) + random.Random(2).randbytes(16 * KiB)


def qed_image(virtual_size: int = 64 * MiB) -> bytes:
    """A QED image as ``qemu-img create -f qed`` lays it out, nothing written: a 64 KiB header cluster and an
    empty four-cluster L1 table. QED is obsolete; oslo identifies it only to refuse it (``banned``)."""
    cluster, table_clusters = 64 * KiB, 4
    header = struct.pack(
        "<4sIIIQQQQQII",
        b"QED\x00",
        cluster,
        table_clusters,
        1,  # header size (clusters)
        0,  # features
        0,  # compatible features
        0,  # autoclear features
        cluster,  # L1 table offset
        virtual_size,
        0,  # backing file name offset: none
        0,  # backing file name size
    )
    return header.ljust(cluster, b"\x00") + bytes(table_clusters * cluster)


# ------------------------------------------------------------------------------------------------ corpus


@dataclass(frozen=True)
class Case:
    """One upload: the bytes, what the client declared, and the verdict the service must reach."""

    name: str
    data_builder: Callable[[], bytes]
    disk_format: str
    container_format: str
    accepted: bool
    reason_contains: str | None  # a substring of the refusal reason (None when accepted)
    virtual_size: int | None  # the virtual_size the image gets (None: left unset)


QCOW2_SIZE = 64 * MiB

CORPUS: list[Case] = [
    # accepted
    Case("raw zeros declared raw", raw_image, "raw", "bare", True, None, 1 * MiB),
    Case(
        "raw random declared raw", lambda: raw_image(768 * KiB, random_bytes=True), "raw", "bare", True, None, 768 * KiB
    ),
    Case("qcow2 declared qcow2", qcow2_image, "qcow2", "bare", True, None, QCOW2_SIZE),
    Case("vmdk monolithicSparse declared vmdk", vmdk_sparse, "vmdk", "bare", True, None, 64 * MiB),
    Case("vmdk streamOptimized declared vmdk", vmdk_stream_optimized, "vmdk", "bare", True, None, 64 * MiB),
    Case("iso declared iso", iso_image, "iso", "bare", True, None, 256 * KiB),
    Case("hybrid iso+gpt declared iso", lambda: iso_image(hybrid_gpt=True), "iso", "bare", True, None, 256 * KiB),
    Case("vhd dynamic declared vhd", vhd_dynamic, "vhd", "bare", True, None, 64 * MiB),
    Case("vhdx declared vhdx", vhdx_image, "vhdx", "bare", True, None, 64 * MiB),
    Case("vdi declared vdi", vdi_image, "vdi", "bare", True, None, 64 * MiB),
    Case("gpt disk declared raw", gpt_disk, "raw", "bare", True, None, 1 * MiB),  # Glance: actual size
    Case("iso declared raw", iso_image, "raw", "bare", True, None, 256 * KiB),  # Glance: actual size
    Case("raw bytes declared ami", lambda: raw_image(64 * KiB, random_bytes=True), "ami", "bare", True, None, None),
    Case("raw bytes declared aki", lambda: raw_image(64 * KiB), "aki", "bare", True, None, None),
    # beyond Glance (which inspects bare only): other containers are inspected as the disk they carry
    Case("qcow2 in ovf container (not a tarball)", qcow2_image, "qcow2", "ovf", True, None, 64 * MiB),
    Case("unsafe qcow2 in ami container", qcow2_with_backing_file, "ami", "ami", False, "which is qcow2", None),
    # refused: unsafe content declared as what it is
    Case("qcow2 with backing file", qcow2_with_backing_file, "qcow2", "bare", False, "backing_file", None),
    Case("qcow2 with data file", qcow2_with_data_file, "qcow2", "bare", False, "data_file", None),
    Case("qcow2 with unknown feature", qcow2_with_unknown_feature, "qcow2", "bare", False, "unknown_features", None),
    Case("vmdk extent path traversal", vmdk_with_extent_path_traversal, "vmdk", "bare", False, "extent", None),
    Case("vmdk monolithicFlat", vmdk_with_disallowed_create_type, "vmdk", "bare", False, "subformat", None),
    Case("gpt with bad mbr declared raw", lambda: gpt_disk(bad_mbr=True), "raw", "bare", False, "mbr", None),
    Case("luks2", luks2_header, "luks", "bare", False, "version", None),
    Case("qed", qed_image, "qed", "bare", False, "not allowed", None),
    # refused: the declared format does not match the content
    Case("qcow2 declared raw", qcow2_image, "raw", "bare", False, "which is qcow2", None),  # Glance accepts
    Case("vmdk declared raw", vmdk_sparse, "raw", "bare", False, "which is vmdk", None),  # Glance accepts
    Case("qcow2 with backing file declared raw", qcow2_with_backing_file, "raw", "bare", False, "backing_file", None),
    Case("raw declared qcow2", raw_image, "qcow2", "bare", False, "which is raw", None),
    Case("vmdk declared qcow2", vmdk_sparse, "qcow2", "bare", False, "which is vmdk", None),
    Case("qcow2 declared ami", qcow2_image, "ami", "bare", False, "which is qcow2", None),
    Case("gpt disk declared ami", gpt_disk, "ami", "bare", False, "which is gpt", None),
    Case("fixed vhd declared vhd", vhd_fixed, "vhd", "bare", False, "which is raw", None),  # oslo reads headers only
    Case(
        "qcow2 that is also an mbr disk",
        lambda: qcow2_image(mbr_signature=True),
        "qcow2",
        "bare",
        False,
        "gpt, qcow2",
        None,
    ),
]
