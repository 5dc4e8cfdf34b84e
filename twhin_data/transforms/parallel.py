"""Local scale-up: run a pure batch function in a process pool inside one DoFn.

Beam's local runners use few cores (see DESIGN.md, "Runners"). The local profile maps
``--workers N`` to a pool of N processes inside the CPU-heavy batched DoFns; elements are whole
Arrow tables, so the runner's per-element cost is paid once per few thousand tweets. Results are
emitted in submission order, so the output is exactly what one worker would produce. On Dataflow
``workers`` is 1 and the function runs inline (Dataflow already runs one SDK process per vCPU).
"""

from __future__ import annotations

import collections
import multiprocessing
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue


def _call(fn: Callable[[Any], list], element: Any) -> list:
    return list(fn(element))


class PoolMapFn(beam.DoFn):
    """Applies ``fn(element) -> iterable of outputs`` (TaggedOutput allowed) with N processes.

    Args:
      fn: a picklable, pure, module-level function (or functools.partial of one). Heavy state
        (models, tokenizers) must be cached per process by the function itself.
      workers: processes; 1 runs inline with no pool.
      initializer: optional picklable callable run once per process (e.g. load a model).
      max_in_flight: elements submitted but not yet emitted (bounds memory); default 2 x workers.
    """

    def __init__(
        self,
        fn: Callable[[Any], Iterable],
        *,
        workers: int = 1,
        initializer: Callable[[], None] | None = None,
        max_in_flight: int | None = None,
    ):
        self._fn = fn
        self._workers = max(1, int(workers))
        self._initializer = initializer
        self._max_in_flight = max_in_flight or 2 * self._workers
        self._pool: ProcessPoolExecutor | None = None
        self._pending: collections.deque[Future] = collections.deque()

    def setup(self) -> None:
        if self._initializer is not None:
            self._initializer()
        if self._workers > 1:
            # forkserver: children do not inherit the runner's threads (gRPC, logging).
            context = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(self._workers, mp_context=context, initializer=self._initializer)

    def start_bundle(self) -> None:
        self._pending = collections.deque()

    def process(self, element: Any) -> Iterable:
        if self._pool is None:
            yield from self._fn(element)
            return
        self._pending.append(self._pool.submit(_call, self._fn, element))
        while len(self._pending) > self._max_in_flight:
            yield from self._pending.popleft().result()

    def finish_bundle(self) -> Iterable[WindowedValue]:
        while self._pending:
            for out in self._pending.popleft().result():
                if isinstance(out, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(
                        out.tag, WindowedValue(out.value, MIN_TIMESTAMP, [GlobalWindow()])
                    )
                else:
                    yield WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])

    def teardown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
