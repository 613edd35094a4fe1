"""Fakes for Lambda handlers driven by devstack's event loop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from devstack.event_loop import LambdaContext


class RecordingHandler:
    """A Lambda handler that records what it was given and answers with ``respond(event)``."""

    def __init__(self, respond: Callable[[dict[str, Any]], Any] = lambda event: None) -> None:
        self.calls: list[tuple[dict[str, Any], LambdaContext]] = []
        self._respond = respond
        self._called = threading.Condition()

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> Any:
        with self._called:
            self.calls.append((event, context))
            self._called.notify_all()
        return self._respond(event)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [record for event, _ in self.calls for record in event["Records"]]

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
        with self._called:
            assert self._called.wait_for(predicate, timeout_s), f"handler calls so far: {self.calls}"
