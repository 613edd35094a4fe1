"""Upload content inspection: the corpus verdicts under any chunking, and the rule table of Glance 33's set_data."""

from __future__ import annotations

import io
import tarfile
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from oslo_utils.imageutils import format_inspector

from shared.streams import inspection
from shared.streams.inspection import ImageInspector, Inspection
from tests.support.image_corpus import (
    CORPUS,
    Case,
    KiB,
    MiB,
    gpt_disk,
    iso_image,
    kernel_like_image,
    qcow2_image,
    qcow2_with_backing_file,
    raw_image,
    vhdx_image,
    vmdk_sparse,
)


def _whole(data: bytes) -> Iterator[bytes]:
    yield data


def _fixed(size: int) -> Callable[[bytes], Iterator[bytes]]:
    def chunks(data: bytes) -> Iterator[bytes]:
        for offset in range(0, len(data), size):
            yield data[offset : offset + size]

    return chunks


def _uneven(data: bytes) -> Iterator[bytes]:
    """511-byte chunks with an empty chunk and a 70 000-byte one thrown in."""
    offset, sizes = 0, [511, 0, 511, 70_000]
    while offset < len(data):
        size = sizes[0]
        sizes.append(sizes.pop(0))
        yield data[offset : offset + size]
        offset += size


CHUNKINGS: dict[str, Callable[[bytes], Iterator[bytes]]] = {
    "whole": _whole,
    "4096": _fixed(4096),
    "uneven-511": _uneven,
}


def inspect(
    data: bytes,
    disk_format: str | None,
    container_format: str | None = "bare",
    *,
    chunks: Callable[[bytes], Iterator[bytes]] = _whole,
    allow_raw_mismatch: bool = False,
    gpt_safety_checks_nonfatal: frozenset[str] = frozenset(),
    require_format_match: bool = True,
) -> Inspection:
    return inspection.inspect(
        chunks(data),
        disk_format,
        container_format,
        allow_raw_mismatch=allow_raw_mismatch,
        gpt_safety_checks_nonfatal=gpt_safety_checks_nonfatal,
        require_format_match=require_format_match,
    )


@pytest.fixture(scope="module")
def corpus_bytes() -> dict[str, bytes]:
    return {case.name: case.data_builder() for case in CORPUS}


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_corpus_case__gets_its_verdict__whatever_the_chunking(
    case: Case, chunking: str, corpus_bytes: dict[str, bytes]
) -> None:
    result = inspect(corpus_bytes[case.name], case.disk_format, case.container_format, chunks=CHUNKINGS[chunking])

    assert result.accepted is case.accepted, result
    if case.reason_contains is None:
        assert result.error is None
    else:
        assert result.error is not None and case.reason_contains in result.error, result.error
    assert result.virtual_size == case.virtual_size


def test_corpus__is_deterministic_and_small() -> None:
    for case in CORPUS:
        data = case.data_builder()
        assert data == case.data_builder(), case.name
        assert len(data) <= 2 * MiB, case.name


# ----------------------------------------------------------------------------------------- container format


@pytest.mark.parametrize("container_format", ["compressed", None])
def test_compressed_or_no_container__skips_inspection(container_format: str | None) -> None:
    assert inspect(qcow2_with_backing_file(), "qcow2", container_format) == Inspection(None, None, None)


@pytest.mark.parametrize("container_format", ["ami", "aki", "ari", "docker", "ova", "ovf"])
def test_other_containers__are_inspected_as_the_disk_they_carry(container_format: str) -> None:
    result = inspect(qcow2_with_backing_file(), "qcow2", container_format)

    assert result == Inspection("qcow2", None, "qcow2 image refused: backing_file: image has a backing file")


# -------------------------------------------------------------------------------------------------- iso+gpt


def test_iso_with_gpt__is_accepted_as_iso() -> None:
    assert inspect(iso_image(hybrid_gpt=True), "iso") == Inspection("iso", 256 * KiB, None)


def test_iso_with_gpt_declared_gpt__is_refused_because_it_counts_as_iso() -> None:
    result = inspect(iso_image(hybrid_gpt=True), "gpt")

    assert result == Inspection("iso", None, "disk_format gpt does not match the image data, which is iso")


