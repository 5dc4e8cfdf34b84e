"""graph's view of the corpus: prepare's duplicate map and the benchmark tweets kept out.

`graph --duplicates OUT/duplicates` (prepare's map, schemas.corpus.DUPLICATES) moves every
engagement with a tweet prepare removed as a copy onto the kept tweet that represents it, so
the copies' social signal lands on the tweet that is trained on, and no pair (co-engagement or
embedding) can point at a removed copy. `graph --exclude BENCH_DIRS` drops every engagement
with, and every embedding of, a benchmark's validation or test tweet (counted as
``filtered.benchmark``), so those tweets never enter the graph, its PyTorch-BigGraph files or the
pairs. Near-copies of benchmark tweets are removed from the corpus by prepare --exclude; shard
drops any pair whose tweet is not in the corpus.

The map is held as two aligned sorted uint64 arrays (16 bytes a removed tweet) in each worker.
Pure (no Beam): pool processes import it; read_steps.read_input applies it to every edge table it reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.tables import sorted_unique
from twhin_data.text.contamination import load_index


def _empty() -> np.ndarray:
    return np.zeros(0, np.uint64)


@dataclass(frozen=True)
class TweetMap:
    removed: np.ndarray = field(default_factory=_empty)  # sorted uint64
    kept: np.ndarray = field(default_factory=_empty)  # the kept tweet of each removed one
    excluded: np.ndarray = field(default_factory=_empty)  # sorted uint64

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mapped ids, was remapped, is excluded)`` for uint64 `ids`."""
        ids = np.asarray(ids, np.uint64)
        mapped = ids.copy()
        remapped = np.zeros(ids.size, bool)
        if self.removed.size:
            at = np.minimum(np.searchsorted(self.removed, ids), self.removed.size - 1)
            remapped = self.removed[at] == ids
            mapped[remapped] = self.kept[at[remapped]]
        excluded = np.zeros(ids.size, bool)
        if self.excluded.size:
            at = np.minimum(np.searchsorted(self.excluded, mapped), self.excluded.size - 1)
            excluded = self.excluded[at] == mapped
            at = np.minimum(np.searchsorted(self.excluded, ids), self.excluded.size - 1)
            excluded |= self.excluded[at] == ids
        return mapped, remapped, excluded


def load_tweet_map(duplicates: str | None, exclude: tuple[str, ...] = ()) -> TweetMap:
    """Reads prepare's duplicates/ folder (if given) and the benchmarks' dev/test tweet IDs."""
    removed, kept = _empty(), _empty()
    if duplicates:
        parts = [files.read_parquet_table(p, ["tweet_id", "kept_tweet_id"]) for p in files.list_parquet(duplicates)]
        if parts:
            table = pa.concat_tables(parts)
            removed = np.array(table.column("tweet_id").to_pylist(), dtype=np.uint64)
            kept = np.array(table.column("kept_tweet_id").to_pylist(), dtype=np.uint64)
            order = np.argsort(removed, kind="stable")
            removed, kept = removed[order], kept[order]
    excluded = _empty()
    if exclude:
        ids = [int(i) for i in load_index(exclude).ids if i.isdigit() and len(i) <= 19]
        excluded = sorted_unique(np.array(ids, dtype=np.uint64))
    return TweetMap(removed=removed, kept=kept, excluded=excluded)


_CACHE: dict = {}


def cached_tweet_map(duplicates: str | None, exclude: tuple[str, ...] = ()) -> TweetMap | None:
    """`load_tweet_map`, read once per process (pooled steps call it per file); None when there is
    nothing to map."""
    key = (duplicates, tuple(exclude))
    if key not in _CACHE:
        _CACHE[key] = load_tweet_map(duplicates, key[1]) if duplicates or exclude else None
    return _CACHE[key]


def apply_to_edges(table: pa.Table, tweet_map: TweetMap) -> tuple[pa.Table, dict[str, int]]:
    """Pure: edge rows (column ``tweet``) with copies moved to their kept tweet, benchmark tweets out."""
    mapped, remapped, excluded = tweet_map.lookup(table.column("tweet").to_numpy())
    counts = {"filtered_benchmark": int(excluded.sum()), "remapped_to_kept": int((remapped & ~excluded).sum())}
    if remapped.any():
        table = table.set_column(table.schema.get_field_index("tweet"), "tweet", pa.array(mapped, pa.uint64()))
    if excluded.any():
        table = table.filter(pa.array(~excluded))
    return table, counts
