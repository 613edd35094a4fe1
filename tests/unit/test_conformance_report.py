"""docs/conformance.md from per-test JSON files (tests/conformance/report.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conformance.report import write_report

T = "tempest.api.image.v2.test_images.ImportImagesTest."


def _write(folder: Path, name: str, tests: dict[str, tuple[str, str]], **extra: object) -> None:
    record = {"tests": {t: {"status": s, "reason": r} for t, (s, r) in tests.items()}, **extra}
    (folder / name).write_text(json.dumps(record))


def test_report__counts_each_run_and_lists_every_test_with_our_failure_reason(tmp_path: Path) -> None:
    _write(tmp_path, "reference-tempest-default.json", {T + "a": ("pass", ""), T + "b": ("pass", "")})
    _write(
        tmp_path,
        "ours-tempest-default.json",
        {T + "a": ("pass", ""), T + "b": ("fail", "AssertionError: 404 != 200 | x")},
        wall_seconds=42,
    )
    _write(tmp_path, "reference-tempest-coverage.json", {T + "a": ("pass", ""), T + "b": ("skip", "no")})
    page = tmp_path / "conformance.md"

    summary = write_report(tmp_path, page)

    text = page.read_text()
    assert "| Tempest 47 `tempest.api.image` | default | 2 passed, 0 failed, 0 skipped | 1 passed, 1 failed" in summary
    assert "| coverage | 1 passed, 0 failed, 1 skipped | not run |" in text
    assert "| test_images.ImportImagesTest.b | pass | fail | skip |  | AssertionError: 404 != 200 \\| x |" in text
    assert "| test_images.ImportImagesTest.a | pass | pass | pass |  |  |" in text
    assert "42 s" in text
