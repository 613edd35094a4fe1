"""Command-line options and what they turn into, shared by ``sglance`` and the ``openstack`` plugin."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from sglance.connection import ApiConnection
from sglance.errors import ConfigurationError
from sglance.migrate.copy import CopyOptions
from sglance.migrate.run import Selection
from sglance.transfer import RateLimit
from sglance.wire import MiB

VISIBILITIES = ("public", "private", "shared", "community")


def positive(value: str) -> int:
    """An argparse type: an integer of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def positive_float(value: str) -> float:
    """An argparse type: a number above 0."""
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return number


def key_value(value: str) -> tuple[str, str]:
    """An argparse type: ``KEY=VALUE``."""
    key, sep, content = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, content


def add_transfer_options(parser: argparse.ArgumentParser) -> None:
    """``--parallel``, ``--no-wait``, ``--wait-timeout``."""
    parser.add_argument("--parallel", type=positive, default=4, help="parts in flight at once (default 4)")
    parser.add_argument("--no-wait", action="store_true", help="return once the bytes are sent; do not verify")
    parser.add_argument(
        "--wait-timeout",
        type=positive_float,
        default=900.0,
        metavar="SECONDS",
        help="seconds to wait, after the last byte, for the image to become active (default 900)",
    )


def add_create_options(parser: argparse.ArgumentParser) -> None:
    """The image's fields, as ``openstack image create`` names them."""
    parser.add_argument("--id", help="the new image's id (default: the server picks a UUID)")
    parser.add_argument("--disk-format", default="raw", help="disk format (default raw)")
    parser.add_argument("--container-format", default="bare", help="container format (default bare)")
    parser.add_argument("--visibility", choices=VISIBILITIES, help="visibility (default: the server's, shared)")
    parser.add_argument("--protected", action="store_true", default=None, help="protect the image from deletion")
    parser.add_argument("--hidden", action="store_true", default=None, help="hide it from default lists (os_hidden)")
    parser.add_argument("--min-disk", type=int, metavar="GB", help="minimum disk size to boot it (GB)")
    parser.add_argument("--min-ram", type=int, metavar="MB", help="minimum RAM to boot it (MB)")
    parser.add_argument(
        "--property", type=key_value, action="append", default=[], metavar="KEY=VALUE", help="a property, repeatable"
    )
    parser.add_argument("--tag", action="append", default=[], help="a tag, repeatable")


def create_fields(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """``POST /v2/images`` body from the options of ``add_create_options``."""
    fields: dict[str, Any] = {
        "name": name,
        "disk_format": args.disk_format,
        "container_format": args.container_format,
        **dict(args.property),
    }
    optional = {
        "id": args.id,
        "visibility": args.visibility,
        "protected": args.protected,
        "os_hidden": args.hidden,
        "min_disk": args.min_disk,
        "min_ram": args.min_ram,
    }
    fields.update({key: value for key, value in optional.items() if value is not None})
    if args.tag:
        fields["tags"] = list(args.tag)
    return fields


def add_migrate_options(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    """What ``migrate`` copies from where, and how fast (``output``: and ``--format``, which cliff has itself)."""
    source = parser.add_argument_group("source (a running Glance)")
    source.add_argument(
        "--from-cloud", metavar="CLOUD", help="the source's cloud in clouds.yaml (default: the target's)"
    )
    source.add_argument(
        "--from-endpoint", metavar="URL", help="the source's image API (default: the catalog's image endpoint)"
    )
    chosen = parser.add_argument_group("which images (default: every image the source lists to the caller)")
    chosen.add_argument("--image", action="append", default=[], metavar="ID", help="this image only, repeatable")
    chosen.add_argument(
        "--project", action="append", default=[], metavar="ID", help="owned by this project, repeatable"
    )
    chosen.add_argument(
        "--visibility", action="append", default=[], choices=VISIBILITIES, help="of this visibility, repeatable"
    )
    how = parser.add_argument_group("how")
    how.add_argument("--dry-run", action="store_true", help="print what would be copied or changed; change nothing")
    how.add_argument("--parallel", type=positive, default=4, help="images copied at once (default 4)")
    how.add_argument("--part-parallel", type=positive, default=4, help="parts of one image at once (default 4)")
    how.add_argument(
        "--multipart-over",
        type=positive,
        default=64,
        metavar="MIB",
        help="multipart uploads (resumable part by part) for images over this size (default 64 MiB)",
    )
    how.add_argument("--limit-rate", type=positive_float, metavar="MIB/S", help="bandwidth cap for the whole run")
    how.add_argument(
        "--wait-timeout",
        type=positive_float,
        default=900.0,
        metavar="SECONDS",
        help="seconds to wait, after an image's last byte, for it to become active (default 900)",
    )
    if output:
        how.add_argument("--format", choices=("table", "json"), default="table", help="the summary's format")


def copy_options(args: argparse.Namespace) -> CopyOptions:
    """``CopyOptions`` from the options of ``add_migrate_options``."""
    return CopyOptions(
        part_parallel=args.part_parallel,
        multipart_over=args.multipart_over * MiB,
        limit=RateLimit(args.limit_rate * MiB) if args.limit_rate else None,
        wait_timeout_s=args.wait_timeout,
    )


def selection(args: argparse.Namespace) -> Selection:
    """``Selection`` from the options of ``add_migrate_options``."""
    return Selection(tuple(args.image), tuple(args.project), tuple(args.visibility))


def source_connection(args: argparse.Namespace, target: ApiConnection, headers: Mapping[str, str]) -> ApiConnection:
    """The source Glance: ``--from-cloud``, else the target's credentials at ``--from-endpoint`` or the catalog's.

    Raises:
        ConfigurationError: the source would be the target itself.
    """
    if args.from_cloud:
        source = ApiConnection.from_cloud(args.from_cloud, endpoint=args.from_endpoint)
    elif target.session.auth is None and args.from_endpoint:
        source = ApiConnection.from_headers(args.from_endpoint, headers)
    else:
        source = ApiConnection(
            target.session, args.from_endpoint, interface=target.interface, region_name=target.region_name
        )
    if source.endpoint == target.endpoint:
        raise ConfigurationError(
            f"the source and the target are both {target.endpoint}: name the target (--endpoint, "
            "--os-image-endpoint-override) or the source (--from-endpoint, --from-cloud)"
        )
    return source
