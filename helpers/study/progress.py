"""Progress of a long computation as plain lines: which run of how many, and the time left.

Lines, not carriage-return bars, so that logs of headless runs read well. Inside a notebook run
by the report runner they go to the kernel's stderr, whence the runner forwards the lines that
start with ``PREFIX`` to the user's console (and the HTML report leaves stderr out).
"""

from __future__ import annotations

import os
import sys
import time

PREFIX = "progress: "  # marks the lines the report runner forwards from its kernels
LINES_ENV = "CBV_PROGRESS_LINES"  # set by the report runner: no step bars in its kernels


def bars_wanted() -> bool:
    """Per-step bars only where someone watches them live: a terminal or an interactive kernel.

    The report runner's kernels (``LINES_ENV`` set) and output piped to a log get lines only.
    """
    if os.environ.get(LINES_ENV):
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def duration(seconds: float) -> str:
    """A short human duration: ``45 s``, ``12 min``, ``1 h 05 min``."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def time_left(done: list[tuple[str, float]], pending: list[str]) -> float | None:
    """Seconds the pending items should take, each at the mean duration of done items of its
    kind, else of all done items; None before anything is done."""
    if not done:
        return None
    overall = sum(s for _, s in done) / len(done)
    by_kind: dict[str, list[float]] = {}
    for kind, seconds in done:
        by_kind.setdefault(kind, []).append(seconds)
    return sum(sum(by_kind[k]) / len(by_kind[k]) if k in by_kind else overall for k in pending)


class RunProgress:
    """Prints one line as each run starts: its number of how many, elapsed and time left.

    ``kinds`` lists the kind of every run to come (a method name, say), in order; runs of one
    kind take alike, so the estimate of each pending run is the mean of its kind so far.
    """

    def __init__(self, kinds: list[str], what: str = "run", stream=None):
        self.kinds, self.what, self.stream = list(kinds), what, stream
        self.done: list[tuple[str, float]] = []
        self.started = self.last = None

    def start(self, label: str) -> None:
        """Close the previous run (if any) and announce the next one, described by ``label``."""
        now = time.perf_counter()
        if self.last is not None:
            self.done.append((self.kinds[len(self.done)], now - self.last))
        self.started = self.started if self.started is not None else now
        self.last = now
        i = len(self.done)
        left = time_left(self.done, self.kinds[i:])
        estimate = "time left unknown yet" if left is None else f"about {duration(left)} left"
        print(
            f"{PREFIX}{self.what} {i + 1}/{len(self.kinds)}: {label} "
            f"({duration(now - self.started)} elapsed, {estimate})",
            file=self.stream or sys.stderr,
            flush=True,
        )
