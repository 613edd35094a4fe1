"""The test Keystone's life in a pytest session: install if missing, start, create the accounts, stop.

Any failure fails the tests loudly, with the script's own output; ``SGLANCE_SKIP_KEYSTONE=1`` (checked by the
``keystone`` fixture in tests/conftest.py) is the only way to skip them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.backends.keystone.accounts import KeystoneEnv, create_accounts, read_env_file
from tests.support.scripts import run_script as run_folder_script

SCRIPTS = Path(__file__).resolve().parent


def run_script(script: str, *args: str | Path, timeout: float) -> str:
    """Run one of this folder's scripts; its stdout, or a loud test failure carrying its output."""
    return run_folder_script(SCRIPTS, script, *args, timeout=timeout, skip_hint="SGLANCE_SKIP_KEYSTONE=1")


@contextmanager
def running_keystone(run_dir: Path) -> Iterator[KeystoneEnv]:
    """Keystone started in ``run_dir`` with the test accounts; stopped on exit (logs stay in ``run_dir/log``)."""
    started = time.perf_counter()
    run_script("install.sh", timeout=600)  # ~10 ms when installed, ~20-25 s cold
    installed = time.perf_counter()
    run_script("start.sh", run_dir, timeout=120)
    try:
        values = read_env_file(run_dir / "env")
        env = create_accounts(
            values["KEYSTONE_URL"], values["KEYSTONE_REGION"], values["KEYSTONE_ADMIN_PASSWORD"], run_dir
        )
        print(
            f"keystone: {env.url} ready in {time.perf_counter() - installed:.1f} s "
            f"(+{installed - started:.1f} s install check)"
        )
        yield env
    finally:
        run_script("stop.sh", run_dir, timeout=60)
