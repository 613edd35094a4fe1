"""Progress displays: what transfers report their byte counts to (``Progress``), and rich bars on stderr.

``RichProgress`` is one bar per step of one upload (hashing, uploading); ``CopyBars`` is the display of a migration:
one bar of bytes for every image at once, labelled with the images done. Both are thread-safe (rich locks its tasks).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress as Bars
    from rich.progress import TaskID


class Progress(Protocol):
    """Where byte counts go while hashing and sending."""

    def begin(self, label: str, total: int, completed: int = 0) -> None:
        """Start a new bar."""

    def advance(self, amount: int) -> None:
        """Add (or, after a failed attempt, take back) bytes; called from transfer threads."""

    def close(self) -> None:
        """Remove the display."""


class NoProgress:
    """Shows nothing."""

    def begin(self, label: str, total: int, completed: int = 0) -> None:
        """Show nothing."""

    def advance(self, amount: int) -> None:
        """Show nothing."""

    def close(self) -> None:
        """Show nothing."""


def _bars() -> Bars:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.progress import Progress as RichBars

    bars = RichBars(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    bars.start()
    return bars


class RichProgress:
    """A rich progress bar on stderr: bytes, rate and time left."""

    def __init__(self) -> None:
        self._bars = _bars()
        self._task: TaskID | None = None

    def begin(self, label: str, total: int, completed: int = 0) -> None:
        """Start a new bar below the previous one."""
        self._task = self._bars.add_task(label, total=total, completed=completed)

    def advance(self, amount: int) -> None:
        """Move the current bar (thread-safe in rich)."""
        if self._task is not None:
            self._bars.advance(self._task, amount)

    def close(self) -> None:
        """Stop refreshing."""
        self._bars.stop()


class CopyDisplay(Protocol):
    """The display of a migration: images planned and done, bytes to copy and copied."""

    def plan(self, images: int, size: int) -> None:
        """Set the totals once the plan is known."""

    def bytes(self) -> Progress:
        """A ``Progress`` that moves the shared bytes bar (``begin`` is ignored: one bar for every image)."""

    def image_done(self) -> None:
        """One more image is finished (copied, updated, unchanged, skipped or failed)."""

    def close(self) -> None:
        """Remove the display."""


class NoCopyDisplay:
    """Shows nothing."""

    def plan(self, images: int, size: int) -> None:
        """Show nothing."""

    def bytes(self) -> Progress:
        """A sink."""
        return NoProgress()

    def image_done(self) -> None:
        """Show nothing."""

    def close(self) -> None:
        """Show nothing."""


class CopyBars:
    """One rich bar on stderr: the bytes of every image being copied, with images done of images planned."""

    def __init__(self) -> None:
        self._bars = _bars()
        self._task = self._bars.add_task("planning", total=None)
        self._images = 0
        self._done = 0
        self._lock = threading.Lock()

    def plan(self, images: int, size: int) -> None:
        """Set the totals."""
        self._images = images
        self._bars.update(self._task, total=size, description=f"0/{images} images")

    def bytes(self) -> Progress:
        """A feed of the bar."""
        return _SharedBar(self._bars, self._task)

    def image_done(self) -> None:
        """Count one more image in the bar's label."""
        with self._lock:
            self._done += 1
            self._bars.update(self._task, description=f"{self._done}/{self._images} images")

    def close(self) -> None:
        """Stop refreshing."""
        self._bars.stop()


class _SharedBar:
    def __init__(self, bars: Bars, task: TaskID) -> None:
        self._bars = bars
        self._task = task

    def begin(self, label: str, total: int, completed: int = 0) -> None:
        """One bar for all images: a new transfer adds its bytes already done, nothing else."""
        if completed:
            self._bars.advance(self._task, completed)

    def advance(self, amount: int) -> None:
        """Move the shared bar."""
        self._bars.advance(self._task, amount)

    def close(self) -> None:
        """The shared bar outlives one transfer."""
