"""prepare's near-dedup step 3 (`components`): clusters of every verified edge, in memory bounded
by the clustered tweets, not by the edges.

The edges (near_dedup.EDGE_LAYOUT: MinHash pairs from the verify step, exact and view copies from
the dedup buckets) are read one spill file at a time, in (file, batch) order, twice:

1. the MinHash edges' tweet IDs, merged into one sorted node array; the copies (their IDs,
   reason and language: one row per removed tweet) are kept;
2. union-find over the node indices (`union`: each root hooks to the lowest root it meets, so a
   component's root is its lowest tweet ID), with, per node, the edges it is the removed side of
   and the first row naming it on each side (with and without a known language).

Then the languages of the removed tweets and the views shown in the report are read from those
rows (each file once), and the map (one row per removed tweet, lowest ID first) is sorted as
numbers and written a row group at a time. State: a few numbers per clustered tweet and per
removed copy, plus one spill file; a near-copy pair verified in every band partition it shares a
band in no longer costs memory per verification.
Pure numpy and Arrow, no Beam: pool processes import this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.core.hashing import shard_of
from twhin_data.core.parquet import write_parquet_streamed
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, read_slices, write_slices
from twhin_data.core.tables import sorted_unique, split_table
from twhin_data.core.tags import COUNTS, STATS
from twhin_data.schemas import conform
from twhin_data.schemas.corpus import DUPLICATES
from twhin_data.text.langid import UNKNOWN
from twhin_data.transforms.prepare.near_dedup import (
    DROP_LAYOUT,
    DROP_PREFIX,
    EDGE_LAYOUT,
    EXAMPLES,
    MAP_FILE,
    MINHASH,
)

#: Node IDs gathered before they are merged into the sorted node array (bounds pass 1's memory).
MERGE_EVERY = 1 << 20
COPY_COLUMNS = ["id", "kept", "reason", "lang"]
#: Rows per row group of the map file (the row group size of core.files.write_parquet_atomic).
MAP_ROW_GROUP = 50_000


def union(parent: np.ndarray, u: np.ndarray, v: np.ndarray) -> None:
    """Joins the sets of nodes `u[i]` and `v[i]` in `parent` (in place; ``parent[i] <= i``): each
    root hooks to the lowest root it is joined with, so every root is the lowest node of its set."""
    while u.size:
        ru, rv = find(parent, u), find(parent, v)
        parent[u], parent[v] = ru, rv  # path compression for the nodes seen
        differ = ru != rv
        if not differ.any():
            return
        u, v, ru, rv = u[differ], v[differ], ru[differ], rv[differ]
        np.minimum.at(parent, np.maximum(ru, rv), np.minimum(ru, rv))


def find(parent: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """The root of each of `nodes` (pointer jumping)."""
    roots = parent[nodes]
    while True:
        up = parent[roots]
        if np.array_equal(up, roots):
            return roots
        roots = up


def flatten(parent: np.ndarray) -> np.ndarray:
    """Every node's root (``parent`` followed to the end, for all nodes at once)."""
    label = parent.copy()
    while True:
        up = label[label]
        if np.array_equal(up, label):
            return label
        label = up


