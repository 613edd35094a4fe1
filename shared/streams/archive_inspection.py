"""OVA/OVF tarballs inspected as they stream: every disk member judged as the declared format, one member at a time
(``ArchiveInspector``; ``shared.streams.inspection`` documents the rules).
"""

from __future__ import annotations

from shared.streams.disk_inspection import (
    INSPECTION_FAILED,
    DiskInspector,
    Inspection,
    ProbeWindow,
    Rules,
)

# Members of an OVF package that are not disks: the descriptor, the manifest, the certificate, VMware's NVRAM.
NON_DISK_SUFFIXES = (".ovf", ".mf", ".cert", ".nvram")
TAR_BLOCK = 512


class ArchiveInspector:
    """An OVA/OVF tarball: every disk member inspected as the declared format, one member at a time.

    The first 512 bytes decide: a valid tar header makes it an archive; anything else is inspected as the disk.
    """

    def __init__(self, rules: Rules) -> None:
        self._rules = rules
        self._window = ProbeWindow()
        self._block = bytearray()  # a header (or padding) being collected
        self._not_tar: DiskInspector | None = None
        self._decided = False
        self._member: DiskInspector | None = None
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
        take = min(TAR_BLOCK - len(self._block), len(view))
        self._block += view[:take]
        if len(self._block) == TAR_BLOCK:
            header = bytes(self._block)
            self._block.clear()
            self._header(header)
        return view[take:]

    def _header(self, header: bytes) -> None:
        if not self._decided and (header == bytes(TAR_BLOCK) or not _valid_tar_header(header)):
            self._not_tar = DiskInspector(self._rules)
            self._not_tar.feed(header)
            return
        if header == bytes(TAR_BLOCK):
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
        self._remaining, self._padding = size, -size % TAR_BLOCK
        if kind in (b"x", b"L"):
            self._meta, self._meta_type = bytearray(), kind
        elif kind in (b"0", b"\x00", b"7") and not name.lower().endswith(NON_DISK_SUFFIXES):
            self._member, self._member_name = DiskInspector(self._rules), name
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
            disk = DiskInspector(self._rules)
            disk.feed(bytes(self._block))
            return disk.finish()
        if self._error is not None:
            return Inspection(None, None, f"{INSPECTION_FAILED}: {self._error}")
        driver = self._window.driver()
        if driver is not None:
            return Inspection(driver, None, f"the archive itself reads as a {driver} image to qemu")
        if not self._verdicts:
            return Inspection(None, None, f"{INSPECTION_FAILED}: the archive holds no disk image")
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
