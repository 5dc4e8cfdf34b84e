"""Beam counters: stats dicts turned into counters, and the counters of a finished run."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter


class CountStatsFn(beam.DoFn):
    """Adds each stats dict to Beam counters of `namespace`, and passes it on unchanged.

    Pool processes cannot update the runner's counters, so the pooled steps emit stats dicts and
    this DoFn counts them in the main process. `view` maps a stats dict to ``{counter: value}``
    (default: the dict itself, whose values must be numbers).
    """

    def __init__(self, namespace: str, view: Callable[[dict], dict[str, int]] | None = None):
        self._namespace = namespace
        self._view = view

    def process(self, stats: dict) -> Iterator[dict]:
        for name, value in (self._view(stats) if self._view else stats).items():
            Metrics.counter(self._namespace, name).inc(int(value))
        yield stats


def counters(result, namespace: str | None = None) -> dict[str, int]:
    """Committed Beam counters by name (attempted where a runner does not commit), sorted by name."""
    flt = MetricsFilter()
    if namespace:
        flt = flt.with_namespace(namespace)
    try:
        queried = result.metrics().query(flt)
    except (NotImplementedError, AttributeError):
        return {}
    out: dict[str, int] = {}
    for c in queried["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return dict(sorted(out.items()))


class Counters:
    """The Beam counters of one namespace, created on first use (their names may depend on the data,
    e.g. one per error type); a DoFn holds one and calls ``inc(name, n)``."""

    def __init__(self, namespace: str):
        self._namespace = namespace
        self._made: dict[str, object] = {}

    def inc(self, name: str, n: int = 1) -> None:
        counter = self._made.get(name)
        if counter is None:
            counter = self._made[name] = Metrics.counter(self._namespace, name)
        counter.inc(int(n))
