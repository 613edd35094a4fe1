"""Running the shell scripts that start real backends for the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


def run_script(folder: Path, script: str, *args: str | Path, timeout: float, skip_hint: str) -> str:
    """Run ``folder/script``; its stdout, or a loud test failure carrying its output (``skip_hint`` says how
    to skip these tests on purpose)."""
    # through bash: a checkout or copy that lost the executable bit must still work
    command = ["bash", str(folder / script), *map(str, args)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script} did not finish in {timeout:.0f} s: {exc.stderr!r}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"{script} failed (exit {done.returncode}); {skip_hint} skips these tests on purpose\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-6000:]}",
            pytrace=False,
        )
    return done.stdout
