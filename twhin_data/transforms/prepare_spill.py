"""Prepare's pooled steps: slices go through files, only their names through the runner's shuffles.

With ``--workers N`` the main process must do almost nothing per tweet, or it caps the speed-up
(docs/scale-up.md). So the three heavy steps are pure functions run by `PoolMapFn` processes
(inline with one worker or on Dataflow), and they hand rows to each other as Arrow IPC files
under a temporary directory of the output (local or gs://, via Beam FileSystems):

1. `spill_task` (per read task): read, normalize, language ID, filters (transforms/prepare.py),
   then ONE file per task holding one record batch range per dedup bucket; emits
   ``(bucket, SliceRef)``, dead letters and stats;
2. `dedup_bucket` (per bucket, after a GroupByKey of the small refs): reads its slices in task
   order, dedups (transforms/dedup.py), and writes ONE file per bucket holding one batch range
   per output part (the part ``WriteDataset`` would pick: salted hash of tweet_id); emits
   ``(part, SliceRef)``, stats and the language counts resampling needs;
3. `write_part` (per output part, after a second GroupByKey of refs, with the resampling rates
   from the global language counts): reads its slices in bucket order, resamples
   (transforms/resample.py), sorts by tweet_id (ties: source_tweet_id, text) and writes
   ``part-XXXXX-of-YYYYY.parquet`` itself, with the same bytes as ``WriteDataset`` where tweet
   IDs are unique.

Every file name derives from a task index, bucket or part, and every read concatenates slices
in name order, so the bytes written do not depend on the number of workers or arrival order.
Files are written atomically (temp + rename): a retried bundle rewrites the same names.
`PrepareTweets` wires the steps; pipelines/prepare.py removes the temporary directory in finish().
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.schemas import conform
from twhin_data.schemas.corpus import CORPUS
from twhin_data.transforms import prepare as prep
from twhin_data.transforms import prepare_stats as st
from twhin_data.transforms.dedup import dedup_table, drop_duplicate_ids
from twhin_data.transforms.io import shard_of
from twhin_data.transforms.parallel import PoolMapFn
from twhin_data.transforms.prepare_read import ReadTask
from twhin_data.transforms.resample import rates_record, resample_rates, resample_table

STAGE = prep.STAGE
STATS_TAG = prep.STATS_TAG
ERRORS_TAG = prep.ERRORS_TAG
COUNTS_TAG = "counts"
#: WriteDataset's default salt: corpus rows land in the same part as `WriteDataset` would put them.
PART_SALT = "twhin-data-parts"
#: Row order inside a part: tweet_id like WriteDataset, then a total order for rows sharing an ID
#: (a retweet kept beside its original when their texts differ), so the bytes never depend on
#: the bucket count or the order slices arrive in.
PART_ORDER = [("tweet_id", "ascending"), ("source_tweet_id", "ascending"), ("text", "ascending")]
#: The rows between dedup and the writer: the corpus columns (dedup_table's output).
CORPUS_LAYOUT = pa.schema(list(prep.KEPT)[: len(CORPUS)])


class SliceRef(NamedTuple):
    """Record batches [start, stop) of one Arrow IPC file."""

    path: str
    start: int
    stop: int


def write_slices(path: str, schema: pa.Schema, slices: Iterable[tuple[int, pa.Table]]) -> list:
    """Writes (key, table) slices to one IPC file; returns ``(key, SliceRef)`` per non-empty slice."""
    sink = pa.BufferOutputStream()
    refs = []
    with pa.ipc.new_file(sink, schema) as writer:
        count = 0
        for key, table in slices:
            if table.num_rows == 0:
                continue
            batches = table.combine_chunks().to_batches()
            for batch in batches:
                writer.write_batch(batch)
            refs.append((key, SliceRef(path, count, count + len(batches))))
            count += len(batches)
    if refs:
        files.write_bytes_atomic(path, sink.getvalue().to_pybytes())
    return refs


def read_slices(refs: Iterable[SliceRef], schema: pa.Schema) -> pa.Table:
    """The rows of `refs` in (path, start) order, as one table (`schema` when there are none).

    Local files are memory-mapped; remote ones (gs://) are read through a seekable handle, so
    only the footer and the referenced batches are fetched.
    """
    batches = []
    for ref in sorted(refs):
        if "://" in ref.path:
            with FileSystems.open(ref.path, compression_type="uncompressed") as handle:
                reader = pa.ipc.open_file(pa.PythonFile(handle, mode="r"))
                batches.extend(reader.get_batch(i) for i in range(ref.start, ref.stop))
        else:
            reader = pa.ipc.open_file(pa.memory_map(ref.path))
            batches.extend(reader.get_batch(i) for i in range(ref.start, ref.stop))
    if not batches:
        return schema.empty_table()
    return pa.Table.from_batches(batches)


def _split(table: pa.Table, keys: np.ndarray) -> list[tuple[int, pa.Table]]:
    if table.num_rows == 0:
        return []
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    return [(int(keys[chunk[0]]), table.take(pa.array(chunk))) for chunk in np.split(order, bounds)]


def spill_task(item: tuple[tuple[int, int], ReadTask], *, config: prep.PrepareConfig, tmp: str) -> list:
    """Step 1 (pool function): prepare one read task, spill its kept rows by dedup bucket."""
    (file_index, task_index), task = item
    outputs, slices = [], []
    for out in prep.prepare_task(task, config):
        if isinstance(out, beam.pvalue.TaggedOutput):
            outputs.append(out)
        else:
            slices.append(out)
    path = files.join(tmp, "buckets", f"task-{file_index:06d}-{task_index:06d}.arrow")
    outputs.extend(write_slices(path, prep.KEPT, slices))
    return outputs


def dedup_bucket(item: tuple[int, Iterable[SliceRef]], *, exact: bool, num_parts: int, tmp: str) -> list:
    """Step 2 (pool function): dedup one text-hash bucket, spill the kept rows by output part."""
    bucket, refs = item
    table = read_slices(refs, prep.KEPT)
    kept, stats = dedup_table(table, exact=exact)
    stats_dict = stats.to_dict()
    outputs: list = [
        beam.pvalue.TaggedOutput(STATS_TAG, stats_dict),
        beam.pvalue.TaggedOutput(COUNTS_TAG, dict(stats_dict.get("lang_before", {}))),
    ]
    if kept.num_rows:
        parts = shard_of(kept.column("tweet_id"), num_parts, PART_SALT)
        path = files.join(tmp, "parts", f"bucket-{bucket:05d}.arrow")
        outputs.extend(write_slices(path, kept.schema, _split(kept, parts)))
    return outputs


def write_part(item: tuple[int, list[SliceRef], dict[str, float]], *, path: str, num_parts: int) -> list:
    """Step 3 (pool function): resample one output part's rows, sort by tweet_id, write the part."""
    part, refs, rates = item
    table, id_stats = drop_duplicate_ids(read_slices(refs, CORPUS_LAYOUT))
    kept, stats = resample_table(table, rates)
    outputs: list = [beam.pvalue.TaggedOutput(STATS_TAG, stats.to_dict())]
    if id_stats.to_dict():
        outputs.append(beam.pvalue.TaggedOutput(STATS_TAG, id_stats.to_dict()))
    if kept.num_rows:
        kept = conform(kept, CORPUS).sort_by(PART_ORDER)
        name = f"part-{part:05d}-of-{num_parts:05d}.parquet"
        outputs.append(
            {"dataset": "corpus", "shard": part, **files.write_parquet_atomic(files.join(path, name), kept)}
        )
    return outputs


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
