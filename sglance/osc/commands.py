"""``openstack image upload|download|migrate``: sglance's operations as python-openstackclient commands.

Names OSC does not use (it has ``image create``, ``image save``, ``image stage``, ``image import``), so installing
the plugin changes no existing command. Output goes through cliff's formatters (``-f json``, ``-c``, ...).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from osc_lib import exceptions
from osc_lib.command import command

from sglance.api import ImageApi
from sglance.connection import ApiConnection
from sglance.download import Downloader
from sglance.errors import SglanceError
from sglance.formatting import ranges
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
from sglance.wire import UploadResult, UploadSession

log = logging.getLogger(__name__)

Row = tuple[tuple[str, ...], tuple[Any, ...]]


def _show(data: dict[str, Any]) -> Row:
    return tuple(data), tuple(data.values())


def _result_row(result: UploadResult) -> Row:
    return _show(
        {
            "id": result.image_id,
            "status": result.status,
            "size": result.size,
            "method": result.method,
            "parts_sent": len(result.parts_sent),
            "resumed": result.resumed,
            "mib_per_s": round(result.mib_per_s, 1),
            "seconds_to_active": None if result.seconds_to_active is None else round(result.seconds_to_active, 2),
            "checksum": result.checksum,
            "os_hash_value": result.os_hash_value,
            "verified": result.seconds_to_active is not None,
        }
    )


def _progress(app: Any) -> bool:
    return bool(getattr(app.options, "verbose_level", 1) >= 1 and sys.stderr.isatty())


class _Client:
    """What every command shares: the CLI's connection, as an ``Uploader``."""

    app: Any

    @contextmanager
    def uploader(self, parsed_args: argparse.Namespace) -> Iterator[Uploader]:
        """An ``Uploader`` on the CLI's session; sglance's errors become the CLI's command errors."""
        connection: ApiConnection = self.app.client_manager.sglance
        with Uploader(connection, wait_timeout_s=getattr(parsed_args, "wait_timeout", 900.0)) as up:
            try:
                yield up
            except (SglanceError, OSError) as exc:
                raise exceptions.CommandError(str(exc)) from exc


class UploadImage(_Client, command.ShowOne):
    """Create an image and upload its file through presigned URLs: parallel parts, then verified once active."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        """The options of ``image create`` that matter here, and the transfer's."""
        parser = super().get_parser(prog_name)
        parser.add_argument("name", metavar="<image-name>", nargs="?", help="new image name (not with --image)")
        parser.add_argument("--file", required=True, metavar="<file>", help="the image data to upload")
        parser.add_argument(
            "--image", metavar="<image-id>", help="upload into this existing, queued image instead of creating one"
        )
        parser.add_argument("--method", choices=("single", "multipart"), help="force a method (default: server picks)")
        add_create_options(parser)
        add_transfer_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Row:
        """Create (unless --image), upload, wait, verify."""
        args = parsed_args
        if bool(args.image) == bool(args.name):
            raise exceptions.CommandError("give either <image-name> (a new image) or --image (an existing one)")
        wait, progress = not args.no_wait, _progress(self.app)
        with self.uploader(args) as up:
            if args.image:
                result = up.upload(args.image, args.file, args.parallel, args.method, wait, progress)
            else:
                fields = create_fields(args, args.name)
                result = up.create(fields, args.file, args.parallel, args.method, wait, progress)
        return _result_row(result)


class ResumeUpload(_Client, command.ShowOne):
    """Finish the open multipart upload of an image: only the parts S3 lacks are sent."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        """The image and its file."""
        parser = super().get_parser(prog_name)
        parser.add_argument("image", metavar="<image-id>")
        parser.add_argument("--file", required=True, metavar="<file>")
        add_transfer_options(parser)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Row:
        """Resume, wait, verify."""
        args = parsed_args
        with self.uploader(args) as up:
            result = up.resume(args.image, args.file, args.parallel, not args.no_wait, _progress(self.app))
        return _result_row(result)


class ShowUpload(_Client, command.ShowOne):
    """Show an image's open upload: method, size, parts done and missing."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        """The image."""
        parser = super().get_parser(prog_name)
        parser.add_argument("image", metavar="<image-id>")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Row:
        """``GET /v2/images/{id}/upload``."""
        with self.uploader(parsed_args) as up:
            session: UploadSession | None = up.status(parsed_args.image)
        if session is None:
            raise exceptions.CommandError(f"image {parsed_args.image} has no open upload")
        missing = session.missing_parts
        done = sorted(p.number for p in session.uploaded_parts if p.number not in missing)
        return _show(
            {
                "image_id": session.image_id,
                "image_status": session.image_status,
                "upload_id": session.upload_id,
                "method": session.method,
                "size": session.size,
                "part_size": session.part_size,
                "parts_count": session.parts_count,
                "parts_done": ranges(done),
                "parts_missing": ranges(missing),
                "expires_at": session.expires_at,
            }
        )


