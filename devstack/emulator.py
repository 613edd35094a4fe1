"""Make moto's DynamoDB atomic under concurrent requests, as DynamoDB is.

moto runs a ``TransactWriteItems`` by deep-copying every table it touches and, when any condition fails, putting
those copies back: a write that another request committed in between is silently undone (and the item the
failed transaction did not even touch goes with it). Real DynamoDB never loses a committed write, and the quota
counters and optimistic locking rely on that. Serialising moto's DynamoDB requests in the emulator process gives
moto the atomicity DynamoDB has; nothing changes for the code under test, which talks HTTP to the emulator.
"""

from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.RLock()


def serialize_moto_dynamodb() -> None:
    """Wrap moto's DynamoDB request handler in one lock (idempotent; this process's moto servers only)."""
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    if getattr(original, "serialized", False):
        return

    def call_action(self: Any) -> Any:
        with _LOCK:
            return original(self)

    call_action.serialized = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]
