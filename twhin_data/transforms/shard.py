"""Deterministic shard writer (the TFDS pattern) for pair rows; the MLM steps are in shard_steps.py.

1. A size side input (rows and tokens per split) fixes the shard count of each split
   (`plan_shards`): fixed by --num_shards, or from --target_shard_mb, never above the row count.
2. Each pair goes to shard ``key % n`` of its split, `key` being a salted stable hash of both
   tweet IDs: membership depends on nothing but the data and the seed.
3. One GroupByKey gathers a shard; inside it rows are sorted by (key, tweet IDs) and the file is
   written through a temporary name and a rename (local or gs://).
4. A shard index that got no rows is never written: the non-empty shards of a split are
   renumbered 0..m-1 "-of-m" from a side input of the non-empty keys, so there are no holes.

MLM rows take the same plan, membership and numbering, but move between pool processes as spill
files (transforms/shard_steps.py, wired by transforms/shard_mlm.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.core.hashing import stable_hash64
from twhin_data.schemas import to_table
from twhin_data.schemas.shards import PAIR_SHARD
from twhin_data.transforms.shard_steps import MLM_ROW_GROUP, renumber


def _assign_pair(pair: dict, plan: dict[str, int], salt: str) -> tuple[tuple[str, int], dict]:
    key = stable_hash64(f"{pair['tweet_id_a']}:{pair['tweet_id_b']}", salt)
    return (pair["split"], key % plan[pair["split"]]), dict(pair, key=key)


class _WritePairShardFn(beam.DoFn):
    """Writes one pair shard file: ``{path}/{split}-{i:05d}-of-{n:05d}.parquet``; yields its info dict."""

    def __init__(self, *, path: str):
        self._path = path
        self._files = Metrics.counter("shard", "pairs_files")

    def process(self, item: tuple[tuple[str, int], Iterable[dict]], nonempty: list) -> Iterator[dict]:
        key, elements = item
        index, count = renumber(key, nonempty)
        rows = sorted(elements, key=lambda r: (r["key"], r["tweet_id_a"], r["tweet_id_b"]))
        table = to_table(rows, PAIR_SHARD)
        tokens = sum(
            int(pc.sum(pc.list_value_length(table.column(c))).as_py() or 0)
            for c in ("input_ids_a", "input_ids_b")
        )
        name = f"{key[0]}-{index:05d}-of-{count:05d}.parquet"
        written = files.write_parquet_atomic(
            files.join(self._path, name), table, row_group_size=MLM_ROW_GROUP
        )
        self._files.inc()
        yield {
            "dataset": "pairs",
            "split": key[0],
            "shard": index,
            "num_shards": count,
            "duplicates": 0,
            "tweets": 2 * table.num_rows,
            "tokens": tokens,
            "file": f"pairs/{name}",
            "rows": written["rows"],
            "bytes": written["bytes"],
            "sha256": written["sha256"],
        }


class DistinctKeys(beam.CombineFn):
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


class WritePairShards(beam.PTransform):
    """Writes pair dicts as split shards.

    Args:
      path: the dataset folder (``DIR/pairs``).
      plan: a singleton PCollection ``{split: shard count}`` (see `plan_shards`).
      salt: salt of the pair-key hash.
    Output: one info dict per file (file, split, rows, tweets, tokens, bytes, sha256).
    """

    def __init__(self, *, path: str, plan, salt: str = ""):
        super().__init__()
        self._path = path
        self._plan = plan
        self._salt = salt

    def expand(self, pcoll):
        keyed = pcoll | "AssignShards" >> beam.Map(
            _assign_pair, plan=beam.pvalue.AsSingleton(self._plan), salt=self._salt
        )
        # The one shuffle of this writer: gathers each shard on one worker to sort and write it.
        grouped = keyed | "GroupByShard" >> beam.GroupByKey()
        nonempty = keyed | "ShardKeys" >> beam.Keys() | "NonEmpty" >> beam.CombineGlobally(DistinctKeys())
        fn = _WritePairShardFn(path=self._path)
        return grouped | "WriteShard" >> beam.ParDo(fn, nonempty=beam.pvalue.AsSingleton(nonempty))
