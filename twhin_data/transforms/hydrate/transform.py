"""HydrateTweets: distinct IDs -> deterministic <=100-ID batches -> X API lookups -> per-ID records.

Design (docs/hydrate.md):
- IDs are keyed to `num_id_shards` shards by a stable hash; one GroupByKey per shard collapses
  duplicates, drops IDs already settled by an earlier run (resume) and cuts the sorted remainder
  into batches. Batch content therefore depends only on the input, never on bundling, so a
  bundle retry re-requests exactly the same batch.
- Every looked-up batch is written atomically to ``<output>/_progress/{tweets,unavailable}/<hash>``
  before its rows are emitted. A retried bundle finds the file and re-emits it instead of
  re-billing; a killed job restarted with --resume reads the files as settled.

The lookup step is in lookup.py, the resume helpers in resume.py.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from twhin_data.core import tags
from twhin_data.core.hashing import shard_of
from twhin_data.core.tables import sorted_unique
from twhin_data.schemas import conform
from twhin_data.schemas.tweets import TWEETS, UNAVAILABLE
from twhin_data.transforms.hydrate.lookup import NAMESPACE, Batch, LookupBatchFn, Plan

TERMINAL = ("not_found", "not_authorized", "unavailable")
SHARD_SALT = "hydrate-ids"


def id_sort_key(tweet_id: str) -> tuple[int, str]:
    """Numeric order for decimal ID strings."""
    return (len(tweet_id), tweet_id)


def shard_chunk(ids: list[str], num_shards: int) -> Iterable[tuple[int, tuple[str, object]]]:
    """Splits a list of valid IDs by stable shard: ``(shard, ("ids", [..]))``."""
    if not ids:
        return
    shards = shard_of(pa.array(ids, pa.string()), num_shards, SHARD_SALT)
    for shard in sorted_unique(shards):
        picked = np.flatnonzero(shards == shard)
        yield int(shard), ("ids", [ids[i] for i in picked])


def shard_table(item: tuple[str, pa.Table], num_shards: int) -> Iterable[tuple[int, tuple[str, object]]]:
    """Splits a previous-results table (tag, table) by the same stable shard as the IDs."""
    tag, table = item
    if table.num_rows == 0:
        return
    shards = shard_of(table.column("tweet_id"), num_shards, SHARD_SALT)
    for shard in sorted_unique(shards):
        yield int(shard), (tag, table.take(pa.array(np.flatnonzero(shards == shard))))


def _latest_per_id(tables: list[pa.Table], schema: pa.Schema, keep: set[str], tiebreak: str) -> pa.Table:
    """Rows whose tweet_id is in `keep`, one per ID: the latest retrieved_at, ties by `tiebreak`."""
    if not tables:
        return schema.empty_table()
    table = pa.concat_tables([conform(t, schema) for t in tables])
    table = table.filter(pc.is_in(table.column("tweet_id"), value_set=pa.array(sorted(keep), pa.string())))
    if table.num_rows == 0:
        return table
    table = table.sort_by(
        [("tweet_id", "ascending"), ("retrieved_at", "descending"), (tiebreak, "ascending")]
    )
    ids = table.column("tweet_id").to_numpy(zero_copy_only=False)
    first = np.concatenate([[True], ids[1:] != ids[:-1]])
    return table.filter(pa.array(first))


class _PlanShardFn(beam.DoFn):
    """Per shard: collapse duplicates, carry over settled rows (resume), cut the rest into batches."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size
        self._distinct = Metrics.counter(NAMESPACE, "distinct_ids")
        self._duplicates = Metrics.counter(NAMESPACE, "duplicate_ids")
        self._resumed = Metrics.counter(NAMESPACE, "resumed_ids")
        self._to_request = Metrics.counter(NAMESPACE, "ids_to_request")
        self._batches = Metrics.counter(NAMESPACE, "batches")

    def process(self, item: tuple[int, Iterable[tuple[str, object]]]) -> Iterable:
        shard, values = item
        distinct: set[str] = set()
        seen = 0
        prev: dict[str, list[pa.Table]] = {"tweets": [], "unavailable": []}
        for tag, payload in values:
            if tag == "ids":
                seen += len(payload)
                distinct.update(payload)
            else:
                prev[tag].append(payload)
        self._distinct.inc(len(distinct))
        self._duplicates.inc(seen - len(distinct))
        carried_tweets = _latest_per_id(prev["tweets"], TWEETS, distinct, "raw_text")
        done = set(carried_tweets.column("tweet_id").to_pylist())
        terminal = [
            t.filter(pc.is_in(t.column("status"), value_set=pa.array(TERMINAL))) for t in prev["unavailable"]
        ]
        carried_unavailable = _latest_per_id(terminal, UNAVAILABLE, distinct - done, "status")
        done.update(carried_unavailable.column("tweet_id").to_pylist())
        if done:
            self._resumed.inc(len(done))
            yield beam.pvalue.TaggedOutput("carried_tweets", carried_tweets)
            yield beam.pvalue.TaggedOutput("carried_unavailable", carried_unavailable)
        todo = sorted(distinct - done, key=id_sort_key)
        self._to_request.inc(len(todo))
        for start in range(0, len(todo), self._batch_size):
            self._batches.inc()
            yield Batch(
                f"{shard:05d}-{start // self._batch_size:07d}", tuple(todo[start : start + self._batch_size])
            )


