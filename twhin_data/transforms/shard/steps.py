"""Shard's pooled steps (pure, no Beam): tokens go through spill files, only their names through the shuffle.

With ``--workers N`` the main process must do almost nothing per tweet, or it caps the speed-up
(docs/scale-up.md). So, as in prepare, the heavy steps are pure functions run by `PoolMapFn`
processes (inline with one worker or on Dataflow) that hand rows to each other as Arrow IPC
spill files (core/spill.py) under ``DIR/.tmp_shard``:

1. `spill_tokens` (per corpus table): tokenize (`tokenize_table`), write ONE file holding one
   record-batch range per split; emit ``(split, SliceRef)``, dead letters and size stats;
2. `route_slice` (per slice, once the shard plan is known from the summed stats): the shard of
   each row is ``key % n`` (`key`: salted hash of the tweet ID, so membership depends on nothing
   but the data and the seed); emit ``((split, shard), (SliceRef, rows))``, `rows` being the
   row indices in that shard (None: all of them, the case when a split has one shard);
3. `write_mlm_shard` (per shard, after a GroupByKey of the small references): read its rows in
   file-name order, sort by (key, tweet ID), drop repeated tweet IDs (counted), pack whole tweets
   and write ``{split}-{i:05d}-of-{n:05d}.parquet`` (temporary name + rename).

File names derive from the corpus file, row group and batch, and every read sorts the slices by
name, so the bytes written depend neither on the number of workers nor on arrival order.
A shard index that got no rows is never written: the non-empty shards of a split are numbered
0..m-1 "-of-m" (`renumber`). `transforms/shard/transform.py` (ShardCorpus) wires the steps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, read_slices, write_slices
from twhin_data.core.tables import groups
from twhin_data.schemas.shards import MLM_SHARD
from twhin_data.text.tokenize import pack_table
from twhin_data.transforms.shard.tokenize import TOKENS, tokenize_table

SPLITS = ("train", "validation")
#: Estimated bytes of one row beyond its int32 ids (IDs, language, list offsets), uncompressed.
ROW_OVERHEAD_BYTES = 48
MLM_ROW_GROUP = 10_000
#: A shard's rows from one slice: the slice and its row indices (None: every row).
Piece = tuple[SliceRef, "np.ndarray | None"]


def plan_shards(totals: dict, *, prefix: str, num_shards: int | None, target_bytes: int) -> dict[str, int]:
    """Shard count per split from the size totals ``{prefix}rows_{split}``/``{prefix}tokens_{split}``.

    With `num_shards`, train gets exactly that many (fewer only when it has fewer rows) and
    validation the same count scaled by its share of tokens (at least 1). Otherwise each split
    gets ceil(estimated uncompressed bytes / target_bytes) shards.
    """
    plan: dict[str, int] = {}
    marker = f"{prefix}rows_"
    labels = sorted(k[len(marker) :] for k in totals if k.startswith(marker))
    for split in labels:
        rows = totals.get(f"{prefix}rows_{split}", 0)
        tokens = totals.get(f"{prefix}tokens_{split}", 0)
        if rows == 0:
            continue
        # A split label is train/validation, or stageN_train/stageN_validation (two-stage shards).
        train = split[: -len("validation")] + "train" if split.endswith("validation") else split
        train_tokens = max(1, totals.get(f"{prefix}tokens_{train}", 0))
        if num_shards and split.endswith("train"):
            n = num_shards
        elif num_shards:
            n = math.ceil(num_shards * tokens / train_tokens)
        else:
            n = math.ceil((4 * tokens + ROW_OVERHEAD_BYTES * rows) / target_bytes)
        plan[split] = int(max(1, min(n, rows)))
    return plan


def renumber(key: tuple[str, int], nonempty: Iterable[tuple[str, int]]) -> tuple[int, int]:
    """(index, count) of shard `key` among the non-empty shards of its split."""
    indices = sorted(i for split, i in nonempty if split == key[0])
    return indices.index(key[1]), len(indices)


def _dedupe_sorted(table: pa.Table) -> tuple[pa.Table, int]:
    """Sorts a tokens table by (key, tweet_id, copy) and keeps one row per (tweet ID, copy)
    (smallest ids): a tweet found in two corpus files is written once per copy."""
    table = table.sort_by([("key", "ascending"), ("tweet_id", "ascending"), ("copy", "ascending")])
    ids = table.column("tweet_id").to_numpy(zero_copy_only=False)
    copy = table.column("copy").to_numpy(zero_copy_only=False)
    if len(ids) < 2 or not (same := (ids[1:] == ids[:-1]) & (copy[1:] == copy[:-1])).any():
        return table, 0
    keep = np.ones(len(ids), dtype=bool)
    # Only the rows of runs of equal IDs are compared (as Python lists), never the whole table.
    starts = np.flatnonzero(same & ~np.concatenate(([False], same[:-1])))
    for start in starts.tolist():
        stop = start + 1
        while stop < len(ids) and same[stop - 1]:
            stop += 1
        rows = table.column("input_ids").slice(start, stop - start).to_pylist()
        best = min(range(len(rows)), key=lambda r: (rows[r], r))
        keep[start:stop] = False
        keep[start + best] = True
    return table.filter(pa.array(keep)), int((~keep).sum())


def mlm_shard_table(tokens: pa.Table, *, max_length: int, pack: bool) -> pa.Table:
    """A sorted, deduplicated tokens table -> MLM_SHARD rows (packed or one tweet per row)."""
    ids_col = tokens.column("input_ids").combine_chunks()
    values = ids_col.values.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    offsets = ids_col.offsets.to_numpy().astype(np.int64)
    values = values[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    tweet_ids = tokens.column("tweet_id").combine_chunks()
    langs = tokens.column("lang").combine_chunks()
    columns = pack_table(tweet_ids, langs, values, offsets, max_length if pack else 1)
    return pa.table(columns, schema=MLM_SHARD)


def mlm_shard(tables: list[pa.Table], *, max_length: int, pack: bool) -> tuple[pa.Table, dict]:
    """One shard's token tables -> (its MLM_SHARD table, {duplicates, tweets, langs}).

    Sorts by (key, tweet_id), keeps one row per tweet ID and packs: the whole shard writer but
    the Parquet write (`MLM_ROW_GROUP` rows per row group) and the file name.
    """
    tokens, duplicates = _dedupe_sorted(pa.concat_tables(tables))
    table = mlm_shard_table(tokens, max_length=max_length, pack=pack)
    return table, {"duplicates": duplicates, "tweets": tokens.num_rows, "langs": _lang_counts(tokens)}


def _lang_counts(tokens: pa.Table) -> dict[str, list[int]]:
    """{lang: [tweets, tokens]} of a tokens table (vectorized group-by)."""
    lengths = pc.list_value_length(tokens.column("input_ids"))
    grouped = (
        pa.table({"lang": tokens.column("lang"), "n": lengths})
        .group_by("lang")
        .aggregate([("n", "count"), ("n", "sum")])
        .to_pydict()
    )
    rows = zip(grouped["lang"], grouped["n_count"], grouped["n_sum"], strict=True)
    return {lang: [int(count), int(total)] for lang, count, total in sorted(rows)}


def spill_tokens(
    item: tuple[str, pa.Table],
    *,
    tmp: str,
    tokenizer: str,
    max_length: int,
    valid_fraction: float,
    seed: int,
    engaged: str | None = None,
    stages: tuple[int, ...] = (1, 2),
) -> list:
    """Step 1 (pool function): tokenize one named corpus table, spill its rows by split.

    Returns ``(split, SliceRef)`` per non-empty split, then `tokenize_table`'s dead letters and stats.
    """
    name, table = item
    outputs, tokens = [], None
    for out in tokenize_table(
        table,
        tokenizer=tokenizer,
        max_length=max_length,
        valid_fraction=valid_fraction,
        seed=seed,
        engaged=engaged,
        stages=stages,
    ):
        if isinstance(out, Tagged):
            outputs.append(out)
        else:
            tokens = out
    if tokens is not None and tokens.num_rows:
        split = tokens.column("split")
        slices = [(s, tokens.filter(pc.equal(split, s))) for s in sorted(pc.unique(split).to_pylist())]
        return write_slices(files.join(tmp, "tokens", f"{name}.arrow"), TOKENS, slices) + outputs
    return outputs


def route_slice(item: tuple[str, SliceRef, int]) -> list[tuple[tuple[str, int], Piece]]:
    """Step 2 (pool function): ``(split, ref, n)`` -> ``((split, shard), (ref, rows))`` per shard hit."""
    split, ref, n = item
    if n == 1:
        return [((split, 0), (ref, None))]
    shards = (read_slices([ref], TOKENS).column("key").to_numpy() % np.uint64(n)).astype(np.int64)
    return [((split, shard), (ref, rows.astype(np.int32))) for shard, rows in groups(shards)]


def first_copies(ref: SliceRef) -> pa.Table:
    """A spilled tokens slice without resampling's repeated copies (pairs need each tweet once)."""
    table = read_slices([ref], TOKENS)
    return table.filter(pc.equal(table.column("copy"), 0))


