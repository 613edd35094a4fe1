"""Deadlines: how long a worker may go on before it must hand its work to a job (or, in a job, give up).

A Lambda worker's deadline is its remaining time less a margin (``shared.sqs_batch.lambda_deadline``); a job's is
``job_max_seconds``. Services take a plain ``Deadline`` and never see Lambda types. ``Progress`` checks it between
chunks: it stops the work (``DeadlineReachedError``) once the deadline has passed, or as soon as the measured rate
says the rest of a known size cannot arrive in time, before anything is recorded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Who works under a deadline, as named in a lease (shared/services/leases.py).
WORKER = "worker"
JOB = "job"
# Measured progress is trusted for a projection after this long.
_PROJECT_AFTER_S = 2.0


class DeadlineReachedError(Exception):
    """The work cannot finish before its deadline; nothing of it was recorded."""


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock (None: no limit), and who works under it."""

    at: float | None
    holder: str = WORKER
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, holder: str = WORKER, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(clock() + seconds, holder, clock)

    @classmethod
    def unbounded(cls, holder: str = WORKER) -> Deadline:
        """No deadline (the API serving a request, a test)."""
        return cls(None, holder)

    def remaining(self) -> float:
        """Seconds left (infinite without a deadline; negative once past)."""
        return math.inf if self.at is None else self.at - self.clock()

    def check(self) -> None:
        """Raise ``DeadlineReachedError`` once the deadline has passed."""
        if self.remaining() <= 0:
            raise DeadlineReachedError(f"the {self.holder}'s time limit was reached")

    def check_fits(self, size: int, bytes_per_second: int) -> None:
        """Raise ``DeadlineReachedError`` when ``size`` bytes at ``bytes_per_second`` cannot finish in time."""
        needed = size / bytes_per_second
        if needed > self.remaining():
            raise DeadlineReachedError(
                f"{size} bytes need about {needed:.0f} s, more than the {self.holder}'s {self.remaining():.0f} s left"
            )


@dataclass
class Progress:
    """Counts the bytes of one transfer and checks its deadline as they arrive (``total``: the size, if known)."""

    deadline: Deadline
    total: int | None = None
    done: int = 0
    _started: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._started = self.deadline.clock()

    def advance(self, count: int) -> None:
        """``count`` more bytes were moved; raise ``DeadlineReachedError`` if the rest cannot make it."""
        self.done += count
        self.deadline.check()
        if self.total is None or self.deadline.at is None or self.done >= self.total:
            return
        elapsed = self.deadline.clock() - self._started
        if elapsed < _PROJECT_AFTER_S or self.done == 0:
            return
        left = (self.total - self.done) * elapsed / self.done
        if left > self.deadline.remaining():
            raise DeadlineReachedError(
                f"at the measured {self.done / elapsed / 2**20:.1f} MiB/s the last {self.total - self.done} bytes need "
                f"{left:.0f} s, more than the {self.deadline.holder}'s {self.deadline.remaining():.0f} s left"
            )