class AbortUpload(_Client, command.Command):
    """Cancel an image's open upload: its bytes are deleted and the image is queued again."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        """The image."""
        parser = super().get_parser(prog_name)
        parser.add_argument("image", metavar="<image-id>")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> None:
        """``DELETE /v2/images/{id}/upload``."""
        with self.uploader(parsed_args) as up:
            up.abort(parsed_args.image)


class DownloadImage(_Client, command.ShowOne):
    """Download an image's data, verified (size, MD5 and secure hash); an interrupted download resumes."""

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        """The image and where to."""
        parser = super().get_parser(prog_name)
        parser.add_argument("image", metavar="<image-id>")
        parser.add_argument("--file", metavar="<file>", help="where to (default: the image id)")
        parser.add_argument("--no-resume", action="store_true", help="start again even if <file>.part exists")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> Row:
        """Download and verify."""
        args = parsed_args
        bars = RichProgress() if _progress(self.app) else None
        with self.uploader(args) as up:
            downloader = Downloader(up.api, up.pool)
            done = downloader.download(args.image, args.file or args.image, bars, resume=not args.no_resume)
        return _show(
            {
                "id": done.image_id,
                "file": done.path,
                "size": done.size,
                "bytes_received": done.bytes_received,
                "resumed_from": done.resumed_from,
                "checksum": done.checksum,
                "os_hash_algo": done.os_hash_algo,
                "os_hash_value": done.os_hash_value,
                "verified": True,
            }
        )


class MigrateImages(_Client, command.Lister):
    """Copy images from a running Glance into this image service: ids, metadata, members, data (verified).

    Idempotent and resumable: a second run copies only what is missing or changed. The target is this command's
    image endpoint (e.g. --os-image-endpoint-override before the catalog is switched); the source is
    --from-cloud, --from-endpoint, or the catalog's image endpoint. See docs/migration.md.
    """

    failed = False

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        """Source, selection, speed."""
        parser = super().get_parser(prog_name)
        add_migrate_options(parser, output=False)
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
        """Plan (``--dry-run``: only that), then copy; one row per image."""
        args = parsed_args
        with self.uploader(args) as up:
            source = source_connection(args, up.api.connection, {})
            display = CopyBars() if _progress(self.app) and not args.dry_run else None
            migration = Migration(ImageApi(source), up, copy_options(args), args.parallel, display)
            if args.dry_run:
                plans = migration.plan(selection(args))
                columns: tuple[str, ...] = ("id", "name", "owner", "visibility", "status", "size", "would")
                rows: list[tuple[Any, ...]] = [
                    (p.image_id, p.name, p.source.get("owner"), p.source.get("visibility"), p.source.get("status"))
                    + (p.size, p.skip_reason and f"skip: {p.skip_reason}" or ", ".join(p.steps) or "nothing")
                    for p in plans
                ]
                return columns, rows
            report = migration.migrate(selection(args))
        self.failed = not report.ok
        self.app.stderr.write(
            f"{len(report.outcomes)} image(s), {report.bytes_copied} bytes copied in {report.total_seconds:.1f} s "
            f"({report.mib_per_s:.1f} MiB/s, {report.images_per_s:.1f} images/s)\n"
        )
        columns = ("id", "name", "result", "steps", "size", "bytes_copied", "resumed", "seconds", "detail")
        rows = [
            (o.image_id, o.name, o.result, ", ".join(o.steps), o.size, o.bytes_copied, o.resumed, round(o.seconds, 2))
            + ("; ".join(filter(None, [o.detail, *o.warnings])),)
            for o in report.outcomes
        ]
        return columns, rows

    def run(self, parsed_args: argparse.Namespace) -> int:
        """The table first, then exit 1 if an image failed or conflicts."""
        code = super().run(parsed_args)
        return 1 if self.failed else code
