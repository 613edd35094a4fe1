"""Archives that wrap a disk image, for the tests of container formats."""

from __future__ import annotations

import io
import tarfile


def ova(disk: bytes, disk_name: str = "disk1.img") -> bytes:
    """An OVA (a pax tar): an ``appliance.ovf`` descriptor, then ``disk`` as ``disk_name``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in (("appliance.ovf", b"<Envelope/>"), (disk_name, disk)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
