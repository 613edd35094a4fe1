"""Lambda SnapStart runtime hooks: what execution environments restored from one snapshot must not share.

With SnapStart (the API function; infra/stacks/api.py, docs/operators.md), Lambda runs a published version's init
once, snapshots its memory and resumes every new execution environment from that snapshot. Whatever init left in
memory is then identical in all of them:

- the ``random`` module's generator state (seeded once, at import): reseeded here from the OS after every restore,
  or every environment would draw the same retry jitter and the same "random" choices;
- boto3's default session (made by the first ``boto3.client`` and holding the credentials it resolved): dropped
  here, so clients built after the restore resolve credentials in the restored environment;
- SDK clients with their pooled connections and credentials, the Keystone session with its service token, the
  token caches and their per-process hashing key: whoever builds such a thing at init registers a refresher with
  ``on_restore`` (the API function renews its whole composition root: functions/api/handler.py).

Ids drawn per call from the OS's generator (``uuid.uuid4`` request and upload ids, ``secrets``) keep no state in
memory, so nothing needs refreshing for them.

The hooks run through ``snapshot_restore_py``, which the python3.12+ managed runtimes bundle (and MiniStack honours,
tests/e2e); where it is not importable (the local stack, a container) ``install`` registers nothing and the
function runs as without SnapStart. Lambda runs after-restore hooks in registration order within a 10-second limit.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable
from typing import Any

from shared.observability import get_logger

Refresher = Callable[[], None]

_refreshers: list[Refresher] = []
_installed = False
_lock = threading.Lock()


def on_restore(refresher: Refresher) -> Refresher:
    """Run ``refresher`` after every restore from a snapshot, after the built-in ones, in registration order."""
    with _lock:
        _refreshers.append(refresher)
    return refresher


def after_restore() -> None:
    """Make this environment's state its own: reseed ``random``, drop boto3's default session, run refreshers."""
    random.seed()
    _drop_boto3_default_session()
    with _lock:
        refreshers = list(_refreshers)
    for refresher in refreshers:
        refresher()
    get_logger().info("restored from a SnapStart snapshot", extra={"refreshers": len(refreshers)})


def install() -> bool:
    """Register ``after_restore`` with the runtime's hooks (once); False where the runtime has none."""
    global _installed  # noqa: PLW0603 - one registration per process, whoever imports first
    with _lock:
        if _installed:
            return True
        try:
            from snapshot_restore_py import register_after_restore
        except ImportError:
            return False
        register_after_restore(after_restore)
        _installed = True
        return True


def _drop_boto3_default_session() -> None:
    # never imported here just to reset it: a restore must not pay for boto3 if init did not load it
    boto3: Any = sys.modules.get("boto3")
    if boto3 is not None:
        boto3.DEFAULT_SESSION = None
