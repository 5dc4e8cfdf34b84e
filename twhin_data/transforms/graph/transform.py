"""Building the engagement graph: the pooled steps of build_steps.py wired with Beam shuffles.

The rows move between the steps in Arrow spill files under `tmp`; the shuffles carry file
references only, so the runner's process does nothing per edge and never holds a partition, and
with ``--workers N`` the steps run in N processes (docs/scale-up.md). Range split points come from
a deterministic bottom-k hash sample of the distinct edges (read_steps.py), so partitions are
balanced by edge count. The filter rounds and the index order are described in build_steps.py.
"""

from __future__ import annotations

import functools

import apache_beam as beam
from apache_beam.metrics import Metrics

from twhin_data.core.tags import PARTS, STATS, WRITTEN
from twhin_data.transforms.graph import build_steps as bs
from twhin_data.transforms.graph import read_steps as rs
from twhin_data.transforms.graph.write_steps import GraphOutputs, write_graph_part
from twhin_data.transforms.parallel import PoolMapFn

NAMESPACE = "graph"
SAMPLES_PER_SHARD = 256
#: The pool every pooled step of graph shares (started once: core/pool.py).
POOL = "graph"


class MergeSamplesFn(beam.CombineFn):
    """The bottom-k hash sample of the whole input from the samples of its files."""

    def __init__(self, k: int):
        self._k = k

    def create_accumulator(self) -> rs.Sample:
        return rs.empty_sample()

    def add_input(self, acc: rs.Sample, sample: rs.Sample) -> rs.Sample:
        return rs.merge_samples([acc, sample], self._k)

    def merge_accumulators(self, accs) -> rs.Sample:
        return rs.merge_samples(list(accs), self._k)

    def extract_output(self, acc: rs.Sample) -> rs.Sample:
        return acc


class CountGraphStatsFn(beam.DoFn):
    """A pooled step's stats dict -> the `graph` counters; `degree_max_<side>` -> the largest degree
    (Beam distribution `degree_<side>`)."""

    def __init__(self, namespace: str = NAMESPACE):
        self._namespace = namespace

    def process(self, stats: dict):
        for name, value in stats.items():
            if name.startswith(bs.DEGREE_MAX):
                Metrics.distribution(self._namespace, "degree_" + name.removeprefix(bs.DEGREE_MAX)).update(value)
            else:
                Metrics.counter(self._namespace, name).inc(int(value))


def _listed(kv, *side):
    """A GroupByKey output -> (key, refs, *side inputs); the steps read refs in file order."""
    return (kv[0], list(kv[1]), *side)


