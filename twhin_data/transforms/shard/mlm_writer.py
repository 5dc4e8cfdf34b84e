"""Writing one MLM shard file a row group at a time (pure, no Beam; the pool processes import this).

A shard's tokens arrive as pieces: spilled slices (memory-mapped) and the row indices of this
shard in each. The writer never builds the sorted shard in memory: it sorts and deduplicates the
small key columns only (key, tweet ID, copy: `dedupe_order`), computes the packing of the whole
shard from the token counts alone, then gathers the tokens of one row group at a time, packs them
and streams that row group into the Parquet file (temporary name + rename), hashing the bytes as
they go. Memory: the key columns, one row group, and the pieces' mapped pages; not a copy of the
shard, nor its Parquet bytes. The file is the same, byte for byte, as packing the sorted shard at
once and writing it with `core.files.table_to_parquet_bytes` (`MLM_ROW_GROUP` rows per group):
next-fit packing restarted at a row boundary packs the same rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from twhin_data.core import files
from twhin_data.core.spill import SliceRef, read_slices
from twhin_data.schemas.shards import MLM_SHARD
from twhin_data.text.tokenize import pack_boundaries, pack_table
from twhin_data.transforms.shard.tokenize import TOKENS

MLM_ROW_GROUP = 10_000
SORT_KEYS = [("key", "ascending"), ("tweet_id", "ascending"), ("copy", "ascending")]
#: A shard's rows from one slice: the slice and its row indices (None: every row).
Piece = tuple[SliceRef, "np.ndarray | None"]


def dedupe_order(keys: pa.Table, input_ids: Callable[[np.ndarray], list]) -> tuple[np.ndarray, int]:
    """Rows (of `keys`: key, tweet_id, copy) in (key, tweet_id, copy) order, one per (tweet ID, copy):
    of rows sharing both, the one with the smallest input_ids (then the first). `input_ids(rows)`
    returns those rows' ids as lists; it is called for runs of repeated IDs only.
    Returns (row indices, rows dropped)."""
    order = pc.sort_indices(keys, sort_keys=SORT_KEYS).to_numpy()
    if len(order) < 2:
        return order, 0
    # Compared as Arrow arrays: no Python string per tweet (1M IDs would be ~70 MB of objects).
    ids = keys.column("tweet_id").take(pa.array(order))
    copy = keys.column("copy").take(pa.array(order))
    n = len(order)
    same = pc.and_(
        pc.equal(ids.slice(1), ids.slice(0, n - 1)), pc.equal(copy.slice(1), copy.slice(0, n - 1))
    ).to_numpy(zero_copy_only=False)
    if not same.any():
        return order, 0
    keep = np.ones(n, dtype=bool)
    starts = np.flatnonzero(same & ~np.concatenate(([False], same[:-1])))
    for start in starts.tolist():
        stop = start + 1
        while stop < n and same[stop - 1]:
            stop += 1
        rows = input_ids(order[start:stop])
        best = min(range(len(rows)), key=lambda r: (rows[r], r))
        keep[start:stop] = False
        keep[start + best] = True
    return order[keep], int((~keep).sum())


class _Pieces:
    """A shard's pieces as one virtual table: global row g = the g-th selected row, pieces in
    (file name, batch) order, rows in their order inside each piece."""

    def __init__(self, pieces: list[Piece]):
        self.tables, piece_of, row_of, lengths = [], [], [], []
        for i, (ref, rows) in enumerate(sorted(pieces, key=lambda piece: piece[0])):
            table = read_slices([ref], TOKENS)
            rows = np.arange(table.num_rows, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
            self.tables.append(table)
            piece_of.append(np.full(len(rows), i, np.int32))
            row_of.append(rows)
            # Token counts from the list offsets alone (no token is read).
            lengths.append(pc.list_value_length(table.column("input_ids")).to_numpy(zero_copy_only=False)[rows])
        self.piece_of = np.concatenate(piece_of) if piece_of else np.zeros(0, np.int32)
        self.row_of = np.concatenate(row_of) if row_of else np.zeros(0, np.int64)
        self.lengths = np.concatenate(lengths).astype(np.int64) if lengths else np.zeros(0, np.int64)

    def columns(self, names: list[str], rows: np.ndarray | None = None) -> pa.Table:
        """Columns `names` of global `rows` (all when None), in that order."""
        if rows is None:
            rows = np.arange(len(self.row_of))
        pieces = self.piece_of[rows]
        by_piece = np.argsort(pieces, kind="stable")
        parts = []
        for i in np.unique(pieces).tolist():
            wanted = self.row_of[rows[by_piece][pieces[by_piece] == i]]
            parts.append(self.tables[i].select(names).take(pa.array(wanted)))
        if not parts:
            return TOKENS.empty_table().select(names)
        gathered = pa.concat_tables(parts)
        restore = np.empty(len(rows), np.int64)
        restore[by_piece] = np.arange(len(rows))
        return gathered.take(pa.array(restore)).combine_chunks()


class _HashingSink:
    """A write handle that also hashes and counts what goes through it."""

    def __init__(self, handle):
        self._handle, self.sha256, self.size, self.closed = handle, hashlib.sha256(), 0, False

    def write(self, data) -> int:
        data = bytes(data)
        self.sha256.update(data)
        self.size += len(data)
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self.closed = True  # the atomic writer closes the real handle


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


def write_mlm_file(path: str, pieces: list[Piece], *, max_length: int, pack: bool) -> dict:
    """Sorts, deduplicates, packs and writes one shard (module docstring). Returns the file's
    rows, bytes, sha256 and tokens, and the shard's duplicates, tweets and {lang: [tweets, tokens]}."""
    shard = _Pieces(pieces)
    keys = shard.columns(["key", "tweet_id", "copy"])
    order, duplicates = dedupe_order(keys, lambda rows: shard.columns(["input_ids"], rows).column(0).to_pylist())
    lengths = shard.lengths[order]
    bounds = pack_boundaries(lengths, max_length if pack else 1)
    rows = 0
    with files.open_write_atomic(path) as handle:
        sink = _HashingSink(handle)
        with pq.ParquetWriter(
            sink, MLM_SHARD, compression="zstd", use_dictionary=True, write_statistics=True
        ) as writer:
            for first in range(0, len(bounds) - 1, MLM_ROW_GROUP):
                last = min(first + MLM_ROW_GROUP, len(bounds) - 1)
                chunk = order[bounds[first] : bounds[last]]
                table = mlm_rows(shard.columns(["tweet_id", "lang", "input_ids"], chunk), max_length=max_length, pack=pack)
                writer.write_table(table, row_group_size=MLM_ROW_GROUP)
                rows += table.num_rows
    return {
        "rows": rows,
        "bytes": sink.size,
        "sha256": sink.sha256.hexdigest(),
        "tokens": int(lengths.sum()),
        "duplicates": duplicates,
        "tweets": len(order),
        "langs": _lang_counts(shard.columns(["lang"], order).column(0), lengths),
    }


def _lang_counts(langs: pa.Array, lengths: np.ndarray) -> dict[str, list[int]]:
    """{lang: [tweets, tokens]} of aligned languages and token counts (vectorized group-by)."""
    per_row = pa.table({"lang": langs, "n": pa.array(lengths, pa.int64())})
    grouped = per_row.group_by("lang").aggregate([("n", "count"), ("n", "sum")]).to_pydict()
    rows = zip(grouped["lang"], grouped["n_count"], grouped["n_sum"], strict=True)
    return {lang: [int(count), int(total)] for lang, count, total in sorted(rows)}
