"""Building the engagement graph: the pure steps (no Beam; the pool processes import this).

Filter rounds (``iterations`` = R >= 1), on the deduplicated edges E, with T = all tweets alive:
  1. user step: each user keeps at most `max_per_user` of its edges whose tweet is alive
     (most recent first, or a stable hash sample);
  2. tweet step: a tweet stays alive when at least `min_per_tweet` distinct users kept an edge to it.
After R rounds the graph is the kept edges of alive tweets: every user has <= max_per_user edges
and every tweet >= min_per_tweet users, whatever R. Later rounds give a user's cap slots back
to tweets that survive; `tweets_dropped_round_<r>` = 0 on the last round means it was stable.

Edges are partitioned by a *range* shard of the user or tweet ID (split points from a hash sample,
read_steps.py), so a node's global index (its rank in numeric ID order) is the number of nodes in
lower shards (a prefix sum over the shards' node counts, a tiny side input) plus its rank inside
the shard. Every step reads its shard's slices from spill files and writes its output to ONE
spill file named after the round and shard, a slice per next shard (core/spill.py), so only file
references go through the shuffles and no process holds more than one shard:

- `user_round` (per user shard): dedupe (round 1: one row per (user, tweet, rel), the earliest),
  cap per user -> ``(tweet shard, SliceRef)`` of the edge state (alive, sel);
- `tweet_round` (per tweet shard): minimum per tweet -> ``(user shard, SliceRef)``, or on the
  last round the final edges with `engagers` -> ``(tweet shard, SliceRef, number of tweets)``;
- `index_tweets` (per tweet shard, with the tweet offsets): tweet indices (`rhs`), the tweet
  vocabulary's output rows -> ``(user shard, SliceRef)`` of the final edges;
- `count_users` (per user shard): the number of users (for the user offsets);
- `index_users` (per user shard, with the user offsets): user indices (`lhs`), edges sorted by
  (lhs, rhs, rel), the engagements, edges and user vocabulary output rows, the PBG edge list.

Output rows go to spill files a slice per (dataset, part) (`Tagged(PARTS, ((dataset, part), ref))`),
written by write_steps.write_graph_part. Counters are stats dicts (`Tagged(STATS, {...})`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, read_slices, write_split
from twhin_data.core.tables import lexsort, sorted_unique
from twhin_data.core.tags import STATS
from twhin_data.schemas.graph import ENGAGEMENT_TYPES
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph.write_steps import GraphOutputs, add_parts, write_pbg_tsv

STATE_SCHEMA = gc.EDGE_SCHEMA.append(pa.field("alive", pa.bool_())).append(pa.field("sel", pa.bool_()))
FINAL_SCHEMA = gc.EDGE_SCHEMA.append(pa.field("engagers", pa.int64()))
INDEXED_SCHEMA = FINAL_SCHEMA.append(pa.field("rhs", pa.int64()))
#: The final edges of a user shard, sorted by (lhs, rhs, rel): what pairs and the writers read.
EDGES_SCHEMA = INDEXED_SCHEMA.append(pa.field("lhs", pa.int64()))
#: The `degree_max_<side>` stats are maxima, not sums (pipelines/graph.py reads them so).
DEGREE_MAX = "degree_max_"


class Stats(dict):
    """A stats dict that keeps non-zero counts only."""

    def inc(self, name: str, value) -> None:
        if value:
            self[name] = self.get(name, 0) + int(value)

    def add(self, counts: dict) -> None:
        for name, value in counts.items():
            self.inc(name, value)

    def by_type(self, prefix: str, rel: np.ndarray, mask: np.ndarray | None = None) -> None:
        values = rel if mask is None else rel[mask]
        for code, count in enumerate(np.bincount(values.astype(np.int64), minlength=len(ENGAGEMENT_TYPES))):
            self.inc(f"{prefix}_{ENGAGEMENT_TYPES[code]}", count)

    def degrees(self, side: str, degree: np.ndarray) -> None:
        self.inc(f"{side}s", len(degree))
        for label, count in gc.log2_histogram(degree).items():
            self.inc(f"degree_{side}_{label}", count)
        if len(degree):
            self[f"{DEGREE_MAX}{side}"] = int(degree.max())


def _spill(tmp: str, name: str, schema: pa.Schema, table: pa.Table, keys: np.ndarray) -> list:
    """Writes `table` to ONE spill file, a slice per key: ``[(key, SliceRef)]``."""
    return write_split(files.join(tmp, "build", f"{name}.arrow"), schema, table, keys)


def user_round(
    item: tuple[int, list[SliceRef], dict[str, np.ndarray]], *, round_number: int, cap: int, policy: str, tmp: str
) -> list:
    """(user shard, refs, splits) -> (tweet shard, SliceRef) of the edge state: dedupe (round 1), cap."""
    shard, refs, splits = item
    stats = Stats()
    if round_number == 1:
        table, dropped = gc.dedupe(read_slices(refs, gc.EDGE_SCHEMA))
        stats.inc("duplicates", dropped.sum())
        for code, count in enumerate(dropped):
            stats.inc(f"duplicates_{ENGAGEMENT_TYPES[code]}", count)
        stats.by_type("deduped", table.column("rel").to_numpy())
        alive = np.ones(table.num_rows, dtype=bool)
    else:
        table = read_slices(refs, STATE_SCHEMA)
        alive = table.column("alive").to_numpy(zero_copy_only=False)
    sel = gc.cap_per_user(table, alive, cap, policy) if cap > 0 else alive.copy()
    state = pa.Table.from_arrays(
        [table.column(n) for n in gc.EDGE_SCHEMA.names] + [pa.array(alive), pa.array(sel)], schema=STATE_SCHEMA
    )
    keys = gc.range_shard(state.column("tweet").to_numpy(), splits["tweet"])
    return [Tagged(STATS, stats), *_spill(tmp, f"u{round_number}-{shard:05d}", STATE_SCHEMA, state, keys)]


def tweet_round(
    item: tuple[int, list[SliceRef], dict[str, np.ndarray]], *, round_number: int, final: bool, min_per_tweet: int, tmp: str
) -> list:
    """(tweet shard, refs, splits) -> the per-tweet minimum of one round (module docstring)."""
    shard, refs, splits = item
    table = read_slices(refs, STATE_SCHEMA)
    stats = Stats()
    alive, sel = (table.column(n).to_numpy(zero_copy_only=False) for n in ("alive", "sel"))
    user, tweet, rel = gc.cols(table, "user", "tweet", "rel")
    kept = alive & sel
    tweets, engagers = gc.distinct_users_per_tweet(tweet[kept], user[kept])
    engager_count = gc.lookup(tweets, engagers, tweet, default=0)
    new_alive = alive & (engager_count >= min_per_tweet)
    stats.inc(f"tweets_dropped_round_{round_number}", len(sorted_unique(tweet[alive & ~new_alive])))
    if not final:
        state = table.set_column(table.schema.get_field_index("alive"), "alive", pa.array(new_alive))
        keys = gc.range_shard(user, splits["user"])
        return [Tagged(STATS, stats), *_spill(tmp, f"t{round_number}-{shard:05d}", STATE_SCHEMA, state, keys)]
    final_rows = new_alive & sel
    stats.inc("filtered_min_per_tweet", (~new_alive).sum())
    stats.inc("filtered_max_per_user", (new_alive & ~sel).sum())
    stats.inc("edges_out", final_rows.sum())
    stats.by_type("filtered_min_per_tweet", rel, ~new_alive)
    stats.by_type("filtered_max_per_user", rel, new_alive & ~sel)
    stats.by_type("edges_out", rel, final_rows)
    edges = table.select(gc.EDGE_SCHEMA.names).filter(pa.array(final_rows))
    engaged = gc.lookup(tweets, engagers, edges.column("tweet").to_numpy(), default=0)
    edges = edges.append_column("engagers", pa.array(engaged, pa.int64()))
    _, degree = np.unique(edges.column("tweet").to_numpy(), return_counts=True)
    stats.degrees("tweet", degree)
    spilled = _spill(tmp, f"final-{shard:05d}", FINAL_SCHEMA, edges, np.zeros(edges.num_rows, np.int64))
    return [Tagged(STATS, stats), *((shard, ref, len(degree)) for _, ref in spilled)]


def offsets(counts: dict[int, int]) -> dict[int, int]:
    """shard -> number of nodes in all lower shards (range shards are in ID order)."""
    out, total = {}, 0
    for shard in sorted(counts):
        out[shard] = total
        total += counts[shard]
    return out


def _nodes(ids: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct ids, their degree, their global index) of one range shard."""
    node_ids, degree = np.unique(ids, return_counts=True)
    return node_ids, degree, np.arange(len(node_ids), dtype=np.int64) + start


