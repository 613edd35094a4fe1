"""The ``sglance`` command: upload an image file through the presigned upload API, resume, abort, show status.

Exit codes: 0 done; 1 failed (API or S3 error, the server refused the bytes, timeout, nothing to resume);
2 the active image's checksums differ from the file's; 64 bad command line; 130 interrupted (Ctrl-C; the upload
stays open: ``sglance resume`` continues it, ``sglance abort`` drops it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from sglance.uploader import (
    DEFAULT_ENDPOINT,
    ChecksumMismatchError,
    MiB,
    SglanceError,
    TransferError,
    Uploader,
    UploadInterruptedError,
    UploadRefusedError,
    UploadResult,
    UploadSession,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_MISMATCH = 2
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130

log = logging.getLogger("sglance")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 64 so that 2 means only a checksum mismatch."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _header(value: str) -> tuple[str, str]:
    name, sep, content = value.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    return name.strip(), content.strip()


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sglance``."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--endpoint",
        default=os.environ.get("SGLANCE_ENDPOINT", DEFAULT_ENDPOINT),
        help="image API base URL (env SGLANCE_ENDPOINT; default %(default)s)",
    )
    common.add_argument(
        "--token",
        default=os.environ.get("OS_AUTH_TOKEN"),
        help="Keystone token, sent as X-Auth-Token (env OS_AUTH_TOKEN)",
    )
    common.add_argument(
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar="'NAME: VALUE'",
        help="extra header for API calls, repeatable (dev stack identity: X-Project-Id, X-User-Id, X-Roles)",
    )
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no messages; only the result")

    transfer = _Parser(add_help=False)
    transfer.add_argument("image_id", metavar="IMAGE_ID")
    transfer.add_argument("file", metavar="FILE")
    transfer.add_argument("--parallel", type=_positive, default=4, help="parts in flight at once (default 4)")
    transfer.add_argument("--no-wait", action="store_true", help="return once the bytes are sent; do not verify")
    transfer.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds to wait, after the last byte, for the image to become active (default 900)",
    )

    parser = _Parser(prog="sglance", description="Upload image data to Serverless Glance through presigned URLs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    upload = commands.add_parser(
        "upload",
        parents=[common, transfer],
        help="upload FILE as the data of IMAGE_ID (resumes an open multipart upload of the same size)",
        description="Hash FILE (MD5 and SHA-512, before sending), open an upload, send the bytes straight to S3, "
        "wait for the image to become active and compare its checksums with the file's.",
    )
    upload.add_argument("--method", choices=("single", "multipart"), help="force a method (default: server picks)")
    upload.add_argument("--restart", action="store_true", help="abort an open upload first instead of resuming it")
    commands.add_parser(
        "resume",
        parents=[common, transfer],
        help="finish the open multipart upload of IMAGE_ID from FILE (only missing parts are sent)",
    )
    abort = commands.add_parser("abort", parents=[common], help="cancel the open upload; the image is queued again")
    abort.add_argument("image_id", metavar="IMAGE_ID")
    status = commands.add_parser("status", parents=[common], help="show the open upload: parts done and missing")
    status.add_argument("image_id", metavar="IMAGE_ID")
    return parser


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is now (rich redirects it above the progress bar)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sglance``; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("sglance: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    log.propagate = False
    try:
        with Uploader(
            args.endpoint, dict(args.header), token=args.token, wait_timeout_s=getattr(args, "timeout", 0)
        ) as up:
            return _dispatch(args, up)
    except KeyboardInterrupt:
        image_id = getattr(args, "image_id", "IMAGE_ID")
        print(
            f"sglance: interrupted; the upload stays open: 'sglance resume {image_id} FILE' continues it, "
            f"'sglance abort {image_id}' drops it",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except UploadInterruptedError as exc:
        print(f"sglance: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except UploadRefusedError as exc:
        print(f"sglance: the upload was refused; image {exc.image_id} is {exc.status}: {exc.reason}", file=sys.stderr)
        return EXIT_FAILED
    except ChecksumMismatchError as exc:
        print(f"sglance: {exc}", file=sys.stderr)
        return EXIT_MISMATCH
    except TransferError as exc:
        image_id = getattr(args, "image_id", "IMAGE_ID")
        print(
            f"sglance: {exc}\nsglance: the upload stays open: 'sglance resume {image_id} FILE' continues a multipart "
            "upload, 'sglance upload --restart' starts over",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except (SglanceError, OSError) as exc:
        print(f"sglance: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        log.removeHandler(handler)


def _dispatch(args: argparse.Namespace, up: Uploader) -> int:
    if args.command == "abort":
        up.abort(args.image_id)
        print(f"aborted the upload of image {args.image_id}; it is queued")
        return EXIT_OK
    if args.command == "status":
        session = up.status(args.image_id)
        if session is None:
            print(f"image {args.image_id} has no open upload")
            return EXIT_FAILED
        print(format_status(session))
        return EXIT_OK
    progress = not args.quiet and sys.stderr.isatty()
    if args.command == "resume":
        result = up.resume(args.image_id, args.file, args.parallel, wait=not args.no_wait, progress=progress)
    else:
        result = up.upload(
            args.image_id,
            args.file,
            args.parallel,
            args.method,
            wait=not args.no_wait,
            progress=progress,
            restart=args.restart,
        )
    print(format_result(result))
    return EXIT_OK


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


def _listed(numbers: Sequence[int]) -> str:
    return f": {_ranges(numbers)}" if numbers else ""


def _ranges(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``1-3,7``."""
    spans: list[list[int]] = []
    for number in sorted(numbers):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


if __name__ == "__main__":
    sys.exit(main())