def test_other_multiple_matches__are_refused_and_named() -> None:
    result = inspect(qcow2_image(mbr_signature=True), "qcow2")

    assert result == Inspection(None, None, "image data matches several formats (gpt, qcow2)")


# ------------------------------------------------------------------------------------------------ raw rules


def test_raw_declared_raw__gets_its_size_as_virtual_size() -> None:
    assert inspect(raw_image(3 * KiB), "raw") == Inspection("raw", 3 * KiB, None)


def test_empty_image__leaves_virtual_size_unset_like_glance() -> None:
    assert inspect(b"", "raw") == Inspection("raw", None, None)


@pytest.mark.parametrize("disk_format", ["ami", "aki", "ari", "ploop", None])
def test_raw_bytes_declared_uninspectable_format__are_accepted_without_virtual_size(disk_format: str | None) -> None:
    assert inspect(raw_image(4 * KiB), disk_format) == Inspection("raw", None, None)


@pytest.mark.parametrize(("builder", "detected"), [(qcow2_image, "qcow2"), (vmdk_sparse, "vmdk")])
def test_rich_format_declared_raw__is_refused_by_default(builder: Callable[[], bytes], detected: str) -> None:
    result = inspect(builder(), "raw")

    assert result.detected_format == detected
    assert result.virtual_size is None
    assert result.error == (
        f"disk_format raw does not match the image data, which is {detected} (upload it with disk_format {detected})"
    )


@pytest.mark.parametrize("builder", [qcow2_image, vmdk_sparse])
def test_rich_format_declared_raw__with_allow_raw_mismatch__is_accepted_with_actual_size(
    builder: Callable[[], bytes],
) -> None:
    data = builder()

    result = inspect(data, "raw", allow_raw_mismatch=True)

    assert result.accepted
    assert result.virtual_size == len(data)


@pytest.mark.parametrize("allow_raw_mismatch", [False, True])
def test_unsafe_qcow2_declared_raw__is_refused_for_its_safety_failure(allow_raw_mismatch: bool) -> None:
    result = inspect(qcow2_with_backing_file(), "raw", allow_raw_mismatch=allow_raw_mismatch)

    assert result == Inspection("qcow2", None, "qcow2 image refused: backing_file: image has a backing file")


def test_gpt_disk_declared_raw__is_accepted_with_actual_size_like_glance() -> None:
    assert inspect(gpt_disk(), "raw") == Inspection("gpt", 1 * MiB, None)


# ----------------------------------------------------------------------------------------- declared formats


@pytest.mark.parametrize(
    ("data", "disk_format", "error"),
    [
        (raw_image(), "qcow2", "disk_format qcow2 does not match the image data, which is raw"),
        (qcow2_image(), "vmdk", "disk_format vmdk does not match the image data, which is qcow2"),
        (qcow2_image(), "ami", "disk_format ami does not match the image data, which is qcow2"),
    ],
)
def test_declared_format_other_than_detected__is_refused(data: bytes, disk_format: str, error: str) -> None:
    assert inspect(data, disk_format).error == error


@pytest.mark.parametrize(
    ("data", "disk_format", "detected"),
    [(raw_image(), "qcow2", "raw"), (qcow2_image(), "vmdk", "qcow2"), (raw_image(), "vhdx", "raw")],
)
def test_declared_format_other_than_detected__without_required_match__is_accepted_without_virtual_size(
    data: bytes, disk_format: str, detected: str
) -> None:
    """Glance's require_image_format_match = False (Tempest's coverage profile uploads random bytes as any format)."""
    assert inspect(data, disk_format, require_format_match=False) == Inspection(detected, None, None)


def test_several_matches__without_required_match__are_accepted() -> None:
    assert inspect(qcow2_image(mbr_signature=True), "qcow2", require_format_match=False) == Inspection(None, None, None)


def test_unsafe_image__without_required_match__is_still_refused_for_its_safety_failure() -> None:
    result = inspect(qcow2_with_backing_file(), "vmdk", require_format_match=False)

    assert result == Inspection("qcow2", None, "qcow2 image refused: backing_file: image has a backing file")


def test_matching_format__without_required_match__keeps_its_virtual_size() -> None:
    strict = inspect(qcow2_image(), "qcow2")

    assert inspect(qcow2_image(), "qcow2", require_format_match=False) == strict
    assert strict.accepted and strict.virtual_size


