"""A local stand-in for EventBridge schedules: each scheduled Lambda handler runs every ``interval`` seconds.

The local stack runs the sweeper (``functions.sweeper.handler``) this way, on the deployed schedule
(``sweep_interval_seconds``), with the event and context shape EventBridge and Lambda give it. A run that raises is
logged and the schedule goes on, as a scheduled rule with no retries does.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devstack.event_loop import LambdaContext, LambdaHandler, resolve_handler

log = logging.getLogger(__name__)

SWEEPER_HANDLER = "functions.sweeper.handler:handler"


@dataclass(frozen=True)
class Schedule:
    """One rule: a handler (``"module:function"`` or a callable) and its rate in seconds."""

    handler: str | LambdaHandler
    interval_s: float


def scheduled_event(rule: str) -> dict[str, Any]:
    """The event EventBridge sends a scheduled rule's target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [f"arn:aws:events:local:000000000000:rule/{rule}"],
        "detail": {},
    }


class Scheduler:
    """Runs each schedule's handler on its own thread, first one interval after ``start``."""

    def __init__(self, schedules: Mapping[str, Schedule], stop_event: threading.Event | None = None) -> None:
        self._schedules = dict(schedules)
        self._stop = stop_event or threading.Event()
        self._threads: list[threading.Thread] = []
        self.runs: dict[str, int] = dict.fromkeys(self._schedules, 0)

    def start(self) -> None:
        """Resolve the handlers and start one timer thread per schedule."""
        if self._threads:
            raise RuntimeError("the scheduler is already running")
        self._stop.clear()
        for name, schedule in self._schedules.items():
            handler = resolve_handler(schedule.handler, fresh=True) if isinstance(schedule.handler, str) else None
            target = handler or schedule.handler
            assert callable(target)
            thread = threading.Thread(
                target=self._every,
                args=(name, target, schedule.interval_s),
                name=f"devstack-schedule-{name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the timers and wait for a run in progress."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        self._threads.clear()

    def run_once(self, name: str, handler: LambdaHandler) -> Any:
        """One run of ``handler`` as the rule ``name`` would invoke it; its result (None if it raised)."""
        context = LambdaContext(function_name=name, invoked_function_arn=f"arn:aws:lambda:local:0:function:{name}")
        try:
            return handler(scheduled_event(name), context)
        except Exception:
            log.exception("scheduled run of %s failed; the next runs on schedule", name)
            return None
        finally:
            self.runs[name] += 1

    def _every(self, name: str, handler: LambdaHandler, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.run_once(name, handler)
