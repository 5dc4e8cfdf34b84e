"""Building the engagement graph: dedupe, per-user cap, per-tweet minimum, contiguous indices.

Edges travel as ``pa.Table`` partitions keyed by a *range* shard of the user or tweet ID, so every
shuffle moves a few large tables instead of millions of elements, no worker ever holds more than
one partition, and a node's global index (its rank in numeric ID order) is the partition's
offset (a prefix sum over partition sizes, a tiny side input) plus its rank inside the partition.
Range split points come from a deterministic bottom-k hash sample of the distinct edges, so
partitions are balanced by edge count.

Filter rounds (``iterations`` = R >= 1), on the deduplicated edges E, with T = all tweets alive:
  1. user step: each user keeps at most `max_per_user` of its edges whose tweet is alive
     (most recent first, or a stable hash sample);
  2. tweet step: a tweet stays alive when at least `min_per_tweet` distinct users kept an edge to it.
After R rounds the graph is the kept edges of alive tweets: every user has <= max_per_user edges
and every tweet >= min_per_tweet users, whatever R. Later rounds give a user's cap slots back
to tweets that survive; `tweets_dropped_round_<r>` = 0 on the last round means it was stable.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from twhin_data.core.tables import split_table
from twhin_data.schemas.graph import ENGAGEMENT_TYPES
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.metrics import Counters

NAMESPACE = "graph"
STATE_SCHEMA = gc.EDGE_SCHEMA.append(pa.field("alive", pa.bool_())).append(pa.field("sel", pa.bool_()))
SAMPLES_PER_SHARD = 256


class BottomKSampleFn(beam.CombineFn):
    """Deterministic sample of distinct edges: the k smallest stable hashes of (user, tweet, rel)."""

    def __init__(self, k: int):
        self._k = k

    def create_accumulator(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.uint64)

    def _trim(self, h: np.ndarray, u: np.ndarray, t: np.ndarray):
        _, first = np.unique(h, return_index=True)  # sorted by hash, duplicates removed
        first = first[: self._k]
        return h[first], u[first], t[first]

    def add_input(self, acc, table: pa.Table):
        user, tweet, rel = gc.cols(table, "user", "tweet", "rel")
        h = gc.edge_hash(user, tweet, rel, salt=0x5A3D)
        return self._trim(np.r_[acc[0], h], np.r_[acc[1], user], np.r_[acc[2], tweet])

    def merge_accumulators(self, accs):
        accs = list(accs)
        return self._trim(*(np.concatenate([a[i] for a in accs]) for i in range(3)))

    def extract_output(self, acc) -> dict[str, np.ndarray]:
        return {"user": acc[1], "tweet": acc[2]}


def make_splits(sample: dict[str, np.ndarray], num_shards: int) -> dict[str, np.ndarray]:
    return {
        side: gc.quantile_splits(sample[side].astype(np.uint64), num_shards) for side in ("user", "tweet")
    }


def key_by(table: pa.Table, side: str, splits: dict[str, np.ndarray]) -> list[tuple[int, pa.Table]]:
    """Splits a table into (range shard of `side`, rows) elements."""
    return split_table(table, gc.range_shard(table.column(side).to_numpy(), splits[side]))


def _concat(tables: Iterable[pa.Table], schema: pa.Schema | None = None) -> pa.Table:
    tables = list(tables)
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables).combine_chunks()


class _Counting(beam.DoFn):
    def __init__(self):
        self._counters = Counters(NAMESPACE)

    def _inc(self, name: str, value: int) -> None:
        if value:
            self._counters.inc(name, value)

    def _inc_by_type(self, prefix: str, rel: np.ndarray, mask: np.ndarray | None = None) -> None:
        values = rel if mask is None else rel[mask]
        for code, count in enumerate(np.bincount(values.astype(np.int64), minlength=len(ENGAGEMENT_TYPES))):
            self._inc(f"{prefix}_{ENGAGEMENT_TYPES[code]}", int(count))


class _UserRoundFn(_Counting):
    """(user shard, tables) -> (tweet shard, state table): dedupe (first round) and per-user cap."""

    def __init__(self, *, first: bool, cap: int, policy: str):
        super().__init__()
        self._first, self._cap, self._policy = first, cap, policy

    def process(self, item, splits) -> Iterable[tuple[int, pa.Table]]:
        _, tables = item
        table = _concat(tables)
        if self._first:
            table, dropped = gc.dedupe(table)
            self._inc("duplicates", dropped.sum())
            for code, count in enumerate(dropped):
                self._inc(f"duplicates_{ENGAGEMENT_TYPES[code]}", count)
            self._inc_by_type("deduped", table.column("rel").to_numpy())
            alive = np.ones(table.num_rows, dtype=bool)
        else:
            alive = table.column("alive").to_numpy(zero_copy_only=False)
        if self._cap > 0:
            sel = gc.cap_per_user(table, alive, self._cap, self._policy)
        else:
            sel = alive.copy()
        state = pa.Table.from_arrays(
            [table.column(n) for n in gc.EDGE_SCHEMA.names] + [pa.array(alive), pa.array(sel)],
            schema=STATE_SCHEMA,
        )
        yield from key_by(state, "tweet", splits)


class _TweetRoundFn(_Counting):
    """(tweet shard, state tables) -> the per-tweet minimum of one round.

    Not final: (user shard, state table) for the next round. Final: (tweet shard, final edges
    with `engagers` = distinct users per tweet, tweet nodes (tweet, degree, engagers)).
    """

    def __init__(self, *, round_number: int, final: bool, min_per_tweet: int):
        super().__init__()
        self._round, self._final, self._min = round_number, final, min_per_tweet

    def process(self, item, splits) -> Iterable:
        shard, tables = item
        table = _concat(tables)
        alive, sel = (table.column(n).to_numpy(zero_copy_only=False) for n in ("alive", "sel"))
        user, tweet, rel = gc.cols(table, "user", "tweet", "rel")
        kept = alive & sel
        tweets, engagers = gc.distinct_users_per_tweet(tweet[kept], user[kept])
        engager_count = gc.lookup(tweets, engagers, tweet, default=0)
        new_alive = alive & (engager_count >= self._min)
        self._inc(f"tweets_dropped_round_{self._round}", len(np.unique(tweet[alive & ~new_alive])))
        if not self._final:
            state = table.set_column(table.schema.get_field_index("alive"), "alive", pa.array(new_alive))
            yield from key_by(state, "user", splits)
            return
        final = new_alive & sel
        self._inc("filtered_min_per_tweet", (~new_alive).sum())
        self._inc("filtered_max_per_user", (new_alive & ~sel).sum())
        self._inc("edges_out", final.sum())
        self._inc_by_type("filtered_min_per_tweet", rel, ~new_alive)
        self._inc_by_type("filtered_max_per_user", rel, new_alive & ~sel)
        self._inc_by_type("edges_out", rel, final)
        edges = table.select(gc.EDGE_SCHEMA.names).filter(pa.array(final))
        engaged = gc.lookup(tweets, engagers, edges.column("tweet").to_numpy(), default=0)
        edges = edges.append_column("engagers", pa.array(engaged, pa.int64()))
        node_ids, degree = np.unique(edges.column("tweet").to_numpy(), return_counts=True)
        nodes = pa.table(
            {
                "tweet": pa.array(node_ids, pa.uint64()),
                "degree": pa.array(degree, pa.int64()),
                "engagers": pa.array(gc.lookup(tweets, engagers, node_ids), pa.int64()),
            }
        )
        _count_degrees(self, "tweet", degree)
        yield shard, edges, nodes


def _count_degrees(fn: _Counting, side: str, degree: np.ndarray) -> None:
    fn._inc(f"{side}s", len(degree))
    for label, count in gc.log2_histogram(degree).items():
        fn._inc(f"degree_{side}_{label}", count)
    if len(degree):
        Metrics.distribution(NAMESPACE, f"degree_{side}").update(int(degree.max()))


def offsets(counts: dict[int, int]) -> dict[int, int]:
    """shard -> number of nodes in all lower shards (range shards are in ID order)."""
    out, total = {}, 0
    for shard in sorted(counts):
        out[shard] = total
        total += counts[shard]
    return out


def _index_tweets(item, starts: dict[int, int]):
    shard, edges, nodes = item
    index = np.arange(nodes.num_rows, dtype=np.int64) + starts.get(shard, 0)
    nodes = nodes.add_column(0, "index", pa.array(index))
    rhs = gc.lookup(nodes.column("tweet").to_numpy(), index, edges.column("tweet").to_numpy(), default=-1)
    return edges.append_column("rhs", pa.array(rhs, pa.int64())), nodes


class _UserNodesFn(_Counting):
    """(user shard, final edge tables) -> (shard, edges, user nodes (user, degree))."""

    def process(self, item) -> Iterable:
        shard, tables = item
        edges = _concat(tables)
        node_ids, degree = np.unique(edges.column("user").to_numpy(), return_counts=True)
        _count_degrees(self, "user", degree)
        yield (
            shard,
            edges,
            pa.table({"user": pa.array(node_ids, pa.uint64()), "degree": pa.array(degree, pa.int64())}),
        )


def _index_users(item, starts: dict[int, int]) -> tuple[pa.Table, pa.Table]:
    shard, edges, nodes = item
    index = np.arange(nodes.num_rows, dtype=np.int64) + starts.get(shard, 0)
    nodes = nodes.add_column(0, "index", pa.array(index))
    lhs = gc.lookup(nodes.column("user").to_numpy(), index, edges.column("user").to_numpy(), default=-1)
    edges = edges.append_column("lhs", pa.array(lhs, pa.int64()))
    order = np.lexsort((edges.column("rel").to_numpy(), edges.column("rhs").to_numpy(), lhs))
    return edges.take(pa.array(order)), nodes


def _node_offsets(pcoll, label: str):
    return (
        pcoll
        | f"{label}Sizes" >> beam.Map(lambda item: (item[0], item[2].num_rows))
        | f"{label}SizeDict" >> beam.combiners.ToDict()
        | f"{label}Offsets" >> beam.Map(offsets)
    )


class BuildGraph(beam.PTransform):
    """Edge tables (``edges.EDGE_SCHEMA``) -> the filtered graph with contiguous indices.

    Output: dict of PCollections. ``edges``: one table per user partition, sorted by (lhs, rhs, rel),
    columns user, tweet, rel, ts, source, engagers, rhs, lhs; ``users``: tables (index, user, degree);
    ``tweets``: tables (index, tweet, degree, engagers); ``splits``: the range split points.

    Args:
      num_shards: range partitions (memory bound per worker: edges / num_shards rows).
      max_per_user: per-user cap (0 = none). min_per_tweet: minimum distinct users per tweet.
      iterations: filter rounds (see the module docstring). cap_policy: recent or hash.
    """

    def __init__(
        self, *, num_shards: int, max_per_user: int, min_per_tweet: int, iterations: int, cap_policy: str
    ):
        super().__init__()
        self._shards, self._cap, self._min = num_shards, max_per_user, min_per_tweet
        self._rounds, self._policy = iterations, cap_policy

    def expand(self, edges):
        sample = edges | "SampleEdges" >> beam.CombineGlobally(
            BottomKSampleFn(SAMPLES_PER_SHARD * self._shards)
        )
        splits = sample | "SplitPoints" >> beam.Map(make_splits, self._shards)
        side = beam.pvalue.AsSingleton(splits)
        state = (
            edges
            | "KeyByUser" >> beam.FlatMap(key_by, "user", side)
            | "GroupUsers1" >> beam.GroupByKey()
            | "DedupeCap1" >> beam.ParDo(_UserRoundFn(first=True, cap=self._cap, policy=self._policy), side)
        )
        for r in range(1, self._rounds + 1):
            final = r == self._rounds
            step = _TweetRoundFn(round_number=r, final=final, min_per_tweet=self._min)
            state = (
                state | f"GroupTweets{r}" >> beam.GroupByKey() | f"MinPerTweet{r}" >> beam.ParDo(step, side)
            )
            if not final:
                cap = _UserRoundFn(first=False, cap=self._cap, policy=self._policy)
                state = (
                    state | f"GroupUsers{r + 1}" >> beam.GroupByKey() | f"Cap{r + 1}" >> beam.ParDo(cap, side)
                )
        tweet_starts = beam.pvalue.AsSingleton(_node_offsets(state, "Tweet"))
        indexed = state | "IndexTweets" >> beam.Map(_index_tweets, tweet_starts)
        by_user = (
            indexed
            | "EdgesOnly" >> beam.Map(lambda x: x[0])
            | "KeyFinalByUser" >> beam.FlatMap(key_by, "user", side)
            | "GroupUsersFinal" >> beam.GroupByKey()
            | "UserNodes" >> beam.ParDo(_UserNodesFn())
        )
        user_starts = beam.pvalue.AsSingleton(_node_offsets(by_user, "User"))
        final_edges = by_user | "IndexUsers" >> beam.Map(_index_users, user_starts)
        return {
            "edges": final_edges | "FinalEdges" >> beam.Map(lambda x: x[0]),
            "users": final_edges | "UserVocab" >> beam.Map(lambda x: x[1]),
            "tweets": indexed | "TweetVocab" >> beam.Map(lambda x: x[1]),
            "splits": splits,
        }
