"""Process pools for the local scale-up (``--workers N``), with no Apache Beam in the children.

The Beam side (`transforms.parallel.PoolMapFn`) hands elements to a pool built here. The pool
processes only import what the pure function needs: the modules a pooled function lives in
(``*_steps.py``, ``core``, ``text``, ``schemas``) never import ``apache_beam``, whose import
alone costs about 1.2 s of CPU per process start (bench/RESULTS.md, "Scale-up"). A pure function
that has a side output returns `Tagged(tag, value)`; PoolMapFn turns it into Beam's TaggedOutput.

Process model:

* start method ``forkserver``: children do not inherit the runner's threads (gRPC, logging);
  they fork from a small server process that imported the `preload` modules once.
  `start_forkserver` starts that server in the background as soon as a command knows it will
  use a pool, so its imports overlap the parent's own start-up (validation, job graph, runner).
* `make_pool` starts all N children up front with ``__main__`` hidden from multiprocessing's
  preparation data, so a script without an ``if __name__ == "__main__"`` guard is never re-run
  in the children. Hence pooled functions must live in importable modules.
* `acquire`/`release`: pools shared by name, so a pipeline with several pooled steps starts N
  children, not N per step; the pool closes when its last user releases it.
* children die with the job: each sets a parent-death signal (SIGKILL when the fork server
  goes, which itself exits when the job's process does) and watches the job's process, so a
  killed job leaves no child running, let alone writing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from twhin_data.core import memory


@dataclass(frozen=True)
class Tagged:
    """A side output of a pure function: PoolMapFn emits it as ``TaggedOutput(tag, value)``.

    Not a tuple, so it never passes for a ``(key, value)`` main output.
    """

    tag: str
    value: Any


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def call(fn: Callable[[Any], Iterable], element: Any) -> list:
    """What a pool process (or the inline path) runs: ``list(fn(element))``, then a task that took
    `memory.MIN_TASK_S` or more hands its freed memory back (`memory.release`)."""
    start = time.perf_counter()
    out = list(fn(element))
    if time.perf_counter() - start >= memory.MIN_TASK_S:
        memory.release()
    return out


def module_of(fn: Callable) -> str | None:
    """The importable module defining `fn` (or a functools.partial of it); None for __main__."""
    target = getattr(fn, "func", fn)
    module = getattr(target, "__module__", None)
    return module if module and module != "__main__" else None


@contextlib.contextmanager
def _main_hidden():
    """Hides ``__main__``'s file and spec, so children started now do not re-import the script."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        for key in saved:
            if key == "__spec__":
                main.__spec__ = None
            else:
                del main.__dict__[key]
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


def start_forkserver(preload: list[str]) -> threading.Thread:
    """Starts the fork server in a background thread, importing `preload` there.

    Only the first call in a process decides what the server imports; later pools fork from it.
    Returns the thread (joining it is optional: the first pool waits for the server anyway).
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(sorted(set(preload)))
    thread = threading.Thread(
        target=multiprocessing.forkserver.ensure_running, name="twhin-forkserver", daemon=True
    )
    thread.start()
    return thread


_PR_SET_PDEATHSIG = 1


def _alive(pid: int) -> bool:
    """False once `pid` has exited (a zombie waiting for its parent counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True  # no /proc: trust kill()


def _watch(job_pid: int, interval_s: float) -> None:
    while _alive(job_pid):
        time.sleep(interval_s)
    os._exit(1)  # the job is gone: never write after it


def child_start(job_pid: int, initializer: Callable[[], None] | None, interval_s: float = 0.5) -> None:
    """Runs first in every pool child: die with the job, then the pool's own initializer."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_watch, args=(job_pid, interval_s), name="twhin-job-watch", daemon=True).start()
    if not _alive(job_pid):
        os._exit(1)
    memory.configure()
    if initializer is not None:
        initializer()


def make_pool(
    workers: int, *, initializer: Callable[[], None] | None = None, preload: list[str] | None = None
) -> ProcessPoolExecutor:
    """A forkserver pool with all `workers` children started (and initialized) before it returns."""
    context = multiprocessing.get_context("forkserver")
    # Only takes effect when this process has not started its fork server yet.
    context.set_forkserver_preload(list(preload or []))
    start = functools.partial(child_start, os.getpid(), initializer)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=start)
    with _main_hidden():
        # Each submit finds no idle child and starts one: N submits start all N children now.
        for future in [pool.submit(os.getpid) for _ in range(workers)]:
            future.result()
    return pool


def shutdown(pool: ProcessPoolExecutor) -> None:
    pool.shutdown(wait=True, cancel_futures=True)


#: Pools shared by name: (name, workers) -> [pool, number of users].
_SHARED: dict[tuple[str, int], list] = {}
_LOCK = threading.Lock()


def acquire(
    key: tuple[str, int], initializer: Callable[[], None] | None, preload: list[str]
) -> ProcessPoolExecutor:
    """The shared pool `key` = (name, workers), started (with `initializer`) by its first user."""
    with _LOCK:
        entry = _SHARED.get(key)
        if entry is None:
            entry = _SHARED[key] = [make_pool(key[1], initializer=initializer, preload=preload), 0]
        entry[1] += 1
        return entry[0]


def release(key: tuple[str, int]) -> None:
    """Drops one user of the shared pool `key`; the last one shuts it down."""
    with _LOCK:
        entry = _SHARED.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _SHARED[key]
    shutdown(entry[0])