def test_safety_failures__name_every_failing_check() -> None:
    data = qcow2_image(backing_file="base.qcow2", incompatible_features=1 << 2)

    result = inspect(data, "qcow2")

    assert result.error == (
        "qcow2 image refused: backing_file: image has a backing file; data_file: image has data_file set"
    )


# ---------------------------------------------------------------------------------------------- gpt / mbr


@pytest.mark.parametrize("disk_format", ["raw", "gpt"])
def test_gpt_mbr_failure__is_fatal_by_default(disk_format: str) -> None:
    result = inspect(gpt_disk(bad_mbr=True), disk_format)

    assert result == Inspection("gpt", None, "gpt image refused: mbr: MBR PTE 0 has invalid boot flag")


@pytest.mark.parametrize("disk_format", ["raw", "gpt"])
def test_gpt_mbr_failure__listed_nonfatal__is_accepted(disk_format: str) -> None:
    result = inspect(gpt_disk(bad_mbr=True), disk_format, gpt_safety_checks_nonfatal=frozenset({"mbr"}))

    assert result == Inspection("gpt", 1 * MiB, None)


def test_nonfatal_list__applies_only_to_gpt() -> None:
    result = inspect(qcow2_with_backing_file(), "qcow2", gpt_safety_checks_nonfatal=frozenset({"backing_file"}))

    assert result.error is not None and "backing_file" in result.error


def test_kernel_with_boot_signature_declared_aki__is_refused_as_gpt_like_glance() -> None:
    """Glance exempts aki/ari from the mbr check, but only after the format match, which a kernel's 0x55AA boot
    signature (detected as gpt) already fails."""
    result = inspect(kernel_like_image(), "aki")

    assert result == Inspection("gpt", None, "disk_format aki does not match the image data, which is gpt")


# -------------------------------------------------------------------------------------------------- errors


def test_inspector_error__refuses_without_internal_details(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: format_inspector.QcowInspector) -> int:
        raise KeyError("size")

    monkeypatch.setattr(format_inspector.QcowInspector, "virtual_size", property(broken))

    result = inspect(qcow2_image(), "qcow2")

    assert result == Inspection("qcow2", None, "format inspection failed: the qcow2 structure could not be read")


def test_detection_error__refuses_without_internal_details(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: format_inspector.VHDInspector) -> bool:
        raise AttributeError("'VHDInspector' object has no attribute 'x'")

    monkeypatch.setattr(format_inspector.VHDInspector, "format_match", property(broken))

    result = inspect(raw_image(), "raw")

    assert result == Inspection(None, None, "format inspection failed: the image structure could not be read")


def test_text_with_non_ascii_after_first_sector__is_refused_like_glance() -> None:
    """oslo's VMDK inspector takes 512 text bytes for a descriptor file, fails to decode the rest of the block as
    ASCII and then raises AttributeError from format_match; Glance answers "Image format inspection failed".
    If oslo fixes this, the text becomes raw and this test should change."""
    data = b"plain text line\n" * 40 + "caf\u00e9\n".encode() + bytes(1024)

    result = inspect(data, "raw")

    assert result == Inspection(None, None, "format inspection failed: the image structure could not be read")


def test_incomplete_structure__is_refused_with_oslos_reason() -> None:
    vhdx = vhdx_image()

    result = inspect(vhdx[: 1 * MiB + 1024], "vhdx")

    assert result == Inspection(
        "vhdx", None, "format inspection failed: vhdx: incomplete file cannot be safety checked"
    )


# ---------------------------------------------------------------------------------------------- streaming


def test_vhdx_fed_in_8_mib_chunks__still_finds_its_virtual_size() -> None:
    """Fed straight to oslo in 8 MiB chunks, this VHDX never finds its size region and is refused as incomplete."""
    data = vhdx_image() + bytes(9 * MiB)

    result = inspect(data, "vhdx", chunks=_fixed(8 * MiB))

    assert result == Inspection("vhdx", 64 * MiB, None)


def test_feeding__holds_only_small_regions_in_memory() -> None:
    chunk = raw_image(1 * MiB, random_bytes=True)
    inspector = ImageInspector("raw", "bare")
    tracemalloc.start()
    try:
        for _ in range(48):
            inspector.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert inspector.finish() == Inspection("raw", 48 * MiB, None)
    assert peak < 4 * MiB