def index_tweets(
    item: tuple[int, SliceRef, int, dict[int, int], dict[str, np.ndarray]], *, outputs: GraphOutputs, tmp: str
) -> list:
    """(tweet shard, final edges, n, offsets, splits) -> tweet indices: ``(user shard, SliceRef)``
    of the edges, and the tweet vocabulary's parts."""
    shard, ref, _, starts, splits = item
    edges = read_slices([ref], FINAL_SCHEMA)
    tweet = edges.column("tweet").to_numpy()
    node_ids, degree, index = _nodes(tweet, starts.get(shard, 0))
    _, first = np.unique(tweet, return_index=True)
    nodes = pa.table(
        {
            "index": pa.array(index),
            "tweet": pa.array(node_ids, pa.uint64()),
            "degree": pa.array(degree, pa.int64()),
            "engagers": edges.column("engagers").take(pa.array(first)),
        }
    )
    rhs = gc.lookup(node_ids, index, tweet, default=-1)
    edges = edges.append_column("rhs", pa.array(rhs, pa.int64()))
    keys = gc.range_shard(edges.column("user").to_numpy(), splits["user"])
    out: list = add_parts(outputs, "tweets", nodes, tmp, f"tweets-{shard:05d}")
    return out + _spill(tmp, f"rhs-{shard:05d}", INDEXED_SCHEMA, edges, keys)


