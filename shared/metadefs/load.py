"""``python -m shared.metadefs.load [DIR]``: load a folder of metadata definition files into the catalog.

The files have the format of Glance's ``etc/metadefs/*.json`` (one namespace each, with its resource type
associations, properties, objects and tags). Loading is idempotent: an existing namespace is left alone unless
``--merge`` (add what it lacks) or ``--overwrite`` (replace it) is given, as ``glance-manage db_load_metadefs``.
The table and endpoint come from the usual settings (``SGLANCE_TABLE_NAME``, ``SGLANCE_AWS_ENDPOINT_URL``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from shared.bootstrap import Container
from shared.config import get_settings
from shared.data.metadefs import MetadefRepository
from shared.domain.errors import GlanceError
from shared.services.metadefs import load_namespace

DEFINITIONS = Path(__file__).resolve().parent / "definitions"


def load_directory(repo: MetadefRepository, folder: Path, owner: str = "admin", mode: str = "skip") -> Counter[str]:
    """Load every ``*.json`` of ``folder`` (in name order); returns how many were created, skipped, merged, replaced.

    Raises:
        ValueError: a file is not valid JSON or not a valid definition (its name in the message); files before it
            are loaded, files after it are not.
    """
    outcomes: Counter[str] = Counter()
    now = datetime.now(UTC)
    for path in sorted(folder.glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            outcomes[load_namespace(repo, body, owner, mode, now)] += 1
        except (ValueError, GlanceError) as exc:
            raise ValueError(f"{path.name}: {exc}") from exc
    return outcomes


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; 0 when every file loaded."""
    parser = argparse.ArgumentParser(prog="python -m shared.metadefs.load", description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFINITIONS, help="folder of *.json definition files")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--merge", action="store_true", help="add what an existing namespace lacks")
    group.add_argument("--overwrite", action="store_true", help="replace existing namespaces with the files'")
    parser.add_argument("--owner", default="admin", help="owner of namespaces a file names no owner for")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    mode = "merge" if args.merge else "overwrite" if args.overwrite else "skip"
    container = Container(get_settings())
    try:
        outcomes = load_directory(container.metadef_repository, args.folder, args.owner, mode)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{outcomes[k]} {k}" for k in ("created", "merged", "replaced", "skipped"))
    print(f"metadefs from {args.folder}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
