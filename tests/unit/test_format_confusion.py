"""Format confusion, held to qemu's view: every payload is shown to ``qemu-img info`` in the test itself.

Whatever qemu reads as something other than raw must be refused when declared raw, or declared as any format other
than the one it is, under any chunking and in every container that is inspected; what qemu reads as raw must pass
as raw. The corpus is ``tests/support/qemu_corpus.py``; without qemu-img (Debian: ``apt-get install qemu-utils``)
these tests skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.streams.inspection import inspect
from shared.streams.qemu_probe import GLANCE_FORMATS
from tests.support.archives import ova
from tests.support.qemu_corpus import BENIGN, HOSTILE, QEMU_IMG, Payload, qemu_format

pytestmark = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img not installed (Debian: apt-get install qemu-utils)")

# Formats an uploader may declare (Glance's default disk_formats, ami standing for aki/ari).
DECLARABLE = ("raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso", "ploop", "ami")


@pytest.fixture(scope="module")
def hostile() -> list[tuple[Payload, str]]:
    """Every hostile payload with qemu's answer about it."""
    if QEMU_IMG is None:
        return []
    return [(p, qemu_format(p.data, p.suffix)) for p in HOSTILE()]


@pytest.fixture(scope="module")
def benign() -> list[tuple[Payload, str]]:
    """Every benign payload with qemu's answer about it."""
    if QEMU_IMG is None:
        return []
    return [(p, qemu_format(p.data, p.suffix)) for p in BENIGN()]


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def test_corpus__qemu_reads_every_payload_as_its_generator_built_it(
    hostile: list[tuple[Payload, str]], benign: list[tuple[Payload, str]]
) -> None:
    wrong = [(p.name, seen) for p, seen in hostile + benign if seen not in p.qemu_may_say()]

    assert wrong == []
    assert sum(seen not in ("raw", "error") for _, seen in hostile) >= 25


def test_what_qemu_reads_as_another_format__is_refused_declared_raw(hostile: list[tuple[Payload, str]]) -> None:
    accepted = [
        (p.name, seen, chunk)
        for p, seen in hostile
        for chunk in (len(p.data) or 1, 511, 4096)
        if inspect(_chunks(p.data, chunk), "raw", "bare").accepted
    ]

    assert accepted == []


def test_what_qemu_reads_as_one_format__is_refused_declared_as_any_other(hostile: list[tuple[Payload, str]]) -> None:
    accepted = [
        (p.name, declared)
        for p, _ in hostile
        for declared in DECLARABLE
        if declared != GLANCE_FORMATS.get(p.kind) and inspect([p.data], declared, "bare").accepted
    ]

    assert accepted == []


@pytest.mark.parametrize("container", ["ami", "aki", "ari", "docker", "ova", "ovf"])
def test_what_qemu_reads_as_another_format__is_refused_in_every_inspected_container(
    hostile: list[tuple[Payload, str]], container: str
) -> None:
    wrap = ova if container in ("ova", "ovf") else bytes
    accepted = [p.name for p, _ in hostile if inspect(_chunks(wrap(p.data), 4096), "raw", container).accepted]

    assert accepted == []


def test_what_qemu_reads_as_raw__is_accepted_declared_raw(benign: list[tuple[Payload, str]]) -> None:
    refused = [(p.name, v.error) for p, _ in benign if (v := inspect(_chunks(p.data, 4096), "raw", "bare")).error]

    assert refused == []


def test_what_qemu_reads_as_raw__in_an_ova__is_accepted(benign: list[tuple[Payload, str]]) -> None:
    refused = [(p.name, v.error) for p, _ in benign if (v := inspect([ova(p.data)], "raw", "ova")).error]

    assert refused == []
