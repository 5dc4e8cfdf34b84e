"""ShardPairs: stage 2's pair shards from graph's pairs and the spilled corpus tokens.

The pooled steps of transforms/shard/pair_steps.py: the join of each tweet's tokens to its pairs
(a partition of tweets and pairs at a time, one side then the other), the per-tweet cap, the split
and shard plan, and the shard writer. Rows go between the steps as Arrow spill files under the
shard's temporary folder, so memory follows a partition or a shard, never the number of pairs, and
``--workers N`` runs every step in shard's process pool with the same bytes out.

Between the partitioned steps no reference per (task, partition) goes through the runner: each
task hands on one ``(kind, SliceIndex)`` (its file and every partition's batch range), and
`ByPartition` gives each partition its slices from those indexes, read as a side input. A runner
that keeps shuffles in memory (the local FnApiRunner) then holds tasks + partitions small
elements, where a GroupByKey of ``(partition, SliceRef)`` held tasks x partitions; both numbers
grow with the input, so that product made the join's memory grow with the square of it.

Shard membership is ``key % n`` of the split, `key` being a salted stable hash of both tweet IDs:
it depends on nothing but the data and the seed. A shard index that got no rows is never written.
"""

from __future__ import annotations

import functools

import apache_beam as beam

from twhin_data.core.spill import slices_of
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.transforms.combiners import SumDicts
from twhin_data.transforms.shard import pair_steps as ps
from twhin_data.transforms.shard.steps import plan_shards
from twhin_data.transforms.shard.transform import WriteSplitShards, pooled


def _partition_slices(part: int, indexes: list) -> list:
    refs = slices_of(indexes, part)
    return [(part, refs)] if refs else []


class ByPartition(beam.PTransform):
    """``(kind, SliceIndex)`` values (one PCollection or a tuple of them) -> ``(partition, [(kind,
    SliceRef), ...])`` for every partition of 0..parts-1 that holds rows, as a GroupByKey of the
    slices would give. The partition numbers are spread by a Reshuffle (workers on Dataflow); the
    indexes reach every partition as a side input."""

    def __init__(self, parts: int):
        super().__init__()
        self._parts = parts

    def expand(self, indexes):
        if isinstance(indexes, tuple):
            indexes = indexes | "Flatten" >> beam.Flatten()
        return (
            indexes.pipeline
            | "Partitions" >> beam.Create(range(self._parts))
            | "Spread" >> beam.Reshuffle()
            | "Gather" >> beam.FlatMap(_partition_slices, indexes=beam.pvalue.AsList(indexes))
        )


class ShardPairs(beam.PTransform):
    """``((name, pairs table), (split, token SliceRef))`` -> (pair shard infos, dead letters, stats dicts).

    Args:
      tmp: the spill folder (removed by the pipeline's finish()).
      path: the ``DIR/pairs`` folder.
      parts: join partitions (memory per step follows input / parts; the bytes written do not).
      cap: pairs a tweet keeps at most (its best-scoring; 0: no cap).
      salt: salt of the pair-key hash.
      batch_size: B, the pairs of a contrastive batch (transforms/shard/batches.py); 0: hash order.
      num_shards, target_bytes: as `plan_shards`.
      workers: shard's pool processes.
    Dead letters: pairs naming a tweet that is not in the tokenized corpus (``pair_tweet_missing``).
    Stats: pairs_in, pairs_rows_/pairs_tokens_ per split, and the rejected_pair_* counts.
    """

    def __init__(
        self,
        *,
        tmp: str,
        path: str,
        parts: int,
        cap: int,
        salt: str,
        batch_size: int,
        num_shards: int | None,
        target_bytes: int,
        workers: int = 1,
    ):
        super().__init__()
        self._tmp, self._path, self._parts, self._cap = tmp, path, parts, cap
        self._salt, self._batch_size = salt, batch_size
        self._num_shards, self._target_bytes, self._workers = num_shards, target_bytes, workers

    def _step(self, fn, **kwargs) -> beam.ParDo:
        return beam.ParDo(pooled(functools.partial(fn, **kwargs), self._workers))

    def expand(self, inputs):
        pair_tables, token_slices = inputs
        where = dict(tmp=self._tmp, parts=self._parts)
        tweets = token_slices | "SpillTweets" >> self._step(ps.spill_pair_tweets, **where)
        spilled = pair_tables | "SpillPairs" >> self._step(ps.spill_pairs, **where).with_outputs(
            ERRORS, STATS, main="refs"
        )
        with_a = (
            (tweets, spilled.refs)
            | "GroupA" >> ByPartition(self._parts)
            | "JoinA" >> self._step(ps.join_side, side="a", **where).with_outputs(ERRORS, STATS, main="refs")
        )
        joined = (
            (tweets, with_a.refs)
            | "GroupB" >> ByPartition(self._parts)
            | "JoinB"
            >> self._step(ps.join_side, side="b", cap=self._cap, **where).with_outputs(
                ERRORS, STATS, ps.ENDS, main="refs"
            )
        )
        homes = joined.refs
        if self._cap:
            over = (
                joined[ps.ENDS]
                | "GroupEnds" >> ByPartition(self._parts)
                | "CapPerTweet" >> self._step(ps.cap_pairs, cap=self._cap, **where)
            )
            homes = (joined.refs, over)
        placed = (
            homes
            | "GroupJoined" >> ByPartition(self._parts)
            | "Place" >> self._step(ps.place_pairs, tmp=self._tmp, salt=self._salt).with_outputs(STATS, main="slices")
        )
        plan = (
            placed[STATS]
            | "SumPairSizes" >> beam.CombineGlobally(SumDicts())
            | "PlanPairs"
            >> beam.Map(plan_shards, prefix="pairs_", num_shards=self._num_shards, target_bytes=self._target_bytes)
        )
        write = functools.partial(ps.write_pair_shard, path=self._path, batch_size=self._batch_size, tmp=self._tmp)
        written = placed.slices | "WritePairShards" >> WriteSplitShards(plan, write, self._workers)
        errors = (spilled[ERRORS], with_a[ERRORS], joined[ERRORS]) | "PairErrors" >> beam.Flatten()
        stats = (
            (spilled[STATS], with_a[STATS], joined[STATS], placed[STATS], written[STATS])
            | "PairStats" >> beam.Flatten()
        )
        return written.infos, errors, stats
