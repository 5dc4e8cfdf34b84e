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
3. `components` (clusters.py), one task over every edge: connected components (union-find,
   numpy, the edges read one spill file at a time); the representative of a cluster is its lowest
   tweet ID. Every other member is removed (``minhash_duplicate``, unless dedup removed it
   already) and mapped to the representative: the removed IDs go to the output parts they live
   in (the writer drops them), the language counts resampling uses are lowered, and the whole
   map is written as ``duplicates/part-00000-of-00001.parquet`` (schemas.corpus.DUPLICATES).

Everything before step 3 scales with the band partitions; step 3 holds a few numbers per
clustered tweet and one row per removed copy, not the edges.
The author cap (prepare --max_per_author) counts tweets before this step.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, read_slices, write_slices
from twhin_data.core.tables import split_table
from twhin_data.core.tags import STATS
from twhin_data.schemas import conform
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


def is_drop(ref: SliceRef) -> bool:
    """Whether an output part's ref lists IDs to drop (step 3) rather than corpus rows."""
    return ref.path.rsplit("/", 1)[-1].startswith(DROP_PREFIX)


def drop_ids(refs: list[SliceRef]) -> pa.Array:
    return read_slices(refs, DROP_LAYOUT).column("tweet_id").combine_chunks()