def make_plan(sizes: list[tuple[str, int]], max_reads: int | None) -> Plan:
    """Admits batches in key order while the IDs they request (an upper bound on reads) fit."""
    total = sum(n for _, n in sizes)
    last, used = None, 0
    if max_reads is not None:
        for key, n in sorted(sizes):
            if used + n > max_reads:
                break
            used, last = used + n, key
    return Plan(total_ids=total, last_allowed=last, max_reads=max_reads)


class HydrateTweets(beam.PTransform):
    """Settles every distinct valid ID exactly once through the X API (or a previous run's output).

    Input: a dict ``{"ids": PCollection[list[str]], "previous": PCollection[(tag, pa.Table)]}``
    ("previous" optional; tag is "tweets" or "unavailable"). Output dict:
      ``tweets``: pa.Table batches of TWEETS; ``unavailable``: pa.Table batches of UNAVAILABLE.

    Args:
      client_config: xapi.client.ClientConfig (base URL, fields, pacing).
      token_source: xapi.auth.TokenSource, read on workers in setup().
      progress_dir: where per-batch results are persisted (``<output>/_progress``).
      batch_size: IDs per request (<= 100).
      num_id_shards: shards for duplicate collapsing and batch planning.
      max_reads: do not request batches beyond this many IDs (None: no budget).
    """

    def __init__(
        self,
        *,
        client_config,
        token_source,
        progress_dir: str,
        batch_size: int = 100,
        num_id_shards: int = 1,
        max_reads: int | None = None,
    ):
        super().__init__()
        if not 1 <= batch_size <= 100:
            raise ValueError("batch_size must be between 1 and 100")
        self._config = client_config
        self._token_source = token_source
        self._progress_dir = progress_dir
        self._batch_size = batch_size
        self._num_id_shards = num_id_shards
        self._max_reads = max_reads

    def expand(self, inputs):
        n = self._num_id_shards
        keyed = [inputs["ids"] | "ShardIds" >> beam.FlatMap(shard_chunk, num_shards=n)]
        if inputs.get("previous") is not None:
            keyed.append(inputs["previous"] | "ShardPrevious" >> beam.FlatMap(shard_table, num_shards=n))
        planned = (
            keyed
            | "MergeKeyed" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "PlanBatches"
            >> beam.ParDo(_PlanShardFn(self._batch_size)).with_outputs(
                "carried_tweets", "carried_unavailable", main="batches"
            )
        )
        plan = (
            planned.batches
            | "BatchSizes" >> beam.Map(lambda b: (b.key, len(b.ids)))
            | "AllSizes" >> beam.combiners.ToList()
            | "MakePlan" >> beam.Map(make_plan, max_reads=self._max_reads)
        )
        looked_up = (
            planned.batches
            # Spread batches over workers; batch content is fixed before this point.
            | "SpreadBatches" >> beam.Reshuffle()
            | "LookupBatch"
            >> beam.ParDo(
                LookupBatchFn(
                    client_config=self._config,
                    token_source=self._token_source,
                    progress_dir=self._progress_dir,
                ),
                plan=beam.pvalue.AsSingleton(plan),
            ).with_outputs(tags.UNAVAILABLE, main="tweets")
        )
        tweets = (looked_up.tweets, planned.carried_tweets) | "AllTweets" >> beam.Flatten()
        unavailable = (
            looked_up[tags.UNAVAILABLE],
            planned.carried_unavailable,
        ) | "AllUnavailable" >> beam.Flatten()
        return {"tweets": tweets, "unavailable": unavailable}