def connected_components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (sorted uint64) and, per node, the index of the lowest node of its component."""
    nodes, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    parent = np.arange(nodes.size)
    union(parent, inverse[: a.size], inverse[a.size :])
    return nodes, flatten(parent)


class _EdgeFiles:
    """The edge spill refs as one sequence of rows ((file, batch) order, like `core.spill.Pieces`),
    read one file at a time and into memory (a step that maps them all would hold them all)."""

    def __init__(self, refs: list[SliceRef]):
        self.refs = sorted(refs)
        self.starts = np.zeros(1, np.int64)  # each file's first row, then the row count (after a pass)

    def tables(self) -> Iterator[tuple[int, pa.Table]]:
        """(first global row, rows) per file."""
        starts = [0]
        for ref in self.refs:
            table = read_slices([ref], EDGE_LAYOUT, mmap=False)
            yield starts[-1], table
            starts.append(starts[-1] + table.num_rows)
        self.starts = np.asarray(starts, np.int64)

    def strings_at(self, column: str, rows: np.ndarray) -> pa.Array:
        """Column `column` at global `rows` (-1: null), each file read once."""
        got = rows >= 0
        order = np.argsort(rows[got], kind="stable")
        wanted = rows[got][order]
        bounds = np.searchsorted(wanted, self.starts)
        parts = [
            read_slices([ref], EDGE_LAYOUT, mmap=False).column(column).take(pa.array(wanted[lo:hi] - start))
            for ref, start, lo, hi in zip(self.refs, self.starts.tolist(), bounds[:-1].tolist(), bounds[1:].tolist(), strict=False)
            if hi > lo
        ]
        values = pa.chunked_array([c for part in parts for c in part.chunks], pa.string()).combine_chunks()
        index = np.zeros(rows.size, np.int64)
        position = np.empty(order.size, np.int64)
        position[order] = np.arange(order.size)
        index[got] = position
        return values.take(pa.array(index, mask=~got))


def _near(table: pa.Table) -> np.ndarray:
    return pc.equal(table.column("reason"), MINHASH).to_numpy(zero_copy_only=False)


def _nodes_and_copies(edges: _EdgeFiles) -> tuple[np.ndarray, pa.Table]:
    """Pass 1: the sorted IDs of every tweet in a MinHash edge, and the copy edges' COPY_COLUMNS."""
    nodes = np.zeros(0, np.uint64)
    pending: list[np.ndarray] = []
    waiting = 0
    copies = []
    for _, table in edges.tables():
        near = _near(table)
        ids = np.concatenate([table.column(c).to_numpy()[near] for c in ("id", "kept")])
        pending.append(sorted_unique(ids))
        waiting += pending[-1].size
        if waiting > max(MERGE_EVERY, nodes.size):
            nodes, pending, waiting = sorted_unique(np.concatenate([nodes, *pending])), [], 0
        copies.append(table.filter(pa.array(~near)).select(COPY_COLUMNS))
    nodes = sorted_unique(np.concatenate([nodes, *pending])) if pending else nodes
    if not copies:
        return nodes, EDGE_LAYOUT.empty_table().select(COPY_COLUMNS)
    return nodes, pa.concat_tables(copies).combine_chunks()


class _Firsts:
    """Per node, the first global row naming it (-1: none yet)."""

    def __init__(self, size: int):
        self.row = np.full(size, -1, np.int64)

    def see(self, node: np.ndarray, rows: np.ndarray) -> None:
        if node.size:
            first_node, at = np.unique(node, return_index=True)
            fresh = self.row[first_node] < 0
            self.row[first_node[fresh]] = rows[at[fresh]]


