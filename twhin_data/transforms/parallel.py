"""Local scale-up: run a pure batch function in a process pool inside one DoFn.

Beam's local runners use few cores (docs/scale-up.md). The local profile maps
``--workers N`` to a pool of N processes inside the CPU-heavy batched DoFns; elements are whole
Arrow tables or file references, so the runner's per-element cost is paid once per few thousand
tweets. Results are emitted in submission order, so the output is exactly what one worker would
produce. On Dataflow ``workers`` is 1 and the function runs inline (Dataflow already runs one SDK
process per vCPU).

The pools themselves (forkserver, children started up front, shared pools, no Beam imported in
the children) are in `twhin_data.core.pool`; measurements in bench/bench_scaleup.py and
docs/scale-up.md. Rules for a pooled function:

* a picklable, pure, module-level function (or functools.partial of one) in a module that does
  not import ``apache_beam`` (the fork server imports it: see core/pool.py);
* side outputs as ``core.pool.Tagged(tag, value)`` (Beam's TaggedOutput is accepted too, but
  needs Beam in the children);
* `initializer` runs once per child (and once in the parent for inline runs): load models there;
* an exception in a child re-raises in the parent with the original type and message; a child
  that dies (killed, out of memory) raises a RuntimeError naming the function.
"""

from __future__ import annotations

import atexit
import collections
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from twhin_data.core import memory, progress
from twhin_data.core import pool as pools
from twhin_data.core.pool import Tagged
from twhin_data.core.tags import STATS


def _beam_output(out: Any) -> Any:
    """`Tagged` -> Beam's TaggedOutput; anything else unchanged."""
    if isinstance(out, Tagged):
        return beam.pvalue.TaggedOutput(out.tag, out.value)
    return out


def _windowed(out: Any) -> Any:
    """An output of finish_bundle: wrapped in the global window, tag kept."""
    if isinstance(out, beam.pvalue.TaggedOutput):
        return beam.pvalue.TaggedOutput(out.tag, WindowedValue(out.value, MIN_TIMESTAMP, [GlobalWindow()]))
    return WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])


class BoundedInFlightFn(beam.DoFn):
    """Base of DoFns that hand elements to an executor and emit results in submission order, with at
    most `limit` results pending (memory stays bounded by the limit, not by the bundle).

    A subclass calls ``yield from self.submit(future, limit)`` in `process` and implements
    `outputs(result)`: the outputs of one finished element (TaggedOutput for side outputs).
    """

    def start_bundle(self) -> None:
        self._pending: collections.deque[Future] = collections.deque()

    def outputs(self, result: Any) -> Iterable:
        raise NotImplementedError

    def wait(self, future: Future) -> Any:
        """The result of one future (override to translate executor failures)."""
        return future.result()

    def submit(self, future: Future, limit: int) -> Iterable:
        self._pending.append(future)
        while len(self._pending) > limit:
            yield from self.outputs(self.wait(self._pending.popleft()))

    def finish_bundle(self) -> Iterable[WindowedValue]:
        while self._pending:
            for out in self.outputs(self.wait(self._pending.popleft())):
                yield _windowed(out)


class PoolMapFn(BoundedInFlightFn):
    """Applies ``fn(element) -> iterable of outputs`` (`Tagged` for side outputs) with N processes.

    Args:
      fn: a picklable, pure, module-level function (or functools.partial of one). Heavy state
        (models, tokenizers) must be cached per process by the function itself.
      workers: processes; 1 runs inline with no pool.
      initializer: optional picklable callable run once per process (e.g. load a model).
      max_in_flight: elements submitted but not yet emitted (bounds memory); default 2 x workers.
      preload: modules the fork server imports once (default: the module defining `fn`).
      shared: a name: every PoolMapFn with the same name and `workers` in this process uses one
        pool (started by the first, with its `initializer`, so give them all the same one).
      progress: ``(stage, key)``: as results come back, the `key` of their `stats` side outputs
        advances the stage's live progress (core.progress), in the process that runs this DoFn.
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
        progress: tuple[str, str] | None = None,
    ):
        self._fn = fn
        self._progress = progress
        self._shared = shared
        self._workers = max(1, int(workers))
        self._initializer = initializer
        self._max_in_flight = max(1, max_in_flight or 2 * self._workers)
        module = pools.module_of(fn)
        self._preload = preload if preload is not None else ([module] if module else [])
        self._pool: ProcessPoolExecutor | None = None

    def setup(self) -> None:
        memory.configure()
        if self._workers > 1 and self._shared:
            key = (self._shared, self._workers)
            self._pool = pools.acquire(key, self._initializer, self._preload)
            # Teardown is best effort on some runners: never leave children behind.
            self._finalizer = weakref.finalize(self, pools.release, key)
            atexit.register(self._finalizer)
        elif self._workers > 1:
            self._pool = pools.make_pool(self._workers, initializer=self._initializer, preload=self._preload)
            self._finalizer = weakref.finalize(self, pools.shutdown, self._pool)
            atexit.register(self._finalizer)
        elif self._initializer is not None:
            self._initializer()

    def wait(self, future: Future) -> list:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            name = getattr(getattr(self._fn, "func", self._fn), "__name__", repr(self._fn))
            raise RuntimeError(
                f"a worker process running {name} died ({exc}): killed or out of memory?"
            ) from exc

    def process(self, element: Any) -> Iterable:
        if self._pool is None:
            yield from self.outputs(pools.call(self._fn, element))
            return
        yield from self.submit(self._pool.submit(pools.call, self._fn, element), self._max_in_flight)

    def outputs(self, result: list) -> Iterable:
        if self._progress is not None:
            stage, key = self._progress
            done = sum(o.value.get(key, 0) for o in result if isinstance(o, Tagged) and o.tag == STATS)
            progress.advance(stage, int(done))
        return map(_beam_output, result)

    def teardown(self) -> None:
        if self._pool is not None:
            self._finalizer()
            self._pool = None
