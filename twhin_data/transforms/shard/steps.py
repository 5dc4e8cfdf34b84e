"""Shard's pooled steps (pure, no Beam): tokens go through spill files, only their names through the shuffle.

With ``--workers N`` the main process must do almost nothing per tweet, or it caps the speed-up
(docs/scale-up.md). So, as in prepare, the heavy steps are pure functions run by `PoolMapFn`
processes (inline with one worker or on Dataflow) that hand rows to each other as Arrow IPC
spill files (core/spill.py) under ``DIR/.tmp_shard``:

1. `spill_tokens` (per corpus table): tokenize (`tokenize_table`), write ONE file holding one
   record-batch range per split; emit ``(split, SliceRef)``, dead letters and size stats;
2. `route_slice` (per slice, once the shard plan is known from the summed stats): the shard of
   each row is ``key % n`` (`key`: salted hash of the tweet ID, so membership depends on nothing
   but the data and the seed); emit ``((split, shard), (SliceRef, KeyShare(shard, n)))`` per shard
   the slice has rows of (the writer finds them from the key column again, so no row index goes
   through the shuffle; None: all of them, the case when a split has one shard);
3. `write_mlm_shard` (per shard, after a GroupByKey of the small references): its rows in
   file-name order, sorted by (key, tweet ID), repeated tweet IDs dropped (counted), whole tweets
   packed, written as ``{split}-{i:05d}-of-{n:05d}.parquet`` a row group at a time
   (transforms/shard/mlm_writer.py: memory follows a row group, not the shard).

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
from twhin_data.core.spill import KeyShare, Piece, SliceRef, read_slices, write_slices
from twhin_data.core.tables import sorted_unique
from twhin_data.transforms.shard.mlm_writer import write_mlm_file
from twhin_data.transforms.shard.tokenize import TOKENS, tokenize_table

SPLITS = ("train", "validation")
#: Estimated bytes of one row beyond its int32 ids (IDs, language, list offsets), uncompressed.
ROW_OVERHEAD_BYTES = 48


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
    """Step 2 (pool function): ``(split, ref, n)`` -> ``((split, shard), (ref, KeyShare(shard, n)))``
    per shard that holds rows of the slice (``(ref, None)``: all of them, when n is 1)."""
    split, ref, n = item
    if n == 1:
        return [((split, 0), (ref, None))]
    shards = sorted_unique(read_slices([ref], TOKENS).column("key").to_numpy() % np.uint64(n))
    return [((split, int(shard)), (ref, KeyShare(int(shard), n))) for shard in shards.tolist()]


def write_mlm_shard(
    item: tuple[tuple[str, int, int], Iterable[Piece]], *, path: str, max_length: int, pack: bool, tmp: str
) -> list[dict]:
    """Step 3 (pool function): ``((split, index, count), pieces)`` -> the shard file; returns its info."""
    (split, index, count), pieces = item
    name = f"{split}-{index:05d}-of-{count:05d}.parquet"
    chunks = files.join(tmp, "chunks", f"mlm-{split}-{index:05d}")
    written = write_mlm_file(files.join(path, name), list(pieces), max_length=max_length, pack=pack, tmp=chunks)
    langs = written.pop("langs")
    return [dict(written, dataset="mlm", split=split, shard=index, num_shards=count, file=f"mlm/{name}", langs=langs)]
