"""PrepareTweets: prepare's three pooled steps (transforms/prepare_steps.py) wired with two shuffles.

Read + normalize + language ID + filters per read task, dedup per text-hash bucket, then
resampling and the Parquet write per output part, all in one shared `PoolMapFn` pool of
``--workers`` processes (inline with one worker or on Dataflow). Rows move between the steps as
Arrow IPC files under a temporary directory of the output; the shuffles carry only file
references, so the main process does little per tweet (docs/scale-up.md).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from twhin_data.transforms import prepare as prep
from twhin_data.transforms import prepare_stats as st
from twhin_data.transforms.parallel import PoolMapFn
from twhin_data.transforms.prepare_steps import (
    COUNTS_TAG,
    ERRORS_TAG,
    STAGE,
    STATS_TAG,
    dedup_bucket,
    spill_task,
    write_part,
)
from twhin_data.transforms.resample import rates_record, resample_rates


def _with_rates(item: tuple, rates: dict[str, float]) -> tuple:
    part, refs = item
    return part, sorted(refs), rates


class _CountStats(beam.DoFn):
    """Beam counters from the stats dicts (the pool processes cannot update the runner's)."""

    def __init__(self) -> None:
        self._in = Metrics.counter(STAGE, "in")
        self._out = Metrics.counter(STAGE, "out")
        self._rejected = Metrics.counter(STAGE, "rejected")
        self._duplicates = Metrics.counter(STAGE, "duplicates")

    def process(self, stats: dict) -> Iterable[dict]:
        self._in.inc(int(stats.get("in", 0)))
        self._out.inc(int(sum((stats.get("lang_after") or {}).values())))
        self._rejected.inc(int(sum((stats.get("rejected") or {}).values())))
        self._duplicates.inc(int(sum((stats.get("duplicates") or {}).values())))
        yield stats


class PrepareTweets(beam.PTransform):
    """``(index, ReadTask)`` -> (written part infos, error dicts, stats dicts); writes corpus/ parts.

    The three pooled steps above share one pool of `workers` processes (PoolMapFn, shared=STAGE):
    read + normalize + language ID + filters per task, dedup per text-hash bucket, resampling and
    the Parquet write per output part. Rows move between them as Arrow IPC files under `tmp`;
    the two shuffles carry only file references, so the main process does little per tweet.
    """

    def __init__(
        self,
        config: prep.PrepareConfig,
        *,
        tmp: str,
        corpus: str,
        num_parts: int,
        workers: int = 1,
        exact: bool = True,
        alpha: float = 1.0,
        min_count: int = 100,
    ):
        super().__init__()
        self._config, self._workers, self._exact = config, workers, exact
        self._tmp, self._corpus, self._num_parts = tmp, corpus, num_parts
        self._alpha, self._min_count = alpha, min_count

    def _pooled(self, fn) -> PoolMapFn:
        return PoolMapFn(
            fn,
            workers=self._workers,
            initializer=functools.partial(prep.warm, self._config),
            shared=STAGE,
        )

    def expand(self, tasks):
        cfg, tmp = self._config, self._tmp
        prepared = tasks | "ReadNormalizeDetect" >> beam.ParDo(
            self._pooled(functools.partial(spill_task, config=cfg, tmp=tmp))
        ).with_outputs(ERRORS_TAG, STATS_TAG, main="slices")
        deduped = (
            prepared.slices
            # Shuffle 1: every copy of a text meets in its bucket (only file references move).
            | "GroupByTextBucket" >> beam.GroupByKey()
            | "Dedup"
            >> beam.ParDo(
                self._pooled(
                    functools.partial(dedup_bucket, exact=self._exact, num_parts=self._num_parts, tmp=tmp)
                )
            ).with_outputs(STATS_TAG, COUNTS_TAG, main="slices")
        )
        counts = deduped[COUNTS_TAG] | "SumLangCounts" >> beam.CombineGlobally(st.merge)
        rates = counts | "Rates" >> beam.Map(resample_rates, alpha=self._alpha, min_count=self._min_count)
        written = (
            deduped.slices
            # Shuffle 2: each output part's rows, from every bucket.
            | "GroupByPart" >> beam.GroupByKey()
            | "WithRates" >> beam.Map(_with_rates, rates=beam.pvalue.AsSingleton(rates))
            | "ResampleWrite"
            >> beam.ParDo(
                self._pooled(functools.partial(write_part, path=self._corpus, num_parts=self._num_parts))
            ).with_outputs(STATS_TAG, main="files")
        )
        record = counts | "RatesRecord" >> beam.Map(
            rates_record, alpha=self._alpha, min_count=self._min_count
        )
        stats = (
            (prepared[STATS_TAG], deduped[STATS_TAG], written[STATS_TAG], record)
            | "AllStats" >> beam.Flatten()
            | "Count" >> beam.ParDo(_CountStats())
        )
        return written.files, prepared[ERRORS_TAG], stats
