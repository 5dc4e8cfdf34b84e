"""Local scale-up: run a pure batch function in a process pool inside one DoFn.

Beam's local runners use few cores (see DESIGN.md, "Runners"). The local profile maps
``--workers N`` to a pool of N processes inside the CPU-heavy batched DoFns; elements are whole
Arrow tables, so the runner's per-element cost is paid once per few thousand tweets. Results are
emitted in submission order, so the output is exactly what one worker would produce. On Dataflow
``workers`` is 1 and the function runs inline (Dataflow already runs one SDK process per vCPU).

Process model (measured in bench/bench_scaleup.py, documented in docs/scale-up.md):

* start method ``forkserver``: children do not inherit the runner's threads (gRPC, logging)
  and start from a small server process that preloads the modules named by `preload` (by
  default the module that defines `fn`). All N children are started up front with ``__main__``
  hidden from multiprocessing's preparation data, so a script without an
  ``if __name__ == "__main__"`` guard is never re-run in the children (multiprocessing would
  otherwise re-import it and start the pipeline again). Hence `fn` must live in an importable
  module, not in the script itself.
* `initializer` runs once per child (and once in the parent for inline runs): load models there.
* at most `max_in_flight` elements are submitted and not yet emitted (memory stays bounded);
  outputs come back in submission order.
* an exception in a child re-raises in the parent with the original type and message; a child
  that dies (killed, out of memory) raises a RuntimeError naming the function.
* the pool is shut down in ``teardown`` (and at interpreter exit, if the runner never calls it).
* steps given the same `shared` name (and worker count) use one pool: a pipeline with several
  pooled steps starts N children, not N per step; the pool closes when the last step tears down.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import multiprocessing
import os
import sys
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue


def _call(fn: Callable[[Any], Iterable], element: Any) -> list:
    return list(fn(element))


def _module_of(fn: Callable) -> str | None:
    target = getattr(fn, "func", fn)  # functools.partial
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


def make_pool(
    workers: int, *, initializer: Callable[[], None] | None = None, preload: list[str] | None = None
) -> ProcessPoolExecutor:
    """A forkserver pool with all `workers` children started (and initialized) before it returns."""
    context = multiprocessing.get_context("forkserver")
    # Only takes effect when this process has not started its fork server yet.
    context.set_forkserver_preload(list(preload or []))
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=initializer)
    with _main_hidden():
        # Each submit finds no idle child and starts one: N submits start all N children now.
        for future in [pool.submit(os.getpid) for _ in range(workers)]:
            future.result()
    return pool


def _shutdown(pool: ProcessPoolExecutor) -> None:
    pool.shutdown(wait=True, cancel_futures=True)


#: Pools shared by name: (name, workers) -> [pool, number of DoFn instances using it].
_SHARED: dict[tuple[str, int], list] = {}


def _acquire(
    key: tuple[str, int], initializer: Callable[[], None] | None, preload: list[str]
) -> ProcessPoolExecutor:
    entry = _SHARED.get(key)
    if entry is None:
        entry = _SHARED[key] = [make_pool(key[1], initializer=initializer, preload=preload), 0]
    entry[1] += 1
    return entry[0]


def _release(key: tuple[str, int]) -> None:
    entry = _SHARED.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] <= 0:
        del _SHARED[key]
        _shutdown(entry[0])


class PoolMapFn(beam.DoFn):
    """Applies ``fn(element) -> iterable of outputs`` (TaggedOutput allowed) with N processes.

    Args:
      fn: a picklable, pure, module-level function (or functools.partial of one). Heavy state
        (models, tokenizers) must be cached per process by the function itself.
      workers: processes; 1 runs inline with no pool.
      initializer: optional picklable callable run once per process (e.g. load a model).
      max_in_flight: elements submitted but not yet emitted (bounds memory); default 2 x workers.
      preload: modules the fork server imports once (default: the module defining `fn`).
      shared: a name: every PoolMapFn with the same name and `workers` in this process uses one
        pool (started by the first, with its `initializer`, so give them all the same one).
    """

    def __init__(
        self,
        fn: Callable[[Any], Iterable],
        *,
        workers: int = 1,
        initializer: Callable[[], None] | None = None,
        max_in_flight: int | None = None,
        preload: list[str] | None = None,
        shared: str | None = None,
    ):
        self._fn = fn
        self._shared = shared
        self._workers = max(1, int(workers))
        self._initializer = initializer
        self._max_in_flight = max(1, max_in_flight or 2 * self._workers)
        module = _module_of(fn)
        self._preload = preload if preload is not None else ([module] if module else [])
        self._pool: ProcessPoolExecutor | None = None
        self._pending: collections.deque[Future] = collections.deque()

    def setup(self) -> None:
        if self._workers > 1 and self._shared:
            key = (self._shared, self._workers)
            self._pool = _acquire(key, self._initializer, self._preload)
            # Teardown is best effort on some runners: never leave children behind.
            self._finalizer = weakref.finalize(self, _release, key)
            atexit.register(self._finalizer)
        elif self._workers > 1:
            self._pool = make_pool(self._workers, initializer=self._initializer, preload=self._preload)
            self._finalizer = weakref.finalize(self, _shutdown, self._pool)
            atexit.register(self._finalizer)
        elif self._initializer is not None:
            self._initializer()

    def start_bundle(self) -> None:
        self._pending = collections.deque()

    def _result(self, future: Future) -> list:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            name = getattr(getattr(self._fn, "func", self._fn), "__name__", repr(self._fn))
            raise RuntimeError(
                f"a worker process running {name} died ({exc}): killed or out of memory?"
            ) from exc

    def process(self, element: Any) -> Iterable:
        if self._pool is None:
            yield from self._fn(element)
            return
        self._pending.append(self._pool.submit(_call, self._fn, element))
        while len(self._pending) > self._max_in_flight:
            yield from self._result(self._pending.popleft())

    def finish_bundle(self) -> Iterable[WindowedValue]:
        while self._pending:
            for out in self._result(self._pending.popleft()):
                if isinstance(out, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(
                        out.tag, WindowedValue(out.value, MIN_TIMESTAMP, [GlobalWindow()])
                    )
                else:
                    yield WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])

    def teardown(self) -> None:
        if self._pool is not None:
            self._finalizer()
            self._pool = None
