"""Near-duplicate removal by MinHash-LSH, and the map from every removed tweet to the kept one.

Three pooled steps (pure, no Beam; transforms/prepare/transform.py wires them between prepare's
dedup and write steps; only file references move through the shuffles):

1. `spill_bands`, inside each dedup bucket's task (steps.dedup_bucket): the MinHash signature of
   every kept tweet's match view (text/minhash.py), cut into LSH bands; one row per (tweet, band)
   goes to the band partition ``band key % partitions``, with the view. The bucket's exact and
   view duplicates (dedup.dedup_with_map) are spilled as edges "removed -> kept".
2. `verify_partition`, per band partition (after a GroupByKey on the partition): rows sharing a
   band key are candidates (every pair of a run of up to `ALL_PAIRS_RUN` rows, else each row with
   the run's lowest ID and with its predecessor in ID order); each candidate pair is verified by the exact
   Jaccard of its shingle sets, and pairs at or above the threshold become edges.
3. `components`, one task over every edge: connected components (label propagation with pointer
   jumping, numpy); the representative of a cluster is its lowest tweet ID. Every other member
   is removed (``minhash_duplicate``, unless dedup removed it already) and mapped to the
   representative: the removed IDs go to the output parts they live in (the writer drops them),
   the language counts resampling uses are lowered, and the whole map is written as
   ``duplicates/part-00000-of-00001.parquet`` (schemas.corpus.DUPLICATES).

The edges are the duplicates only (16 bytes a tweet removed), so the one components task holds
a few GB at a billion removed tweets; everything before it scales with the band partitions.
The author cap (prepare --max_per_author) counts tweets before this step.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.core.hashing import shard_of
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, read_slices, write_slices
from twhin_data.core.tables import split_table
from twhin_data.core.tags import COUNTS, STATS
from twhin_data.schemas import conform
from twhin_data.schemas.corpus import DUPLICATES
from twhin_data.text.langid import UNKNOWN
from twhin_data.text.minhash import LshParams, band_keys, jaccard_pairs, signatures

#: Side output of dedup_bucket: ``(band partition, SliceRef)`` of band rows.
BANDS = "near_bands"
#: Side output of dedup_bucket: ``(0, SliceRef)`` of the bucket's exact / view duplicates.
EDGES = "near_edges"
#: Runs of equal band keys up to this size are verified pair by pair; longer runs (templated
#: spam: thousands of tweets can share a band) as a star around the lowest ID plus a chain in ID
#: order, 2(n-1) pairs instead of n(n-1)/2. The star pairs recur in every band a cluster shares,
#: so each is verified once per band partition, not once per band.
ALL_PAIRS_RUN = 4
#: Band partitions per dedup bucket: one partition holds about this many bands' worth of a
#: bucket's tweets (~25k x 4 = 100k band rows), so a verify task's memory (the rows, their
#: shingle keys) stays bounded as the input grows (one partition per bucket held ~20 bands'
#: worth: +720 MB for one verify task on 100k synthetic tweets, +140 MB with this).
BANDS_PER_PARTITION = 4
#: Clusters shown in the report.
EXAMPLES = 5
MINHASH = "minhash_duplicate"
MAP_FILE = "part-00000-of-00001.parquet"

BAND_LAYOUT = pa.schema(
    [("band", pa.uint64()), ("id", pa.uint64()), ("view", pa.string()), ("lang", pa.string())]
)
#: dedup.dedup_with_map's removed rows: an edge "id -> kept".
REMOVED = pa.schema(
    [("id", pa.uint64()), ("kept", pa.uint64()), ("reason", pa.string()), ("lang", pa.string())]
)
EDGE_LAYOUT = pa.schema(
    [
        *REMOVED,
        ("kept_lang", pa.string()),
        ("jaccard", pa.float32()),
        ("view", pa.string()),
        ("kept_view", pa.string()),
    ]
)
#: Output-part side of the removals: the IDs the writer drops (transforms/prepare/steps.write_part).
DROP_LAYOUT = pa.schema([("tweet_id", pa.string())])
DROP_PREFIX = "drop-"


def spill_bands(
    kept: pa.Table,
    views: list[str],
    removed: pa.Table,
    *,
    params: LshParams | None,
    partitions: int,
    tmp: str,
    bucket: int,
) -> list:
    """Step 1: band rows of one dedup bucket's kept tweets by partition, and its duplicates as edges."""
    outputs: list = []
    if removed.num_rows:
        path = files.join(tmp, "near", f"dups-{bucket:05d}.arrow")
        edges = conform(removed, EDGE_LAYOUT)
        outputs.extend(Tagged(EDGES, ref) for ref in write_slices(path, EDGE_LAYOUT, [(0, edges)]))
    if params is None or kept.num_rows == 0:
        return outputs
    sig, has = signatures(views, params)
    rows = np.flatnonzero(has)
    if rows.size == 0:
        return outputs
    keys = band_keys(sig[rows], params).reshape(-1)
    per = np.repeat(rows, params.bands)
    ids = pc.cast(kept.column("tweet_id"), pa.uint64()).to_numpy()
    table = pa.table(
        {
            "band": pa.array(keys, pa.uint64()),
            "id": pa.array(ids[per], pa.uint64()),
            "view": pa.array(views, pa.string()).take(pa.array(per)),
            "lang": kept.column("lang").take(pa.array(per)),
        },
        schema=BAND_LAYOUT,
    )
    parts = (keys % np.uint64(partitions)).astype(np.int64)
    path = files.join(tmp, "near", f"bands-{bucket:05d}.arrow")
    outputs.extend(Tagged(BANDS, ref) for ref in write_slices(path, BAND_LAYOUT, split_table(table, parts)))
    return outputs


