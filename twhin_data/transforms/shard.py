"""Deterministic shard writer (the TFDS pattern) for tokenized MLM tables and pair rows.

1. A size side input (rows and tokens per split) fixes the shard count of each split
   (`plan_shards`): fixed by --num_shards, or from --target_shard_mb, never above the row count.
2. Each row goes to shard ``key % n`` of its split, `key` being a salted stable hash of its
   tweet ID (pair: of both IDs): membership depends on nothing but the data and the seed.
3. One GroupByKey gathers a shard; inside it rows are sorted by (key, tweet ID), duplicates of a
   tweet ID are dropped (counted), MLM tweets are packed, and the file is written through a
   temporary name and a rename (Beam FileSystems: local or gs://).
4. A shard index that got no rows is never written: the non-empty shards of a split are
   renumbered 0..m-1 "-of-m" from a side input of the non-empty keys, so there are no holes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.core.hashing import stable_hash64
from twhin_data.schemas import to_table
from twhin_data.schemas.shards import MLM_SHARD, PAIR_SHARD
from twhin_data.text.tokenize import pack_table

SPLITS = ("train", "validation")
#: Estimated bytes of one row beyond its int32 ids (IDs, language, list offsets), uncompressed.
ROW_OVERHEAD_BYTES = 48
MLM_ROW_GROUP = 10_000


def plan_shards(totals: dict, *, prefix: str, num_shards: int | None, target_bytes: int) -> dict[str, int]:
    """Shard count per split from the size totals ``{prefix}rows_{split}``/``{prefix}tokens_{split}``.

    With `num_shards`, train gets exactly that many (fewer only when it has fewer rows) and
    validation the same count scaled by its share of tokens (at least 1). Otherwise each split
    gets ceil(estimated uncompressed bytes / target_bytes) shards.
    """
    plan: dict[str, int] = {}
    train_tokens = max(1, totals.get(f"{prefix}tokens_train", 0))
    for split in SPLITS:
        rows = totals.get(f"{prefix}rows_{split}", 0)
        tokens = totals.get(f"{prefix}tokens_{split}", 0)
        if rows == 0:
            continue
        if num_shards and split == "train":
            n = num_shards
        elif num_shards:
            n = math.ceil(num_shards * tokens / train_tokens)
        else:
            n = math.ceil((4 * tokens + ROW_OVERHEAD_BYTES * rows) / target_bytes)
        plan[split] = int(max(1, min(n, rows)))
    return plan


def _assign_tables(table: pa.Table, plan: dict[str, int]) -> Iterator[tuple[tuple[str, int], pa.Table]]:
    """Splits a tokens table into ((split, shard), sub-table) pieces."""
    for split, n in plan.items():
        mask = pc.equal(table.column("split"), split)
        selected = pc.sum(mask).as_py() or 0
        if selected == 0:
            continue
        part = table if selected == table.num_rows else table.filter(mask)  # no copy when all match
        if n == 1:
            yield (split, 0), part
            continue
        shards = (part.column("key").to_numpy() % np.uint64(n)).astype(np.int64)
        order = np.argsort(shards, kind="stable")
        bounds = np.flatnonzero(np.diff(shards[order])) + 1
        for chunk in np.split(order, bounds):
            yield (split, int(shards[chunk[0]])), part.take(pa.array(chunk))


def _assign_pair(pair: dict, plan: dict[str, int], salt: str) -> tuple[tuple[str, int], dict]:
    key = stable_hash64(f"{pair['tweet_id_a']}:{pair['tweet_id_b']}", salt)
    return (pair["split"], key % plan[pair["split"]]), dict(pair, key=key)


def _renumber(key: tuple[str, int], nonempty: list[tuple[str, int]]) -> tuple[int, int]:
    indices = sorted(i for split, i in nonempty if split == key[0])
    return indices.index(key[1]), len(indices)


def _dedupe_sorted(table: pa.Table) -> tuple[pa.Table, int]:
    """Sorts a tokens table by (key, tweet_id) and keeps one row per tweet ID (smallest ids)."""
    table = table.sort_by([("key", "ascending"), ("tweet_id", "ascending")])
    ids = table.column("tweet_id").to_numpy(zero_copy_only=False)
    if len(ids) < 2 or not (same := ids[1:] == ids[:-1]).any():
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


class _WriteShardFn(beam.DoFn):
    """Writes one shard file: ``{path}/{split}-{i:05d}-of-{n:05d}.parquet``; yields its info dict."""

    def __init__(self, *, dataset: str, path: str, max_length: int, pack: bool):
        self._dataset = dataset
        self._path = path
        self._max_length = max_length
        self._pack = pack
        self._files = Metrics.counter("shard", f"{dataset}_files")

    def process(self, item: tuple[tuple[str, int], Iterable], nonempty: list) -> Iterator[dict]:
        key, elements = item
        index, count = _renumber(key, nonempty)
        info = {
            "dataset": self._dataset,
            "split": key[0],
            "shard": index,
            "num_shards": count,
            "duplicates": 0,
        }
        if self._dataset == "mlm":
            table, mlm_info = mlm_shard(list(elements), max_length=self._max_length, pack=self._pack)
            info.update(mlm_info)
            row_group = MLM_ROW_GROUP
        else:
            rows = sorted(elements, key=lambda r: (r["key"], r["tweet_id_a"], r["tweet_id_b"]))
            table = to_table(rows, PAIR_SHARD)
            info["tweets"] = 2 * table.num_rows
            row_group = MLM_ROW_GROUP
        info["tokens"] = int(
            pc.sum(pc.list_value_length(table.column(2 if self._dataset == "pairs" else 0))).as_py() or 0
        )
        if self._dataset == "pairs":
            info["tokens"] += int(pc.sum(pc.list_value_length(table.column("input_ids_b"))).as_py() or 0)
        name = f"{key[0]}-{index:05d}-of-{count:05d}.parquet"
        written = files.write_parquet_atomic(files.join(self._path, name), table, row_group_size=row_group)
        self._files.inc()
        info.update(
            file=f"{self._dataset}/{name}",
            rows=written["rows"],
            bytes=written["bytes"],
            sha256=written["sha256"],
        )
        yield info


class _DistinctKeys(beam.CombineFn):
    """The sorted distinct shard keys (a set per bundle: lifted before the shuffle)."""

    def create_accumulator(self) -> set:
        return set()

    def add_input(self, acc: set, key: tuple[str, int]) -> set:
        acc.add(tuple(key))
        return acc

    def merge_accumulators(self, accs: Iterable[set]) -> set:
        return set().union(*accs)

    def extract_output(self, acc: set) -> list[tuple[str, int]]:
        return sorted(acc)


class WriteShards(beam.PTransform):
    """Writes MLM token tables (``dataset='mlm'``) or pair dicts (``'pairs'``) as split shards.

    Args:
      path: the dataset folder (``DIR/mlm`` or ``DIR/pairs``).
      plan: a singleton PCollection ``{split: shard count}`` (see `plan_shards`).
      salt: salt of the pair-key hash (MLM rows carry their key from tokenization).
    Output: one info dict per file (file, split, rows, tweets, tokens, bytes, sha256, langs).
    """

    def __init__(self, *, dataset: str, path: str, plan, max_length: int, pack: bool = True, salt: str = ""):
        super().__init__()
        self._dataset = dataset
        self._path = path
        self._plan = plan
        self._max_length = max_length
        self._pack = pack
        self._salt = salt

    def expand(self, pcoll):
        plan = beam.pvalue.AsSingleton(self._plan)
        if self._dataset == "mlm":
            keyed = pcoll | "AssignShards" >> beam.FlatMap(_assign_tables, plan=plan)
        else:
            keyed = pcoll | "AssignShards" >> beam.Map(_assign_pair, plan=plan, salt=self._salt)
        # The one shuffle of this stage: gathers each shard on one worker to sort, pack and write it.
        grouped = keyed | "GroupByShard" >> beam.GroupByKey()
        # Shard keys that got rows, taken before the shuffle (fused with AssignShards): reading
        # them from `grouped` would make the runner read every shard's tokens twice.
        nonempty = keyed | "ShardKeys" >> beam.Keys() | "NonEmpty" >> beam.CombineGlobally(_DistinctKeys())
        fn = _WriteShardFn(
            dataset=self._dataset, path=self._path, max_length=self._max_length, pack=self._pack
        )
        return grouped | "WriteShard" >> beam.ParDo(fn, nonempty=beam.pvalue.AsSingleton(nonempty))
