"""PrepareTweets: prepare's three pooled steps (transforms/prepare/steps.py) wired with two shuffles.

Read + normalize + language ID + filters per read task, dedup per text-hash bucket, then
resampling and the Parquet write per output part, all in one shared `PoolMapFn` pool of
``--workers`` processes (inline with one worker or on Dataflow). Rows move between the steps as
Arrow IPC files under a temporary directory of the output; the shuffles carry only file
references, so the main process does little per tweet (docs/scale-up.md).
"""

from __future__ import annotations

import functools

import apache_beam as beam

from twhin_data.core.tags import AUTHORS, COUNTS, ERRORS, STATS
from twhin_data.text.minhash import LshParams
from twhin_data.transforms.metrics import CountStatsFn
from twhin_data.transforms.parallel import PoolMapFn
from twhin_data.transforms.prepare import author_cap, clusters, near_dedup
from twhin_data.transforms.prepare import stats as st
from twhin_data.transforms.prepare import table as prep
from twhin_data.transforms.prepare.resample import rates_record, resample_rates
from twhin_data.transforms.prepare.steps import (
    PART_SALT,
    STAGE,
    dedup_bucket,
    spill_task,
    write_part,
)


class AuthorCap(beam.CombineFn):
    """Per author: (tweets, smallest hashes) from every dedup bucket -> its cap threshold or None
    (the logic is Beam-free in author_cap.py: pool processes must not import Beam)."""

    def __init__(self, cap: int):
        self._cap = cap

    def create_accumulator(self) -> tuple[int, list[int]]:
        return 0, []

    def add_input(self, acc, item):
        return author_cap.merge(acc, item, self._cap)

    def merge_accumulators(self, accs):
        out = (0, [])
        for acc in accs:
            out = author_cap.merge(out, acc, self._cap)
        return out

    def extract_output(self, acc) -> int | None:
        return author_cap.threshold(acc, self._cap)


def _with_rates(item: tuple, rates: dict[str, float], caps: dict[str, int]) -> tuple:
    part, refs = item
    return part, sorted(refs), rates, caps


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
        alpha: float = 0.7,
        min_count: int = 100,
        target: int | None = None,
        mode: str = "materialize",
        max_per_author: int = 0,
        near: LshParams | None = None,
        duplicates: str = "",
    ):
        super().__init__()
        self._near, self._duplicates = near, duplicates
        self._config, self._workers, self._exact = config, workers, exact
        self._tmp, self._corpus, self._num_parts = tmp, corpus, num_parts
        self._resampling = {"alpha": alpha, "min_count": min_count, "target": target}
        self._mode = mode
        self._max_per_author = max_per_author

    def _pooled(self, fn, progress: tuple[str, str] | None = None) -> PoolMapFn:
        init = functools.partial(prep.warm, self._config)
        return PoolMapFn(fn, workers=self._workers, initializer=init, shared=STAGE, progress=progress)

    def expand(self, tasks):
        cfg, tmp = self._config, self._tmp
        prepared = tasks | "ReadNormalizeDetect" >> beam.ParDo(
            # Live progress: tweets read, as each task comes back.
            self._pooled(functools.partial(spill_task, config=cfg, tmp=tmp), progress=(STAGE, "in"))
        ).with_outputs(ERRORS, STATS, main="slices")
        deduped = (
            prepared.slices
            # Shuffle 1: every copy of a text meets in its bucket (only file references move).
            | "GroupByTextBucket" >> beam.GroupByKey()
            | "Dedup"
            >> beam.ParDo(
                self._pooled(
                    functools.partial(
                        dedup_bucket,
                        exact=self._exact,
                        num_parts=self._num_parts,
                        tmp=tmp,
                        max_per_author=self._max_per_author,
                        view=self._config.dedup == "view",
                        near=self._near,
                        partitions=near_dedup.band_partitions(self._config.buckets, self._near),
                    )
                )
            ).with_outputs(STATS, COUNTS, AUTHORS, near_dedup.BANDS, near_dedup.EDGES, main="slices")
        )
        verified = (
            deduped[near_dedup.BANDS]
            # Shuffle: tweets sharing an LSH band key meet in the band's partition (refs only).
            | "GroupByBandPartition" >> beam.GroupByKey()
            | "VerifyCandidates"
            >> beam.ParDo(
                self._pooled(functools.partial(near_dedup.verify_partition, params=self._near or LshParams(), tmp=tmp))
            ).with_outputs(STATS, main="edges")
        )
        clustered = (
            (verified.edges, deduped[near_dedup.EDGES])
            | "AllDuplicateEdges" >> beam.Flatten()
            | "GroupEdges" >> beam.GroupByKey()
            | "Clusters"
            >> beam.ParDo(
                self._pooled(
                    functools.partial(
                        clusters.components,
                        num_parts=self._num_parts,
                        part_salt=PART_SALT,
                        tmp=tmp,
                        map_dir=self._duplicates,
                    )
                )
            ).with_outputs(STATS, COUNTS, main="drops")
        )
        caps = (
            deduped[AUTHORS]
            | "CapPerAuthor" >> beam.CombinePerKey(AuthorCap(max(1, self._max_per_author)))
            | "OverTheCap" >> beam.Filter(lambda kv: kv[1] is not None)
        )
        counts = (
            (deduped[COUNTS], clustered[COUNTS])
            | "LangCounts" >> beam.Flatten()
            | "SumLangCounts" >> beam.CombineGlobally(st.merge)
        )
        rates = counts | "Rates" >> beam.Map(resample_rates, **self._resampling)
        written = (
            (deduped.slices, clustered.drops)
            | "PartSlices" >> beam.Flatten()
            # Shuffle 2: each output part's rows, from every bucket (and the IDs to drop).
            | "GroupByPart" >> beam.GroupByKey()
            | "WithRates"
            >> beam.Map(_with_rates, rates=beam.pvalue.AsSingleton(rates), caps=beam.pvalue.AsDict(caps))
            | "ResampleWrite"
            >> beam.ParDo(
                self._pooled(
                    functools.partial(
                        write_part, path=self._corpus, num_parts=self._num_parts, mode=self._mode
                    )
                )
            ).with_outputs(STATS, main="files")
        )
        record = counts | "RatesRecord" >> beam.Map(rates_record, **self._resampling)
        stats = (
            (prepared[STATS], deduped[STATS], verified[STATS], clustered[STATS], written[STATS], record)
            | "AllStats" >> beam.Flatten()
            | "Count" >> beam.ParDo(CountStatsFn(STAGE, view=st.counter_view))
        )
        return written.files, prepared[ERRORS], stats