class BuildGraph(beam.PTransform):
    """Read results (read_steps.read_input: ``(file index, [SliceRef], sample)``) -> the filtered graph.

    Output: dict of PCollections. ``edges``: ``(user shard, SliceRef)`` of the final edges, sorted
    by (lhs, rhs, rel), columns build_steps.EDGES_SCHEMA (only with `keep_edges`); ``written``: a
    dict per file written (the output datasets of `outputs`, the PBG edge lists); ``splits``: the
    range split points.

    Args:
      num_shards: range partitions (memory bound per task: edges / num_shards rows).
      max_per_user: per-user cap (0 = none). min_per_tweet: minimum distinct users per tweet.
      iterations: filter rounds (build_steps.py). cap_policy: recent or hash.
      outputs: where the datasets go. tmp: the spill folder. workers: pool processes (1: inline).
    """

    def __init__(
        self,
        *,
        num_shards: int,
        max_per_user: int,
        min_per_tweet: int,
        iterations: int,
        cap_policy: str,
        outputs: GraphOutputs,
        tmp: str,
        workers: int = 1,
        keep_edges: bool = True,
    ):
        super().__init__()
        self._shards, self._cap, self._min = num_shards, max_per_user, min_per_tweet
        self._rounds, self._policy = iterations, cap_policy
        self._outputs, self._tmp, self._workers, self._keep = outputs, tmp, workers, keep_edges

    def _pooled(self, fn, **kwargs) -> PoolMapFn:
        return PoolMapFn(functools.partial(fn, **kwargs), workers=self._workers, shared=POOL)

    def expand(self, inputs):
        tmp, stats = self._tmp, []
        sample = (
            inputs
            | "Samples" >> beam.Map(lambda item: item[2])
            | "MergeSamples" >> beam.CombineGlobally(MergeSamplesFn(SAMPLES_PER_SHARD * self._shards))
        )
        splits = sample | "SplitPoints" >> beam.Map(rs.make_splits, self._shards)
        side = beam.pvalue.AsSingleton(splits)
        state = (
            inputs
            | "WithSplits" >> beam.Map(lambda item, s: (*item, s), side)
            | "PartitionByUser" >> beam.ParDo(self._pooled(rs.partition_file, tmp=tmp))
        )
        for r in range(1, self._rounds + 1):
            users = (
                state
                | f"GroupUsers{r}" >> beam.GroupByKey()
                | f"UserShards{r}" >> beam.Map(_listed, side)
                | f"Cap{r}"
                >> beam.ParDo(
                    self._pooled(bs.user_round, round_number=r, cap=self._cap, policy=self._policy, tmp=tmp)
                ).with_outputs(STATS, main="refs")
            )
            step = functools.partial(bs.tweet_round, round_number=r, final=r == self._rounds, min_per_tweet=self._min)
            tweets = (
                users.refs
                | f"GroupTweets{r}" >> beam.GroupByKey()
                | f"TweetShards{r}" >> beam.Map(_listed, side)
                | f"MinPerTweet{r}" >> beam.ParDo(self._pooled(step, tmp=tmp)).with_outputs(STATS, main="refs")
            )
            stats += [users[STATS], tweets[STATS]]
            state = tweets.refs
        tweet_starts = (
            state
            | "TweetCounts" >> beam.Map(lambda item: (item[0], item[2]))
            | "TweetCountDict" >> beam.combiners.ToDict()
            | "TweetOffsets" >> beam.Map(bs.offsets)
        )
        indexed = (
            state
            | "WithTweetOffsets" >> beam.Map(lambda item, st, s: (*item, st, s), beam.pvalue.AsSingleton(tweet_starts), side)
            | "IndexTweets"
            >> beam.ParDo(self._pooled(bs.index_tweets, outputs=self._outputs, tmp=tmp)).with_outputs(
                STATS, PARTS, main="refs"
            )
        )
        counted = (
            indexed.refs
            | "GroupUsersFinal" >> beam.GroupByKey()
            | "FinalUserShards" >> beam.Map(_listed)
            | "CountUsers" >> beam.ParDo(self._pooled(bs.count_users)).with_outputs(STATS, main="counted")
        )
        user_starts = (
            counted.counted
            | "UserCounts" >> beam.Map(lambda item: (item[0], item[2]))
            | "UserCountDict" >> beam.combiners.ToDict()
            | "UserOffsets" >> beam.Map(bs.offsets)
        )
        done = (
            counted.counted
            | "WithUserOffsets" >> beam.Map(lambda item, st: (*item, st), beam.pvalue.AsSingleton(user_starts))
            | "IndexUsers"
            >> beam.ParDo(
                self._pooled(bs.index_users, outputs=self._outputs, tmp=tmp, keep_edges=self._keep)
            ).with_outputs(STATS, PARTS, WRITTEN, main="edges")
        )
        parts = (
            (indexed[PARTS], done[PARTS])
            | "AllParts" >> beam.Flatten()
            | "GroupParts" >> beam.GroupByKey()
            | "PartSlices" >> beam.Map(_listed)
            | "WriteParts"
            >> beam.ParDo(self._pooled(write_graph_part, outputs=self._outputs)).with_outputs(STATS, main="written")
        )
        _ = parts[STATS] | "CountWritten" >> beam.ParDo(CountGraphStatsFn("write"))
        stats += [indexed[STATS], counted[STATS], done[STATS]]
        _ = stats | "BuildStats" >> beam.Flatten() | "CountBuild" >> beam.ParDo(CountGraphStatsFn())
        return {
            "edges": done.edges,
            "written": (parts.written, done[WRITTEN]) | "AllWritten" >> beam.Flatten(),
            "splits": splits,
        }
