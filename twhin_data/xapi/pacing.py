"""Proactive rate-limit pacing shared by every process using one token on this machine.

State lives in `<pacing_dir>/window.json`, guarded by an fcntl lock, so concurrent Beam worker
processes (FnApiRunner multi_processing, several local jobs) see one window budget. Concurrency is
bounded by `max_concurrency` slot lock files in the same directory. On Dataflow each worker VM has
its own directory, so the budget is also partitioned: each VM gets `limit // partitions`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from twhin_data.core.hashing import stable_hash64

LOG = logging.getLogger("twhin_data.xapi.pacing")

MIN_WAIT_S = 1.0
MAX_WAIT_S = 900.0


def default_pacing_dir(token: str, base_url: str) -> str:
    """A per-(token, host) temp dir; the name holds a hash of the token, never the token."""
    key = stable_hash64(f"{base_url}\n{token}", salt="twhin-pacing")
    return os.path.join(tempfile.gettempdir(), f"twhin-xapi-pacing-{key:016x}")


@dataclass
class WindowState:
    """The shared view of the current rate-limit window."""

    limit: int | None = None  # x-rate-limit-limit (or the configured budget)
    remaining: int | None = None  # server's remaining, lowered by our own in-flight reservations
    reset: float | None = None  # epoch seconds when the window resets
    used: int = 0  # requests this machine sent in the window (for partitioned budgets)
    window_start: float = 0.0
    blocked_until: float = 0.0  # after a 429: no request before this local time (>= 1 s later)

    @classmethod
    def load(cls, raw: str) -> WindowState:
        try:
            values = json.loads(raw) if raw.strip() else {}
            return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})
        except (ValueError, TypeError):
            return cls()

    def dump(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


def _header_int(headers: dict, name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class Pacer:
    """Bounded concurrency and a per-window request budget, shared through files.

    Args:
      pacing_dir: the shared state directory (created if needed).
      requests_per_window: the budget per window; None trusts the x-rate-limit-* headers.
      window_s: the window length used when the API sends no reset header.
      max_concurrency: requests in flight at once for this token on this machine.
      partitions: how many machines share the token (budget per machine = limit // partitions).
      margin_s: seconds added after the reset time before sending again.
    """

    def __init__(
        self,
        pacing_dir: str,
        *,
        requests_per_window: int | None = None,
        window_s: float = 900.0,
        max_concurrency: int = 1,
        partitions: int = 1,
        margin_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ):
        self._dir = pacing_dir
        os.makedirs(pacing_dir, exist_ok=True)
        self._budget = requests_per_window
        self._window_s = window_s
        self._slots = max(1, max_concurrency)
        self._partitions = max(1, partitions)
        self._margin = margin_s
        self._sleep = sleep
        self._clock = clock
        self._state_path = os.path.join(pacing_dir, "window.json")
        self.waited_s = 0.0
        self._skew_warned = False
        self._skew = 0.0  # server clock minus local clock, from the Date header, when it matters

    @contextlib.contextmanager
    def _locked_state(self) -> Iterator[WindowState]:
        with open(self._state_path, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                state = WindowState.load(handle.read())
                yield state
                handle.seek(0)
                handle.truncate()
                handle.write(state.dump())
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Holds one of `max_concurrency` slots (fcntl locks, shared across processes) and a budget unit."""
        handle = self._take_slot()
        try:
            self._reserve()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def _take_slot(self):
        delay = 0.002
        while True:
            for index in range(self._slots):
                handle = open(os.path.join(self._dir, f"slot-{index}.lock"), "a+")  # noqa: SIM115
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return handle
                except BlockingIOError:
                    handle.close()
            self._sleep(delay)
            delay = min(delay * 2, 0.05)

    def _allowance(self, state: WindowState) -> int | None:
        """Requests this machine may still send in the current window (None = unknown, go ahead)."""
        limits = []
        if state.remaining is not None:
            limits.append(state.remaining)
        budget = self._budget if self._budget is not None else state.limit
        if budget is not None and (self._budget is not None or self._partitions > 1):
            limits.append(budget // self._partitions - state.used)
        return min(limits) if limits else None

    def _reserve(self) -> None:
        """Blocks until the window has room, then counts one request against it."""
        while True:
            with self._locked_state() as state:
                now = self._clock()
                self._roll_window(state, now)
                allowance = self._allowance(state)
                if now < state.blocked_until:
                    allowance = 0
                elif allowance is None or allowance > 0:
                    state.used += 1
                    if state.remaining is not None:
                        state.remaining -= 1
                    return
                wait = self._wait_for(state, now)
            LOG.info("rate-limit window spent: waiting %.1f s for the reset", wait)
            self._sleep(wait)
            self.waited_s += wait

    def _roll_window(self, state: WindowState, now: float) -> None:
        if state.reset is None and self._budget is not None and state.window_start:
            state.reset = state.window_start + self._window_s
        if state.reset is not None and now >= state.reset + self._margin:
            state.remaining, state.reset, state.used = None, None, 0
            state.window_start = now
        if not state.window_start:
            state.window_start = now

    def _wait_for(self, state: WindowState, now: float) -> float:
        if now < state.blocked_until:
            return state.blocked_until - now
        reset = state.reset if state.reset is not None else now + self._window_s
        return clamp_wait(reset + self._margin - now, self._margin)

    def update(self, headers: dict, status: int) -> None:
        """Folds a response's x-rate-limit-* headers into the shared state (every response, 429 too)."""
        limit = _header_int(headers, "x-rate-limit-limit")
        remaining = _header_int(headers, "x-rate-limit-remaining")
        reset = _header_int(headers, "x-rate-limit-reset")
        self._estimate_skew(headers.get("date"))
        with self._locked_state() as state:
            now = self._clock()
            if reset is not None:
                reset = self.local_reset(reset)
                self._skew_warned = self._skew_warned or _warn_skew(reset, now)
                if state.reset is None or reset > state.reset:
                    # A new window: adopt the server's numbers; requests counted in the old one are void.
                    if state.reset is not None:
                        state.used = 1
                    state.reset, state.remaining = float(reset), remaining
                    state.window_start = now
                elif reset == state.reset and remaining is not None:
                    # Same window: other processes' reservations may not be in this header yet.
                    state.remaining = (
                        remaining if state.remaining is None else min(state.remaining, remaining)
                    )
            elif remaining is not None:
                state.remaining = remaining if state.remaining is None else min(state.remaining, remaining)
            if limit is not None:
                state.limit = limit

    def _estimate_skew(self, date_header: str | None) -> None:
        """Server minus local clock from the HTTP Date header (1 s resolution: only > 5 s is used)."""
        if not date_header:
            return
        try:
            server_now = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        skew = server_now - self._clock()
        self._skew = skew if abs(skew) > 5 else 0.0

    def local_reset(self, reset: float) -> float:
        """A server-clock reset time on the local clock."""
        return reset - self._skew

    def on_rate_limited(self, reset: int | None) -> float:
        """After a 429 (not usage cap): marks the window spent and blocks sends until the reset.

        Returns the seconds to wait. The wait is at least 1 s even when the reset looks past, so a
        skewed clock cannot turn 429s into a tight loop.
        """
        if reset is None:
            return 0.0
        with self._locked_state() as state:
            now = self._clock()
            local = self.local_reset(reset)
            wait = clamp_wait(local + self._margin - now, self._margin)
            state.remaining = 0
            if state.reset is None or local >= state.reset:
                state.reset = float(local)
            state.blocked_until = max(state.blocked_until, now + wait)
            return wait


def clamp_wait(seconds: float, margin: float = 1.0) -> float:
    """Clamps a reset wait to [1 s, 900 s + margin] (a 15-minute window at most)."""
    return max(MIN_WAIT_S, min(seconds, MAX_WAIT_S + margin))


def _warn_skew(reset: int, now: float) -> bool:
    """Logs (the caller logs once) when the reset time is implausible for the local clock."""
    ahead = reset - now
    if ahead > MAX_WAIT_S + 60 or ahead < -60:
        LOG.warning(
            "x-rate-limit-reset is %.0f s from the local clock: check the clock (waits are clamped)", ahead
        )
        return True
    return False
