"""What the commands print: upload and download summaries, an upload's parts, a migration's plan and its outcome."""

from __future__ import annotations

from collections.abc import Sequence

from sglance.download import DownloadResult
from sglance.migrate.plan import ImagePlan
from sglance.migrate.run import MigrationReport
from sglance.wire import MiB, UploadResult, UploadSession


def format_result(result: UploadResult) -> str:
    """The summary printed after an upload."""
    sent = f"{result.bytes_sent / MiB:.1f} MiB"
    if result.method == "multipart":
        sent += f" in {len(result.parts_sent)} part(s)" + (" (resumed)" if result.resumed else "")
    lines = [
        f"image {result.image_id} {result.status}: {result.size} bytes ({result.size / MiB:.1f} MiB), {result.method}",
        f"sent {sent} in {result.seconds:.2f} s ({result.mib_per_s:.1f} MiB/s); hashed in {result.hash_seconds:.2f} s",
    ]
    if result.seconds_to_active is not None:
        lines.append(f"active {result.seconds_to_active:.2f} s after the last byte; checksums verified")
        lines.append(f"checksum (md5) {result.checksum}")
        lines.append(f"os_hash_value (sha512) {result.os_hash_value}")
    else:
        lines.append("not waiting: follow it with 'openstack image show' (or sglance status)")
    return "\n".join(lines)


def format_status(session: UploadSession) -> str:
    """The session as ``sglance status`` prints it."""
    lines = [
        f"image {session.image_id}: {session.image_status}, {session.method} upload {session.upload_id}",
        f"size {session.size} bytes ({session.size / MiB:.1f} MiB); expires {session.expires_at}",
    ]
    if session.method == "multipart":
        missing = session.missing_parts
        done = [p for p in session.uploaded_parts if p.number not in missing]
        part_size = (session.part_size or 0) / MiB
        done_mib = sum(p.size for p in done) / MiB
        lines.append(f"parts: {session.parts_count} of {part_size:.1f} MiB (the last one may be smaller)")
        lines.append(f"done: {len(done)} ({done_mib:.1f} MiB){_listed([p.number for p in done])}")
        lines.append(f"missing: {len(missing)}{_listed(missing)}")
    return "\n".join(lines)


def format_download(result: DownloadResult) -> str:
    """The summary printed after a download."""
    rate = result.bytes_received / MiB / result.seconds if result.seconds > 0 else 0.0
    resumed = f", resumed at byte {result.resumed_from}" if result.resumed_from else ""
    return "\n".join(
        [
            f"image {result.image_id} -> {result.path}: {result.size} bytes ({result.size / MiB:.1f} MiB){resumed}",
            f"received {result.bytes_received / MiB:.1f} MiB in {result.seconds:.2f} s ({rate:.1f} MiB/s); "
            "size, checksum and os_hash_value verified",
            f"checksum (md5) {result.checksum}",
            f"os_hash_value ({result.os_hash_algo}) {result.os_hash_value}",
        ]
    )


def format_plan(plans: Sequence[ImagePlan]) -> str:
    """The dry run: what each image would need."""
    rows = [
        [
            plan.image_id,
            _short(plan.name),
            str(plan.source.get("owner") or ""),
            str(plan.source.get("visibility")),
            str(plan.source.get("status")),
            _mib(plan.size),
            plan.skip_reason and f"skip: {plan.skip_reason}" or (", ".join(plan.steps) or "nothing (unchanged)"),
        ]
        for plan in plans
    ]
    todo = sum(1 for plan in plans if plan.steps and not plan.skip_reason)
    footer = f"{len(plans)} image(s), {todo} to copy or update; dry run: nothing was changed"
    return table(["id", "name", "owner", "visibility", "status", "MiB", "would"], rows) + "\n" + footer


def format_report(report: MigrationReport) -> str:
    """The summary table of a migration run, then the totals."""
    rows = [
        [
            o.image_id,
            _short(o.name),
            o.result + (" (resumed)" if o.resumed else ""),
            ", ".join(o.steps) or "-",
            _mib(o.size),
            _mib(o.bytes_copied),
            f"{o.seconds:.1f}",
            "; ".join(filter(None, [o.detail, *o.warnings])),
        ]
        for o in report.outcomes
    ]
    counts = ", ".join(
        f"{report.count(result)} {result}"
        for result in ("copied", "created", "updated", "unchanged", "skipped", "conflict", "failed")
        if report.count(result)
    )
    footer = (
        f"{len(report.outcomes)} image(s): {counts or 'nothing to do'}; {report.bytes_copied / MiB:.1f} MiB copied "
        f"in {report.total_seconds:.1f} s ({report.mib_per_s:.1f} MiB/s, {report.images_per_s:.1f} images/s)"
    )
    headers = ["id", "name", "result", "steps", "MiB", "copied MiB", "s", "detail"]
    return table(headers, rows) + "\n" + footer


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: columns padded to their widest cell, the last one left free."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * width for width in widths]), *(line(row) for row in rows)])


def _mib(size: int) -> str:
    return f"{size / MiB:.1f}"


def _short(name: str | None, width: int = 30) -> str:
    text = name or ""
    return text if len(text) <= width else text[: width - 1] + "…"


def _listed(numbers: Sequence[int]) -> str:
    return f": {ranges(numbers)}" if numbers else ""


def ranges(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``1-3,7``."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
