"""docs/conformance.md from the per-test JSON files in docs/conformance/ (ours-*.json from ``make tempest``, the
reference-*.json of real Glance 33 on the shared harness)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

PROFILES = ("default", "coverage")
SUITE_TITLES = {"tempest": "Tempest 47 `tempest.api.image`", "plugin": "glance-tempest-plugin 0.17.0"}
_PREFIXES = ("tempest.api.image.v2.", "glance_tempest_plugin.tests.")

HEADER = """# Conformance: OpenStack's own tests, ours against real Glance 33

Written by `make tempest` (`tests/conformance/tempest.py`; `--docs-only` rewrites this page from the JSON files).
It starts the tests' Keystone 30, the local stack in Keystone mode with two stores (`fast`, the image bucket,
weight 200; `slow`, a file store, weight 100), a second API worker registered as `image_remote`, and a loopback
fixture server for the web-download images, then runs Tempest 47 (`tempest.api.image`) and glance-tempest-plugin
0.17.0 from their own virtualenv (`tests/backends/tempest/install.sh`) with the feature flags of the reference
Glance. The reference columns are real Glance 33 on the shared harness (`shared/reference/glance-reference`,
`docs/conformance/reference-*.json`).

Profiles: **default** is `require_image_format_match = true` (Glance's default; ours
`SGLANCE_REQUIRE_IMAGE_FORMAT_MATCH`) with Tempest's `image_format_enforcement = true`; **coverage** turns both
off, which lets `ListUserImagesTest` upload bogus data.

**When it runs.** Not in `make test`. Measured on this 2-core machine under a load average of 8-16
(other sessions' work): Tempest's image tests took 57-122 s (default profile) and 137-203 s (coverage),
the plugin 802 s for one profile, so both suites in both profiles take about half an hour with the stack
starts, more than the 25-minute budget of the whole `make test`. Run `make tempest` before every stop
(and on any change to the API's behaviour), and commit the JSON files and this page with the change;
`TEMPEST_ARGS="--profile default --suite tempest"` (about 2 minutes) is the quick check.
"""


def _load(folder: Path, kind: str, suite: str, profile: str) -> dict[str, Any] | None:
    path = folder / f"{kind}-{suite}-{profile}.json"
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _short(test_id: str) -> str:
    for prefix in _PREFIXES:
        if test_id.startswith(prefix):
            return test_id[len(prefix) :]
    return test_id


def _counts(record: dict[str, Any] | None) -> str:
    if record is None:
        return "not run"
    counts = Counter(test["status"] for test in record["tests"].values())
    parts = [f"{counts[s]} {name}" for s, name in (("pass", "passed"), ("fail", "failed"), ("skip", "skipped"))]
    parts += [f"{counts[s]} {s}" for s in ("excluded", "missing") if counts[s]]
    return ", ".join(parts)


def _why(ours: dict[str, str] | None) -> str:
    if ours is None or ours["status"] == "pass":
        return ""
    return ours.get("reason", "").replace("|", "\\|").replace("\n", " ")[:160]


def write_report(folder: Path, target: Path) -> str:
    """Rewrite ``target`` from the JSON files in ``folder``; the summary lines."""
    lines = [
        HEADER,
        "## Totals",
        "",
        "| suite | profile | real Glance 33 | ours | ours: wall time |",
        "|---|---|---|---|---|",
    ]
    tables: list[str] = []
    totals: list[str] = []
    for suite, title in SUITE_TITLES.items():
        for profile in PROFILES:
            ref, ours = _load(folder, "reference", suite, profile), _load(folder, "ours", suite, profile)
            if ref is None and ours is None:
                continue
            wall = f"{ours['wall_seconds']} s" if ours is not None else ""
            totals.append(f"| {title} | {profile} | {_counts(ref)} | {_counts(ours)} | {wall} |")
        tables += _suite_table(folder, suite, title)
    lines += totals
    notes = folder / "notes.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    lines += ["", *tables]
    target.write_text("\n".join(lines).rstrip() + "\n")
    return "\n".join(totals)


def _suite_table(folder: Path, suite: str, title: str) -> list[str]:
    records = {
        (kind, profile): _load(folder, kind, suite, profile) for kind in ("reference", "ours") for profile in PROFILES
    }
    ids = sorted({test for record in records.values() if record is not None for test in record["tests"]})
    if not ids:
        return []
    out = [
        f"## {title}: per test",
        "",
        "Statuses: pass, fail, skip (the reason is in the JSON file), excluded (`--exclude-regex`), missing (did not",
        "run), blank (not run in that profile). *why (ours)* is the last line of our failure's traceback.",
        "",
        "| test | real, default | ours, default | real, coverage | ours, coverage | why (ours) |",
        "|---|---|---|---|---|---|",
    ]
    for test in ids:
        cells = []
        why = ""
        for profile in PROFILES:
            for kind in ("reference", "ours"):
                record = records[(kind, profile)]
                status = record["tests"].get(test) if record is not None else None
                cells.append(status["status"] if status else "")
                if kind == "ours" and not why:
                    why = _why(status)
        out.append(f"| {_short(test)} | {' | '.join(cells)} | {why} |")
    out.append("")
    return out