def read_pieces(pieces: Iterable[Piece]) -> list[pa.Table]:
    """The tokens of `pieces`, one table per piece, in (file name, batch) order."""
    tables = []
    for ref, rows in sorted(pieces, key=lambda piece: piece[0]):
        table = read_slices([ref], TOKENS)
        tables.append(table if rows is None else table.take(pa.array(rows)))
    return tables


def write_mlm_shard(
    item: tuple[tuple[str, int, int], Iterable[Piece]], *, path: str, max_length: int, pack: bool
) -> list[dict]:
    """Step 3 (pool function): ``((split, index, count), pieces)`` -> the shard file; returns its info."""
    (split, index, count), pieces = item
    table, info = mlm_shard(read_pieces(pieces), max_length=max_length, pack=pack)
    name = f"{split}-{index:05d}-of-{count:05d}.parquet"
    written = files.write_parquet_atomic(files.join(path, name), table, row_group_size=MLM_ROW_GROUP)
    tokens = int(pc.sum(pc.list_value_length(table.column("input_ids"))).as_py() or 0)
    info.update(
        dataset="mlm",
        split=split,
        shard=index,
        num_shards=count,
        tokens=tokens,
        file=f"mlm/{name}",
        rows=written["rows"],
        bytes=written["bytes"],
        sha256=written["sha256"],
    )
    return [info]