def test_finish__returns_the_same_verdict_and_ends_feeding() -> None:
    inspector = ImageInspector("qcow2", "bare")
    inspector.feed(qcow2_image())

    first = inspector.finish()

    assert inspector.finish() is first
    with pytest.raises(RuntimeError):
        inspector.feed(b"more")


# ------------------------------------------------------------------------------------- ova/ovf tarballs


def _tar(members: list[tuple[str, bytes]], *, fmt: int = tarfile.PAX_FORMAT, kind: bytes = tarfile.REGTYPE) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size, info.type = len(content), kind
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.mark.parametrize("chunking", list(CHUNKINGS))
def test_ova__with_a_safe_disk__is_accepted_with_the_disks_virtual_size(chunking: str) -> None:
    ova = _tar([("appliance.ovf", b"<Envelope/>"), ("appliance.mf", b"SHA256(x)= 00"), ("disk1.qcow2", qcow2_image())])

    assert inspect(ova, "qcow2", "ova", chunks=CHUNKINGS[chunking]) == Inspection("qcow2", 64 * MiB, None)


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_ova__member_names_in_every_tar_dialect__are_read(fmt: int) -> None:
    folder = "d" * 80 + "/" + "e" * 60  # a long path: a ustar prefix, a GNU long name or a pax path
    ova = _tar([(f"{folder}/appliance.ovf", b"<Envelope/>"), (f"{folder}/disk.qcow2", qcow2_with_backing_file())],
               fmt=fmt)  # fmt: skip

    result = inspect(ova, "qcow2", "ova", chunks=_uneven)

    assert (
        result.error
        == f"archive member {folder}/disk.qcow2: qcow2 image refused: backing_file: image has a backing file"
    )


def test_ova__every_disk_is_inspected_not_only_the_first() -> None:
    ova = _tar([("disk1.qcow2", qcow2_image()), ("disk2.qcow2", qcow2_with_backing_file())])

    assert "archive member disk2.qcow2" in (inspect(ova, "qcow2", "ova").error or "")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_tar([("disk.img", raw_image(4 * KiB))])[:1500], "the archive ends inside a member"),
        (_tar([("appliance.ovf", b"<Envelope/>")]), "the archive holds no disk image"),
        (_tar([("disk.img", raw_image(4 * KiB))], fmt=tarfile.GNU_FORMAT, kind=tarfile.GNUTYPE_SPARSE), "sparse"),
    ],
)
def test_ova__truncated_empty_or_sparse__is_refused(data: bytes, reason: str) -> None:
    assert reason in (inspect(data, "raw", "ova").error or "")


def test_ova__that_is_not_a_tarball__is_inspected_as_the_disk() -> None:
    assert inspect(qcow2_with_backing_file(), "qcow2", "ovf").error == (
        "qcow2 image refused: backing_file: image has a backing file"
    )
    assert inspect(raw_image(64 * KiB), "raw", "ova") == Inspection("raw", 64 * KiB, None)


def test_ova__whose_archive_qemu_reads_as_a_disk__is_refused() -> None:
    ova = _tar([("version=1\n", raw_image(4 * KiB))], fmt=tarfile.GNU_FORMAT)

    assert inspect(ova, "raw", "ova").error == "the archive itself reads as a vmdk image to qemu"


def test_ova__streamed__holds_only_small_regions_in_memory() -> None:
    chunk = raw_image(1 * MiB, random_bytes=True)
    size = 48 * MiB
    info = tarfile.TarInfo("disk.img")
    info.size = size
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    inspector = ImageInspector("raw", "ova")
    tracemalloc.start()
    try:
        inspector.feed(header)
        for _ in range(48):
            inspector.feed(chunk)
        inspector.feed(bytes(1024))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert inspector.finish() == Inspection("raw", size, None)
    assert peak < 4 * MiB


def test_what_qemu_reads_as_vmdk__declared_raw__is_refused_even_without_required_match() -> None:
    descriptor = b'#\x00\xff\nversion=1\ncreateType="monolithicFlat"\nRW 8 FLAT "/etc/passwd" 0\n'

    result = inspect(descriptor, "raw", require_format_match=False)

    assert result.error is not None and "which qemu reads as vmdk" in result.error
