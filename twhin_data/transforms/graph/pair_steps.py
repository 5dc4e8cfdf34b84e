"""Co-engagement pairs: the pure steps (no Beam; the pool processes import this).

A pair of tweets is scored by how many users engaged with both, over the final graph:

1. `directed_pairs`, per user shard (whole users): each user's pairs of engaged tweets (within
   `gap_ms`, at most `fanout_cap` per user: pair_scoring.user_pairs), counted per (focal, other)
   in both directions, with the engagers of both tweets -> ``(tweet shard of focal, SliceRef)``;
2. `score_top_k`, per tweet shard: counts summed over user shards, score = count /
   sqrt(engagers_focal x engagers_other), pairs below `min_count` / `min_score` out, the `top_k`
   best of each focal tweet ranked -> ``(tweet shard of the smaller ID, SliceRef)``;
3. `canonical_pairs`, per tweet shard: a pair ranked from both of its tweets keeps the better
   rank -> one internal pair table (a, b, score, count, rank).

Rows move between the steps in spill files; only their references go through the shuffles.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, read_slices, write_split
from twhin_data.core.tags import STATS
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph import pair_scoring as pcore
from twhin_data.transforms.graph.build_steps import EDGES_SCHEMA

DIRECTED = pa.schema(
    [("tweet", pa.uint64()), ("other", pa.uint64()), ("count", pa.int64()), ("deg_f", pa.int64()), ("deg_o", pa.int64())]
)
RANKED = pa.schema(
    [("a", pa.uint64()), ("b", pa.uint64()), ("score", pa.float32()), ("count", pa.int64()), ("rank", pa.int32())]
)


def _spill(tmp: str, name: str, schema: pa.Schema, table: pa.Table, keys: np.ndarray) -> list:
    return write_split(files.join(tmp, "pairs", f"{name}.arrow"), schema, table, keys)


def directed_pairs(item: tuple[int, SliceRef, dict], *, gap_ms: int, fanout_cap: int, tmp: str) -> list:
    """Step 1 (pool function): (user shard, final edges, splits) -> ``(tweet shard, SliceRef)``."""
    shard, ref, splits = item
    edges = read_slices([ref], EDGES_SCHEMA)
    # Tweets as dense codes (ordered like their IDs): the pairs are then counted with one sort of
    # a single int64 key, and the engager counts are read by code, not searched.
    keys, first, codes = pcore.dense_codes(edges.column("tweet").to_numpy())
    coded = edges.set_column(edges.schema.get_field_index("tweet"), "tweet", pa.array(codes, pa.uint64()))
    left, right, counts = pcore.user_pairs(coded, gap_ms=gap_ms, fanout_cap=fanout_cap)
    stats = {name: int(value) for name, value in counts.items() if value}
    if len(left):
        stats["pairs_generated"] = len(left)
    outputs: list = [Tagged(STATS, stats)]
    if len(left) == 0:
        return outputs
    # Both directions, pre-aggregated here so the next step reads each (focal, other) once per user shard.
    f, o, count = pcore.aggregate_coded(np.r_[left, right], np.r_[right, left], len(keys))
    engagers = edges.column("engagers").to_numpy()[first]
    focal = keys[f]
    table = pa.table(
        {
            "tweet": pa.array(focal, pa.uint64()),
            "other": pa.array(keys[o], pa.uint64()),
            "count": pa.array(count, pa.int64()),
            "deg_f": pa.array(engagers[f], pa.int64()),
            "deg_o": pa.array(engagers[o], pa.int64()),
        }
    )
    homes = gc.range_shard(focal, splits["tweet"])
    return outputs + _spill(tmp, f"directed-{shard:05d}", DIRECTED, table, homes)


def score_top_k(
    item: tuple[int, list[SliceRef], dict], *, top_k: int, min_score: float, min_count: int, tmp: str
) -> list:
    """Step 2 (pool function): (tweet shard, refs, splits) -> ``(shard of a, SliceRef)`` of ranked pairs."""
    shard, refs, splits = item
    focal, other, count, deg_f, deg_o = pcore.sum_directed(read_slices(refs, DIRECTED))
    score = (count / np.sqrt(np.maximum(deg_f * deg_o, 1))).astype(np.float32)
    ok = (count >= min_count) & (score >= min_score)
    focal, other, count, score = focal[ok], other[ok], count[ok], score[ok]
    rank = pcore.top_k(focal, other, score, count, top_k)
    keep = rank > 0
    a = np.minimum(focal[keep], other[keep])
    out = pa.table(
        {
            "a": pa.array(a, pa.uint64()),
            "b": pa.array(np.maximum(focal[keep], other[keep]), pa.uint64()),
            "score": pa.array(score[keep], pa.float32()),
            "count": pa.array(count[keep], pa.int64()),
            "rank": pa.array(rank[keep], pa.int32()),
        }
    )
    return _spill(tmp, f"ranked-{shard:05d}", RANKED, out, gc.range_shard(a, splits["tweet"]))


def canonical_pairs(item: tuple[int, list[SliceRef]]) -> list:
    """Step 3 (pool function): (shard, refs) -> one internal pair table, each pair once."""
    _, refs = item
    table = read_slices(refs, RANKED)
    a, b, rank = gc.cols(table, "a", "b", "rank")
    pick = pcore.canonical_min_rank(a, b, rank)
    return [Tagged(STATS, {"pairs_cooccurrence": len(pick)} if len(pick) else {}), table.take(pa.array(pick))]
