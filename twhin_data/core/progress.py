"""Live progress of the running stage: items done, rate, elapsed and ETA.

On a terminal a tqdm bar on stderr, redrawn in place, that log records do not break (the launcher
routes logging through tqdm while a bar is shown); off a terminal (a file, CI, Dataflow's logs) a
log line every `every_s` seconds instead. tqdm because it is already installed with `datasets`,
handles terminals that are not ANSI, and ships the logging redirect we need; rich would add a
dependency for the same bar.

The launcher `start`s one reporter per stage in the main process; the stage's counting steps call
`advance(stage, n)` as items finish. Steps that run in other processes (a multi-process runner,
Dataflow workers) find no reporter and advance nothing: the runner's own logs cover them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator

LOG = logging.getLogger("twhin_data.progress")
MODES = ("auto", "bar", "log", "none")


class Reporter:
    """Progress of one stage; thread-safe (Beam runs bundles on several threads)."""

    def __init__(self, stage: str, *, total: int | None, unit: str, mode: str = "auto", every_s: float = 5.0):
        if mode == "auto":  # a terminal that reports no size (a pipe-like pty) gets log lines too
            mode = "bar" if sys.stderr.isatty() and shutil.get_terminal_size((0, 0)).columns > 0 else "log"
        self.stage, self.total, self.unit, self.mode = stage, total, unit, mode
        self.label = _PREFIX[0] + stage
        self.done = 0
        self.note = ""
        self._every_s = every_s
        self._started = self._last_log = time.monotonic()
        self._lock = threading.Lock()
        self._bar = None
        if mode == "bar":
            from tqdm import tqdm  # imported only when a bar is shown

            self._bar = tqdm(
                total=total, desc=self.label, unit=f" {unit}", unit_scale=True, dynamic_ncols=True, file=sys.stderr
            )

    def advance(self, n: int) -> None:
        if n <= 0 or self.mode == "none":
            return
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)
            elif self.mode == "log" and time.monotonic() - self._last_log >= self._every_s:
                self._last_log = time.monotonic()
                LOG.info("%s", self.line())

    def set_total(self, total: int) -> None:
        """The total, once known (hydrate learns it from its first shuffle)."""
        with self._lock:
            self.total = total
            if self._bar is not None:
                self._bar.total = total
                self._bar.refresh()

    def set_note(self, note: str) -> None:
        """A short status after the counts (a rate-limit countdown); "" clears it."""
        with self._lock:
            self.note = note
            if self._bar is not None:
                self._bar.set_postfix_str(note, refresh=True)
            elif self.mode == "log" and note and time.monotonic() - self._last_log >= self._every_s:
                self._last_log = time.monotonic()
                LOG.info("%s", self.line())

    def line(self) -> str:
        """``prepare: 12,000/200,000 tweets (6.0%), 8,100 tweets/s, 1.5 s elapsed, ETA 23 s``."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done:,}"
        if self.total:
            text += f"/{self.total:,} {self.unit} ({100.0 * self.done / self.total:.1f}%)"
        else:
            text += f" {self.unit}"
        text += f", {rate:,.0f} {self.unit}/s, {elapsed:.1f} s elapsed"
        if self.total and rate > 0:
            text += f", ETA {max(self.total - self.done, 0) / rate:.0f} s"
        return text + (f" ({self.note})" if self.note else "")

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            elif self.mode == "log" and self.done:
                LOG.info("%s", self.line())


_REPORTERS: dict[str, Reporter] = {}
#: Prefix of the bar's label while `run` runs a stage: "[2/6] ".
_PREFIX = [""]


@contextlib.contextmanager
def stage_label(prefix: str) -> Iterator[None]:
    """Bars and log lines started inside say `prefix` before the stage name (`run`: "[2/6] ")."""
    previous, _PREFIX[0] = _PREFIX[0], prefix
    try:
        yield
    finally:
        _PREFIX[0] = previous


def start(stage: str, *, total: int | None, unit: str, mode: str = "auto") -> Reporter:
    """The reporter of `stage` in this process (replacing an earlier one)."""
    stop(stage)
    reporter = _REPORTERS[stage] = Reporter(stage, total=total, unit=unit, mode=mode)
    return reporter


def advance(stage: str, n: int) -> None:
    """Counts `n` finished items of `stage`; nothing when no reporter runs in this process."""
    reporter = _REPORTERS.get(stage)
    if reporter is not None:
        reporter.advance(int(n))


def stop(stage: str) -> None:
    reporter = _REPORTERS.pop(stage, None)
    if reporter is not None:
        reporter.close()


def set_total(stage: str, total: int) -> None:
    reporter = _REPORTERS.get(stage)
    if reporter is not None:
        reporter.set_total(int(total))


def sleeper(stage: str, reason: str) -> Callable[[float], None]:
    """A `time.sleep` that, while `stage`'s reporter runs in this process, counts down on the bar
    ("rate limit: 14:52 left") once a second, so a long wait is visibly a wait."""

    def sleep(seconds: float) -> None:
        reporter = _REPORTERS.get(stage)
        if reporter is None or reporter.mode == "none" or seconds < 1.0:
            time.sleep(max(seconds, 0.0))
            return
        end = time.monotonic() + seconds
        try:
            while (left := end - time.monotonic()) > 0:
                minutes, secs = divmod(math.ceil(left), 60)
                reporter.set_note(f"{reason}: {minutes}:{secs:02d} left")
                time.sleep(min(1.0, left))
        finally:
            reporter.set_note("")

    return sleep


def active(stage: str) -> bool:
    """Whether a reporter of `stage` runs in this process."""
    return stage in _REPORTERS