def band_partitions(buckets: int, params: LshParams | None) -> int:
    """How many band partitions step 2 uses for `buckets` dedup buckets (see BANDS_PER_PARTITION)."""
    bands = params.bands if params is not None else 1
    return max(1, buckets) * max(1, -(-bands // BANDS_PER_PARTITION))


def candidate_pairs(bands: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs ``(i, j)`` of rows sharing a band key, with ``ids[i] < ids[j]`` (rows sorted by
    (band, id)); each pair once."""
    n = bands.size
    if n < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], bands[1:] != bands[:-1]]))
    sizes = np.diff(np.append(starts, n))
    left: list[np.ndarray] = []
    right: list[np.ndarray] = []
    for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
        run = np.arange(start, start + size)
        if size <= ALL_PAIRS_RUN:
            i, j = np.triu_indices(size, 1)
            left.append(run[i])
            right.append(run[j])
        else:
            left.extend([np.full(size - 1, start), run[1:-1]])
            right.extend([run[1:], run[2:]])
    if not left:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    a, b = np.concatenate(left), np.concatenate(right)
    keep = ids[a] != ids[b]  # one tweet twice in a run (same band from two buckets) is no pair
    a, b = a[keep], b[keep]
    pair = np.stack([ids[a], ids[b]])
    _, first = np.unique(pair, axis=1, return_index=True)
    first.sort()
    return a[first], b[first]


def verify_partition(item: tuple[int, Iterable[SliceRef]], *, params: LshParams, tmp: str) -> list:
    """Step 2: candidate pairs of one band partition, verified by exact Jaccard, as edges."""
    partition, refs = item
    table = read_slices(sorted(refs), BAND_LAYOUT)
    table = table.sort_by([("band", "ascending"), ("id", "ascending")])
    ids = table.column("id").to_numpy()
    a, b = candidate_pairs(table.column("band").to_numpy(), ids)
    views = table.column("view").to_pylist()
    score = jaccard_pairs(views, a, b, params.shingle)
    ok = np.flatnonzero(score >= params.threshold)
    outputs: list = [Tagged(STATS, {"near_dedup": {"candidate_pairs": int(a.size), "verified_pairs": int(ok.size)}})]
    if ok.size == 0:
        return outputs
    langs = table.column("lang")
    edges = pa.table(
        {
            "id": pa.array(ids[b[ok]], pa.uint64()),
            "kept": pa.array(ids[a[ok]], pa.uint64()),
            "reason": pa.array([MINHASH] * ok.size, pa.string()),
            "lang": langs.take(pa.array(b[ok])),
            "kept_lang": langs.take(pa.array(a[ok])),
            "jaccard": pa.array(score[ok], pa.float32()),
            "view": pa.array([views[i] for i in b[ok].tolist()], pa.string()),
            "kept_view": pa.array([views[i] for i in a[ok].tolist()], pa.string()),
        },
        schema=EDGE_LAYOUT,
    )
    path = files.join(tmp, "near", f"edges-{partition:05d}.arrow")
    outputs.extend(write_slices(path, EDGE_LAYOUT, [(0, edges)]))
    return outputs


def connected_components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (sorted uint64) and, per node, the index of the lowest node of its component."""
    nodes, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    u, v = inverse[: a.size], inverse[a.size :]
    label = np.arange(nodes.size)
    while True:
        low = np.minimum(label[u], label[v])
        new = label.copy()
        np.minimum.at(new, u, low)
        np.minimum.at(new, v, low)
        while True:  # pointer jumping: follow labels to their root
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            return nodes, label
        label = new


def components(
    item: tuple[int, Iterable[SliceRef]], *, num_parts: int, part_salt: str, tmp: str, map_dir: str
) -> list:
    """Step 3: clusters of every edge; drops for the writer, lowered language counts, the map.

    Clusters are the connected components of the verified MinHash edges, which join kept tweets
    only; exact and view copies then map to the representative of the tweet they were removed
    for. They never join clusters themselves: one tweet ID hydrated twice with two different
    texts is a copy in two dedup buckets, and two distinct texts must not merge through it."""
    _, refs = item
    edges = read_slices(sorted(refs), EDGE_LAYOUT)
    near = pc.equal(edges.column("reason"), MINHASH).to_numpy(zero_copy_only=False)
    ids, kept = edges.column("id").to_numpy(), edges.column("kept").to_numpy()
    nodes, label = connected_components(ids[near], kept[near])
    moved = np.flatnonzero(label != np.arange(nodes.size))  # new removals: MinHash duplicates
    moved_langs = _node_langs(edges, near, nodes[moved])
    copies = ~near
    copy_rep = kept[copies].copy()  # a copy's kept tweet, or that tweet's cluster representative
    if nodes.size:
        at = np.minimum(np.searchsorted(nodes, copy_rep), nodes.size - 1)
        hit = nodes[at] == copy_rep
        copy_rep[hit] = nodes[label[at[hit]]]
    table = pa.table(
        {
            "id": pa.array(np.concatenate([nodes[moved], ids[copies]]), pa.uint64()),
            "kept": pa.array(np.concatenate([nodes[label[moved]], copy_rep]), pa.uint64()),
            "reason": pa.concat_arrays(
                [pa.array([MINHASH] * moved.size, pa.string()), edges.column("reason").filter(pa.array(copies)).combine_chunks()]
            ),
            "lang": pa.concat_arrays(
                [moved_langs, edges.column("lang").filter(pa.array(copies)).combine_chunks()]
            ),
        }
    )
    # One row per removed tweet (a tweet copied in two buckets: its lowest representative). No
    # row for a tweet that stays: the same ID twice in one bucket, or kept in another bucket
    # (one ID hydrated with two texts) without a MinHash removal.
    stays = np.setdiff1d(kept[copies], nodes[moved])
    gone = pc.invert(pc.is_in(table.column("id"), value_set=pa.array(stays, pa.uint64())))
    table = table.filter(pc.and_(pc.not_equal(table.column("id"), table.column("kept")), gone))
    table = table.sort_by([("id", "ascending"), ("kept", "ascending"), ("reason", "ascending")])
    first = np.ones(table.num_rows, bool)
    if table.num_rows > 1:
        sorted_ids = table.column("id").to_numpy()
        first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    table = table.filter(pa.array(first))
    strings = pa.table(
        {
            "tweet_id": pc.cast(table.column("id"), pa.string()),
            "kept_tweet_id": pc.cast(table.column("kept"), pa.string()),
            "reason": table.column("reason"),
            "lang": table.column("lang"),
        }
    )
    files.write_parquet_atomic(files.join(map_dir, MAP_FILE), conform(strings, DUPLICATES))
    new = strings.filter(pc.equal(strings.column("reason"), MINHASH))
    counts: dict[str, int] = {}
    for value in new.column("lang").to_pylist():
        key = value or UNKNOWN
        counts[key] = counts.get(key, 0) - 1
    stats = {"removed": new.num_rows, "clusters": _minhash_clusters(edges, nodes, label)}
    outputs: list = [
        Tagged(COUNTS, counts),
        Tagged(STATS, {"near_dedup": stats, "near_examples": _examples(edges, nodes, label)}),
    ]
    if new.num_rows:
        drops = conform(new, DROP_LAYOUT)
        parts = shard_of(drops.column("tweet_id"), num_parts, part_salt)
        path = files.join(tmp, "near", f"{DROP_PREFIX}all.arrow")
        outputs.extend(write_slices(path, DROP_LAYOUT, split_table(drops, parts)))
    return outputs


def _node_langs(edges: pa.Table, near: np.ndarray, wanted: np.ndarray) -> pa.Array:
    """The language of each `wanted` tweet (sorted IDs) from the MinHash edges it is in: its own
    side's language as a removed tweet first, else as a kept one (Arrow and numpy, no per-row
    Python objects: this one task sees every edge)."""
    rows = np.flatnonzero(near)
    side = np.concatenate([edges.column("id").to_numpy()[rows], edges.column("kept").to_numpy()[rows]])
    langs = pa.concat_arrays(
        [edges.column(c).take(pa.array(rows)).combine_chunks() for c in ("lang", "kept_lang")]
    )
    known = pc.is_valid(langs).to_numpy(zero_copy_only=False)
    side, at = side[known], np.flatnonzero(known)
    if side.size == 0 or wanted.size == 0:
        return pa.nulls(wanted.size, pa.string())
    order = np.argsort(side, kind="stable")  # stable: a removed side's language comes first
    side, at = side[order], at[order]
    pos = np.minimum(np.searchsorted(side, wanted), side.size - 1)
    hit = side[pos] == wanted
    out = langs.take(pa.array(np.where(hit, at[pos], 0)))
    return pc.if_else(pa.array(hit), out, pa.nulls(wanted.size, pa.string()))


def _minhash_clusters(edges: pa.Table, nodes: np.ndarray, label: np.ndarray) -> int:
    minhash = pc.equal(edges.column("reason"), MINHASH).to_numpy(zero_copy_only=False)
    if not minhash.any():
        return 0
    at = np.searchsorted(nodes, edges.column("kept").to_numpy()[minhash])
    return int(np.unique(label[at]).size)


def _examples(edges: pa.Table, nodes: np.ndarray, label: np.ndarray) -> dict:
    """The largest MinHash clusters: the kept view and up to three removed views each."""
    rows = np.flatnonzero(pc.equal(edges.column("reason"), MINHASH).to_numpy(zero_copy_only=False))
    if rows.size == 0:
        return {}
    ids, kept = edges.column("id").to_numpy()[rows], edges.column("kept").to_numpy()[rows]
    root = label[np.searchsorted(nodes, ids)]
    size = np.bincount(root, minlength=nodes.size)
    top = np.unique(root)
    top = top[np.lexsort((nodes[top], -size[top]))][:EXAMPLES]
    out = {}
    for n, r in enumerate(top.tolist()):
        in_cluster = root == r
        members = np.unique(ids[in_cluster])
        rep = nodes[r]
        out[str(n)] = {
            "kept": _view_of(edges, rows, ids, kept, rep),
            "removed": "\n".join(_view_of(edges, rows, ids, kept, m) for m in members[:3]),
            "size": str(members.size + 1),
        }
    return out


def _view_of(edges: pa.Table, rows: np.ndarray, ids: np.ndarray, kept: np.ndarray, tweet) -> str:
    """The match view of one tweet from the first MinHash edge it is in (one row read)."""
    for side, column in ((ids, "view"), (kept, "kept_view")):
        hit = np.flatnonzero(side == tweet)
        if hit.size:
            return edges.column(column)[int(rows[hit[0]])].as_py() or ""
    return ""


def is_drop(ref: SliceRef) -> bool:
    """Whether an output part's ref lists IDs to drop (step 3) rather than corpus rows."""
    return ref.path.rsplit("/", 1)[-1].startswith(DROP_PREFIX)


def drop_ids(refs: list[SliceRef]) -> pa.Array:
    return read_slices(refs, DROP_LAYOUT).column("tweet_id").combine_chunks()
