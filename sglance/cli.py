"""The ``sglance`` command: create and upload through presigned URLs, resume, abort, show, download, migrate.

Authentication is the one of every OpenStack tool: ``--os-cloud`` (or ``OS_CLOUD``) names a cloud of clouds.yaml,
``OS_*`` variables and ``--os-*`` options fill in or replace it; the image endpoint is the catalog's unless
``--endpoint`` (``SGLANCE_ENDPOINT``) or an image endpoint override names it. Without any of those (and with
``--os-auth-type none``), ``--endpoint`` is used directly, with ``--token`` as ``X-Auth-Token`` and ``--header``s:
the local stack's development identity.

Exit codes: 0 done; 1 failed (API or S3 error, the server refused the bytes, timeout, nothing to resume, an image
of a migration failed or conflicts); 2 the image's checksums differ from the file's; 64 bad command line;
130 interrupted (Ctrl-C; an upload stays open: ``sglance resume`` continues it, a migration run again resumes).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from sglance.connection import DEFAULT_ENDPOINT, ApiConnection
from sglance.download import Downloader
from sglance.errors import (
    ChecksumMismatchError,
    ConfigurationError,
    SglanceError,
    TransferError,
    UploadInterruptedError,
    UploadRefusedError,
)
from sglance.formatting import format_download, format_plan, format_report, format_result, format_status
from sglance.migrate.run import Migration
from sglance.options import (
    add_create_options,
    add_migrate_options,
    add_transfer_options,
    copy_options,
    create_fields,
    selection,
    source_connection,
)
from sglance.progress import CopyBars, RichProgress
from sglance.uploader import Uploader

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


def _common(argv: Sequence[str], *, after_command: bool = False) -> _Parser:
    """The options every command takes, before the command (``sglance --os-cloud x migrate``) or after it.

    After it, nothing has a default: what was not given there keeps the value given before the command.
    """
    common = _Parser(add_help=False)
    common.add_argument(
        "--endpoint",
        default=os.environ.get("SGLANCE_ENDPOINT"),
        help="image API base URL, instead of the catalog's (env SGLANCE_ENDPOINT; without a cloud: "
        f"{DEFAULT_ENDPOINT})",
    )
    common.add_argument(
        "--token",
        default=os.environ.get("OS_AUTH_TOKEN"),
        help="without a cloud: a Keystone token, sent as X-Auth-Token (env OS_AUTH_TOKEN)",
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
    common.add_argument("--debug", action="store_true", help="log every request (tokens are masked)")
    try:
        import openstack.config
        from openstack import exceptions as sdk_exceptions
    except ImportError:  # the OpenStack options need openstacksdk; the dev stack's headers do not
        if after_command:
            for action in common._actions:
                action.default = argparse.SUPPRESS
        return common
    try:
        openstack.config.OpenStackConfig().register_argparse_arguments(common, list(argv), service_keys=["image"])
    except sdk_exceptions.ConfigException as exc:  # OS_CLOUD or --os-cloud names a cloud clouds.yaml lacks
        raise ConfigurationError(str(exc)) from exc
    if after_command:
        for action in common._actions:
            action.default = argparse.SUPPRESS
    return common


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argument parser of ``sglance`` (``argv`` decides which auth plugin's ``--os-*`` options exist)."""
    common = _common(argv, after_command=True)
    transfer = _Parser(add_help=False)
    add_transfer_options(transfer)

    parser = _Parser(
        prog="sglance",
        description="Serverless Glance's client: presigned uploads, downloads, migration.",
        parents=[_common(argv)],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    create = commands.add_parser(
        "create",
        parents=[common, transfer],
        help="create an image from FILE: register it, upload, wait for active, verify",
        description="Create the image, hash FILE (MD5 and SHA-512), send it straight to S3 in parallel parts, wait "
        "for the image to become active and compare its checksums with the file's.",
    )
    create.add_argument("name", metavar="NAME")
    create.add_argument("file", metavar="FILE")
    add_create_options(create)
    create.add_argument("--method", choices=("single", "multipart"), help="force a method (default: server picks)")
    upload = commands.add_parser(
        "upload",
        parents=[common, transfer],
        help="upload FILE as the data of IMAGE_ID (resumes an open multipart upload of the same size)",
        description="Hash FILE (MD5 and SHA-512, before sending), open an upload, send the bytes straight to S3, "
        "wait for the image to become active and compare its checksums with the file's.",
    )
    for sub in (upload, commands.add_parser("resume", parents=[common, transfer], help="finish an open upload")):
        sub.add_argument("image_id", metavar="IMAGE_ID")
        sub.add_argument("file", metavar="FILE")
    upload.add_argument("--method", choices=("single", "multipart"), help="force a method (default: server picks)")
    upload.add_argument("--restart", action="store_true", help="abort an open upload first instead of resuming it")
    abort = commands.add_parser("abort", parents=[common], help="cancel the open upload; the image is queued again")
    abort.add_argument("image_id", metavar="IMAGE_ID")
    status = commands.add_parser("status", parents=[common], help="show the open upload: parts done and missing")
    status.add_argument("image_id", metavar="IMAGE_ID")
    download = commands.add_parser(
        "download",
        parents=[common],
        help="download an image's data, verified (size, MD5, secure hash); resumes FILE.part",
    )
    download.add_argument("image_id", metavar="IMAGE_ID")
    download.add_argument("file", metavar="FILE", nargs="?", help="where to (default IMAGE_ID; '-': standard output)")
    download.add_argument("--no-resume", action="store_true", help="start again even if FILE.part exists")
    migrate = commands.add_parser(
        "migrate",
        parents=[common],
        help="copy images from a running Glance: metadata, members, data; idempotent and resumable",
        description="Copy the images of a Glance v2 API (the source) into this service (the target), keeping ids, "
        "metadata, members and their status; a second run copies only what is missing or changed. See "
        "docs/migration.md for what needs admin on each side.",
    )
    add_migrate_options(migrate)
    return parser


def target_connection(args: argparse.Namespace) -> ApiConnection:
    """The image API the command talks to (see the module docstring for the order of precedence)."""
    override = args.endpoint or getattr(args, "os_image_endpoint_override", None)
    override = override or getattr(args, "os_endpoint_override", None)
    cloud = getattr(args, "os_cloud", None) or getattr(args, "os_auth_url", None)
    if cloud and getattr(args, "os_auth_type", None) != "none":
        return ApiConnection.from_cloud(getattr(args, "os_cloud", None), args, endpoint=override)
    if args.token:
        return ApiConnection.from_token(override or DEFAULT_ENDPOINT, args.token, dict(args.header))
    return ApiConnection.from_headers(override or DEFAULT_ENDPOINT, dict(args.header))


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is now (rich redirects it above the progress bar)."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sglance``; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(arguments).parse_args(arguments)
    except ConfigurationError as exc:
        print(f"sglance: {exc}", file=sys.stderr)
        return EXIT_FAILED
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("sglance: %(message)s"))
    for name in ("sglance", "keystoneauth") if args.debug else ("sglance",):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO)
        logger.propagate = False
    image_id = getattr(args, "image_id", "IMAGE_ID")
    try:
        with Uploader(target_connection(args), wait_timeout_s=getattr(args, "wait_timeout", 900.0)) as up:
            return _dispatch(args, up)
    except KeyboardInterrupt:
        if args.command == "migrate":
            print("sglance: interrupted; run the same migrate again to resume", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(EXIT_INTERRUPTED)  # image threads in flight are dropped, as a kill would; the next run resumes
        print(
            f"sglance: interrupted; the upload stays open: 'sglance resume {image_id} FILE' continues it, "
            f"'sglance abort {image_id}' drops it",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except UploadRefusedError as exc:
        print(f"sglance: the upload was refused; image {exc.image_id} is {exc.status}: {exc.reason}", file=sys.stderr)
        return EXIT_FAILED
    except ChecksumMismatchError as exc:
        print(f"sglance: {exc}", file=sys.stderr)
        return EXIT_MISMATCH
    except TransferError as exc:
        print(
            f"sglance: {exc}\nsglance: the upload stays open: 'sglance resume {image_id} FILE' continues a multipart "
            "upload, 'sglance upload --restart' starts over",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except (UploadInterruptedError, SglanceError, OSError) as exc:
        print(f"sglance: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for name in ("sglance", "keystoneauth"):
            logging.getLogger(name).removeHandler(handler)


def _dispatch(args: argparse.Namespace, up: Uploader) -> int:
    progress = not args.quiet and sys.stderr.isatty()
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
    if args.command == "download":
        target = None if args.file == "-" else (args.file or args.image_id)
        bars = RichProgress() if progress and target is not None else None
        done = Downloader(up.api, up.pool).download(args.image_id, target, bars, resume=not args.no_resume)
        print(format_download(done), file=sys.stderr if target is None else sys.stdout)
        return EXIT_OK
    if args.command == "migrate":
        return _migrate(args, up, progress)
    wait = not args.no_wait
    if args.command == "create":
        result = up.create(create_fields(args, args.name), args.file, args.parallel, args.method, wait, progress)
    elif args.command == "resume":
        result = up.resume(args.image_id, args.file, args.parallel, wait=wait, progress=progress)
    else:
        result = up.upload(
            args.image_id, args.file, args.parallel, args.method, wait=wait, progress=progress, restart=args.restart
        )
    print(format_result(result))
    return EXIT_OK


def _migrate(args: argparse.Namespace, up: Uploader, progress: bool) -> int:
    from sglance.api import ImageApi

    source = source_connection(args, up.api.connection, dict(args.header))
    log.info("migrating from %s to %s", source.endpoint, up.api.endpoint)
    try:
        display = CopyBars() if progress and not args.dry_run else None
        migration = Migration(ImageApi(source), up, copy_options(args), args.parallel, display)
        if not args.dry_run:
            report = migration.migrate(selection(args))
        else:
            plans = migration.plan(selection(args))
    finally:
        source.close()
    if args.dry_run:
        would = [{"id": p.image_id, "name": p.name, "would": p.steps, "skip": p.skip_reason} for p in plans]
        print(json.dumps(would, indent=2) if args.format == "json" else format_plan(plans))
        return EXIT_OK
    print(json.dumps(report.as_dict(), indent=2) if args.format == "json" else format_report(report))
    return EXIT_OK if report.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
