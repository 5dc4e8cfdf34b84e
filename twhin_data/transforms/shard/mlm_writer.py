"""Writing one MLM shard file a row group at a time (pure, no Beam; the pool processes import this).

A shard's tokens arrive as pieces: spilled slices (memory-mapped) and the rows of this shard in
each. The writer never builds the sorted shard in memory: it sorts and deduplicates on the two
numeric key columns (key, copy; the tweet IDs of rows sharing a key only: `dedupe_order`), computes the packing of the whole
shard from the token counts alone, then gathers the tokens of one row group at a time, packs them
and streams that row group into the Parquet file (temporary name + rename), hashing the bytes as
they go. The tokens of each row group come from a chunk file that a first pass over the pieces
wrote (`core.spill.Pieces.chunks`): a row group's tweets are spread over every piece, so gathering
them from the mapped pieces would map the whole shard. Memory: the key columns, one piece, one row
group; not a copy of the shard, nor its Parquet bytes, nor its mapped pages. The file is the same,
byte for byte, as packing the sorted shard at once and writing it with `core.files.table_to_parquet_bytes` (`MLM_ROW_GROUP` rows per group):
next-fit packing restarted at a row boundary packs the same rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.parquet import write_parquet_streamed
from twhin_data.core.spill import Piece, Pieces
from twhin_data.schemas.shards import MLM_SHARD
from twhin_data.text.tokenize import pack_boundaries, pack_table
from twhin_data.transforms.shard.tokenize import TOKENS

MLM_ROW_GROUP = 10_000
SORT_KEYS = [("key", "ascending"), ("tweet_id", "ascending"), ("copy", "ascending")]


def dedupe_order(
    key: np.ndarray,
    copy: np.ndarray,
    tweet_ids: Callable[[np.ndarray], pa.Array | pa.ChunkedArray],
    input_ids: Callable[[np.ndarray], list],
) -> tuple[np.ndarray, int]:
    """Rows (of aligned uint64 `key` and int `copy`) in (key, tweet ID, copy) order, ties in row
    order, one per (tweet ID, copy): of rows sharing both, the one with the smallest input_ids
    (then the first). Returns (row indices, rows dropped).

    The key is a hash of the tweet ID, so rows of one tweet ID share a key. The rows are sorted on
    the two numeric columns; only the rows whose key another row shares are looked at again:
    `tweet_ids(rows)` gives their IDs (strings), which order a key's rows when two IDs hashed to
    it and tell the repeats; `input_ids(rows)` gives the token lists of the repeated rows only. No
    string column of the whole shard is read (1M tweet IDs and a sorted copy: ~50 MB).
    """
    order = np.lexsort((copy, key))  # stable: ties in row order
    n = len(order)
    if n < 2:
        return order, 0
    sorted_keys = key[order]
    shared = sorted_keys[1:] == sorted_keys[:-1]
    if not shared.any():
        return order, 0
    member = np.zeros(n, dtype=bool)
    member[1:] = shared
    member[:-1] |= shared
    positions = np.flatnonzero(member)
    run = np.cumsum(np.concatenate(([True], ~shared)))[positions]  # one number per key, ascending
    rows = order[positions]
    runs = pa.table({"run": run, "tweet_id": tweet_ids(rows), "copy": copy[rows]})
    resort = pc.sort_indices(runs, sort_keys=[("run", "ascending"), *SORT_KEYS[1:]]).to_numpy()  # stable
    order[positions] = rows[resort]
    runs = runs.take(pa.array(resort))
    m = len(positions)
    ids, copies, run = runs.column("tweet_id"), runs.column("copy").to_numpy(), run[resort]
    repeat = (run[1:] == run[:-1]) & (copies[1:] == copies[:-1])
    repeat &= pc.equal(ids.slice(1), ids.slice(0, m - 1)).to_numpy(zero_copy_only=False)
    if not repeat.any():
        return order, 0
    same = np.zeros(n - 1, dtype=bool)  # same[i]: rows i and i + 1 of the order share (tweet ID, copy)
    same[positions[:-1][repeat]] = True  # a key's rows are adjacent: positions[j + 1] == positions[j] + 1
    keep = np.ones(n, dtype=bool)
    starts = np.flatnonzero(same & ~np.concatenate(([False], same[:-1])))
    for start in starts.tolist():
        stop = start + 1
        while stop < n and same[stop - 1]:
            stop += 1
        tokens = input_ids(order[start:stop])
        best = min(range(len(tokens)), key=lambda r: (tokens[r], r))
        keep[start:stop] = False
        keep[start + best] = True
    return order[keep], int((~keep).sum())


def mlm_rows(tokens: pa.Table, *, max_length: int, pack: bool) -> pa.Table:
    """Sorted, deduplicated tokens (tweet_id, lang, input_ids) -> MLM_SHARD rows."""
    ids_col = tokens.column("input_ids").combine_chunks()
    values = ids_col.values.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    offsets = ids_col.offsets.to_numpy().astype(np.int64)
    values = values[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    columns = pack_table(
        tokens.column("tweet_id").combine_chunks(), tokens.column("lang").combine_chunks(), values, offsets,
        max_length if pack else 1,
    )  # fmt: skip
    return pa.table(columns, schema=MLM_SHARD)


def write_mlm_file(path: str, pieces: list[Piece], *, max_length: int, pack: bool, tmp: str) -> dict:
    """Sorts, deduplicates, packs and writes one shard (module docstring), through chunk files under
    the folder `tmp`. Returns the file's rows, bytes, sha256 and tokens, and the shard's duplicates,
    tweets and {lang: [tweets, tokens]}."""
    shard = Pieces(pieces, TOKENS)
    keys = shard.columns(["key", "copy"])
    key, copy = keys.column("key").to_numpy(), keys.column("copy").to_numpy()
    del keys
    order, duplicates = dedupe_order(
        key,
        copy,
        lambda rows: shard.columns(["tweet_id"], rows).column(0),
        lambda rows: shard.columns(["input_ids"], rows).column(0).to_pylist(),
    )
    del key, copy  # the order is all the writer needs of them
    lengths = shard.list_lengths("input_ids")[order]
    bounds = pack_boundaries(lengths, max_length if pack else 1)

    starts = bounds[0 : len(bounds) - 1 : MLM_ROW_GROUP]  # where each row group's tweets start in `order`
    langs: list[pa.Array] = []  # the shard's languages in order, kept as the row groups go by

    def row_groups():
        for chunk in shard.chunks(["tweet_id", "lang", "input_ids"], order, starts, tmp):
            langs.append(chunk.column("lang").combine_chunks())
            yield mlm_rows(chunk, max_length=max_length, pack=pack)

    written = write_parquet_streamed(path, MLM_SHARD, row_groups(), row_group_size=MLM_ROW_GROUP)
    return {
        "rows": written["rows"],
        "bytes": written["bytes"],
        "sha256": written["sha256"],
        "tokens": int(lengths.sum()),
        "duplicates": duplicates,
        "tweets": len(order),
        "langs": _lang_counts(pa.chunked_array(langs, pa.string()), lengths),
    }


def _lang_counts(langs: pa.Array, lengths: np.ndarray) -> dict[str, list[int]]:
    """{lang: [tweets, tokens]} of aligned languages and token counts (vectorized group-by)."""
    per_row = pa.table({"lang": langs, "n": pa.array(lengths, pa.int64())})
    grouped = per_row.group_by("lang").aggregate([("n", "count"), ("n", "sum")]).to_pydict()
    rows = zip(grouped["lang"], grouped["n_count"], grouped["n_sum"], strict=True)
    return {lang: [int(count), int(total)] for lang, count, total in sorted(rows)}