def _cluster(edges: _EdgeFiles, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Pass 2: every node's root (`flatten`), the MinHash edges naming it as removed, and the first
    rows naming it (``_Firsts`` by side: "id", "kept", and with a known language "id_lang",
    "kept_lang")."""
    parent = np.arange(nodes.size)
    removed_edges = np.zeros(nodes.size, np.int64)
    firsts = {name: _Firsts(nodes.size) for name in ("id", "kept", "id_lang", "kept_lang")}
    for offset, table in edges.tables():
        rows = np.flatnonzero(_near(table))
        u = np.searchsorted(nodes, table.column("id").to_numpy()[rows])
        v = np.searchsorted(nodes, table.column("kept").to_numpy()[rows])
        union(parent, u, v)
        removed_edges += np.bincount(u, minlength=nodes.size)
        at = rows + offset
        firsts["id"].see(u, at)
        firsts["kept"].see(v, at)
        for side, node, column in (("id_lang", u, "lang"), ("kept_lang", v, "kept_lang")):
            known = pc.is_valid(table.column(column)).to_numpy(zero_copy_only=False)[rows]
            firsts[side].see(node[known], at[known])
    return flatten(parent), removed_edges, firsts


def _moved_langs(edges: _EdgeFiles, firsts: dict, moved: np.ndarray) -> pa.Array:
    """Each removed member's language: from its first edge as the removed side with a known
    language, else as the kept side, else null."""
    own = firsts["id_lang"].row[moved]
    return pc.if_else(
        pa.array(own >= 0),
        edges.strings_at("lang", own),
        edges.strings_at("kept_lang", firsts["kept_lang"].row[moved]),
    )


def _removals(
    nodes: np.ndarray, label: np.ndarray, moved: np.ndarray, moved_langs: pa.Array, copy_edges: pa.Table
) -> _Removed:
    """The MinHash members `moved`, then the copies (their kept tweet replaced by its cluster's
    representative), as one `_Removed`."""
    ids, kept = copy_edges.column("id").to_numpy(), copy_edges.column("kept").to_numpy()
    copy_rep = kept.copy()
    if nodes.size:
        at = np.minimum(np.searchsorted(nodes, copy_rep), nodes.size - 1)
        hit = nodes[at] == copy_rep
        copy_rep[hit] = nodes[label[at[hit]]]
    reasons = pa.array(sorted({MINHASH, *pc.unique(copy_edges.column("reason")).to_pylist()}), pa.string())
    minhash = reasons.index(MINHASH).as_py()
    copy_reasons = pc.index_in(copy_edges.column("reason"), value_set=reasons).to_numpy(zero_copy_only=False)
    return _Removed(
        id=np.concatenate([nodes[moved], ids]),
        kept=np.concatenate([nodes[label[moved]], copy_rep]),
        reason=np.concatenate([np.full(moved.size, minhash, np.int32), copy_reasons.astype(np.int32)]),
        lang=pa.concat_arrays([moved_langs, copy_edges.column("lang").combine_chunks()]),
        reasons=reasons,
        minhash=minhash,
    )


def components(
    item: tuple[int, Iterable[SliceRef]], *, num_parts: int, part_salt: str, tmp: str, map_dir: str
) -> list:
    """Step 3: clusters of every edge; drops for the writer, lowered language counts, the map.

    Clusters are the connected components of the verified MinHash edges, which join kept tweets
    only; exact and view copies then map to the representative of the tweet they were removed
    for. They never join clusters themselves: one tweet ID hydrated twice with two different
    texts is a copy in two dedup buckets, and two distinct texts must not merge through it."""
    edges = _EdgeFiles(list(item[1]))
    nodes, copy_edges = _nodes_and_copies(edges)
    label, removed_edges, firsts = _cluster(edges, nodes)
    moved = np.flatnonzero(label != np.arange(nodes.size))  # new removals: MinHash duplicates
    removed = _removals(nodes, label, moved, _moved_langs(edges, firsts, moved), copy_edges)
    kept = copy_edges.column("kept").to_numpy()
    del copy_edges
    # One row per removed tweet (a tweet copied in two buckets: its lowest representative). No
    # row for a tweet that stays: the same ID twice in one bucket, or kept in another bucket
    # (one ID hydrated with two texts) without a MinHash removal.
    stays = np.setdiff1d(kept, nodes[moved])
    rows = np.flatnonzero((removed.id != removed.kept) & ~np.isin(removed.id, stays))
    rows = rows[np.lexsort((removed.reason[rows], removed.kept[rows], removed.id[rows]))]
    if rows.size > 1:
        rows = rows[np.concatenate([[True], removed.id[rows[1:]] != removed.id[rows[:-1]]])]
    write_parquet_streamed(
        files.join(map_dir, MAP_FILE),
        DUPLICATES,
        (removed.strings(rows[start : start + MAP_ROW_GROUP]) for start in range(0, rows.size, MAP_ROW_GROUP)),
        row_group_size=MAP_ROW_GROUP,
    )
    new = rows[removed.reason[rows] == removed.minhash]
    counts = _lowered_counts(removed.lang.take(pa.array(new)))
    # Every component has an edge, and every MinHash edge lies in one component.
    clusters = int(np.count_nonzero(label == np.arange(nodes.size)))
    stats = {"removed": int(new.size), "clusters": clusters}
    examples = _examples(edges, nodes, label, removed_edges, firsts)
    outputs: list = [
        Tagged(COUNTS, counts),
        Tagged(STATS, {"near_dedup": stats, "near_examples": examples}),
    ]
    if new.size:
        drops = pa.table({"tweet_id": pc.cast(pa.array(removed.id[new], pa.uint64()), pa.string())}, schema=DROP_LAYOUT)
        parts = shard_of(drops.column("tweet_id"), num_parts, part_salt)
        path = files.join(tmp, "near", f"{DROP_PREFIX}all.arrow")
        outputs.extend(write_slices(path, DROP_LAYOUT, split_table(drops, parts)))
    return outputs


class _Removed(NamedTuple):
    """Every removal (MinHash members, then copies) as numbers, until a map row group is written."""

    id: np.ndarray  # uint64
    kept: np.ndarray  # uint64: the representative
    reason: np.ndarray  # int32 index into `reasons` (sorted: code order is string order)
    lang: pa.Array
    reasons: pa.Array
    minhash: int  # the code of MINHASH

    def strings(self, rows: np.ndarray) -> pa.Table:
        """DUPLICATES rows of `rows`."""
        table = pa.table(
            {
                "tweet_id": pc.cast(pa.array(self.id[rows], pa.uint64()), pa.string()),
                "kept_tweet_id": pc.cast(pa.array(self.kept[rows], pa.uint64()), pa.string()),
                "reason": self.reasons.take(pa.array(self.reason[rows])),
                "lang": self.lang.take(pa.array(rows)),
            }
        )
        return conform(table, DUPLICATES)


def _lowered_counts(langs: pa.Array) -> dict[str, int]:
    """{language: -tweets} of the MinHash removals, null and empty read as UNKNOWN; keys in the
    order of their first row (as a loop over the rows would insert them)."""
    counts: dict[str, int] = {}
    if len(langs) == 0:
        return counts
    encoded = pc.dictionary_encode(langs)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    values, first, tally = np.unique(codes, return_index=True, return_counts=True)
    names = encoded.dictionary.to_pylist()
    for order in np.argsort(first, kind="stable").tolist():
        code = int(values[order])
        key = (names[code] if code >= 0 else None) or UNKNOWN
        counts[key] = counts.get(key, 0) - int(tally[order])
    return counts


def _examples(edges: _EdgeFiles, nodes: np.ndarray, label: np.ndarray, removed_edges: np.ndarray, firsts: dict) -> dict:
    """The largest MinHash clusters (most edges, then lowest ID): the kept view and up to three
    removed views each (a tweet's view: from the first edge naming it as removed, else as kept)."""
    size = np.bincount(label, weights=removed_edges, minlength=nodes.size).astype(np.int64)
    top = np.flatnonzero(size > 0)
    top = top[np.lexsort((nodes[top], -size[top]))][:EXAMPLES]
    clusters = []
    for root in top.tolist():
        members = np.flatnonzero((label == root) & (removed_edges > 0))
        clusters.append((root, members))
    wanted = sorted_unique(np.concatenate([[root, *members[:3]] for root, members in clusters])) if clusters else []
    wanted = np.asarray(wanted, np.int64)
    own, other = firsts["id"].row[wanted], firsts["kept"].row[wanted]
    views = pc.if_else(
        pa.array(own >= 0), edges.strings_at("view", own), edges.strings_at("kept_view", other)
    ).to_pylist()
    view = {int(node): text or "" for node, text in zip(wanted.tolist(), views, strict=True)}
    return {
        str(n): {
            "kept": view[root],
            "removed": "\n".join(view[int(m)] for m in members[:3]),
            "size": str(members.size + 1),
        }
        for n, (root, members) in enumerate(clusters)
    }