def count_users(item: tuple[int, list[SliceRef]]) -> list:
    """(user shard, refs) -> ``(shard, refs, number of users)`` and the user degree stats."""
    shard, refs = item
    user = read_slices(refs, INDEXED_SCHEMA).column("user").to_numpy()
    _, degree = np.unique(user, return_counts=True)
    stats = Stats()
    stats.degrees("user", degree)
    return [Tagged(STATS, stats), (shard, refs, len(degree))]


def index_users(
    item: tuple[int, list[SliceRef], int, dict[int, int]], *, outputs: GraphOutputs, tmp: str, keep_edges: bool
) -> list:
    """(user shard, refs, n, offsets) -> user indices: the graph's output parts, its PBG edge list,
    and with `keep_edges` ``(shard, SliceRef)`` of the final edges for the pair step."""
    shard, refs, _, starts = item
    edges = read_slices(refs, INDEXED_SCHEMA)
    user = edges.column("user").to_numpy()
    node_ids, degree, index = _nodes(user, starts.get(shard, 0))
    nodes = pa.table({"index": pa.array(index), "user": pa.array(node_ids, pa.uint64()), "degree": pa.array(degree, pa.int64())})
    lhs = gc.lookup(node_ids, index, user, default=-1)
    edges = edges.append_column("lhs", pa.array(lhs, pa.int64()))
    order = lexsort((edges.column("rel").to_numpy(), edges.column("rhs").to_numpy(), lhs))
    edges = edges.take(pa.array(order))
    out: list = add_parts(outputs, "users", nodes, tmp, f"users-{shard:05d}")
    out += add_parts(outputs, "edges", edges, tmp, f"edges-{shard:05d}")
    out += add_parts(outputs, "engagements", edges, tmp, f"engagements-{shard:05d}")
    out += write_pbg_tsv(edges, outputs)
    if keep_edges and edges.num_rows:
        out += [(shard, ref) for _, ref in _spill(tmp, f"edges-{shard:05d}", EDGES_SCHEMA, edges, np.zeros(edges.num_rows, np.int64))]
    return out
