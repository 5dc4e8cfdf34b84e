"""prepare --max_per_author N: at most N tweets of one author in the corpus, the same N on every run.

Each author's tweets are ranked by a salted hash of the tweet ID, and those ranked after the N-th
leave (``author_cap``, counted). The dedup step sends, per bucket and author, the author's tweet
count and N smallest hashes (`bucket_authors`); a CombineFn (transforms/prepare/transform.py)
`merge`s them per author into the N-th smallest hash of the authors above the cap (`threshold`), and the part writer drops an author's
rows above it (`cap_table`). Tweets without an author (retweets kept as their original) are never
capped. The cap applies after dedup and before resampling; the resampling counts are taken
before it (an author over the cap is a small share of a language).
"""

from __future__ import annotations

import heapq

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.hashing import hash_ids
from twhin_data.transforms.prepare import stats as st

SALT = "author_cap"


def _hashes(table: pa.Table) -> np.ndarray:
    return hash_ids(table.column("tweet_id"), SALT)


def bucket_authors(table: pa.Table, cap: int) -> list[tuple[str, tuple[int, list[int]]]]:
    """Per author of `table`: (tweets, the `cap` smallest hashes)."""
    authors = table.column("author_id")
    has = pc.invert(pc.is_null(authors)).to_numpy(zero_copy_only=False)
    if not has.any():
        return []
    names = np.array(authors.to_pylist(), dtype=object)[has]
    hashes = _hashes(table)[has]
    order = np.lexsort((hashes, names.astype(str)))
    names, hashes = names[order], hashes[order]
    starts = np.flatnonzero(np.concatenate(([True], names[1:] != names[:-1])))
    ends = np.append(starts[1:], len(names))
    return [(str(names[s]), (int(e - s), [int(h) for h in hashes[s : min(e, s + cap)]])) for s, e in zip(starts, ends, strict=True)]


def merge(acc: tuple[int, list[int]], item: tuple[int, list[int]], cap: int) -> tuple[int, list[int]]:
    """Two (tweets, smallest hashes) of one author -> their sum and the `cap` smallest hashes."""
    return acc[0] + item[0], heapq.nsmallest(cap, list(acc[1]) + list(item[1]))


def threshold(acc: tuple[int, list[int]], cap: int) -> int | None:
    """The N-th smallest hash when the author has more than N tweets, else None (no cap)."""
    return acc[1][-1] if acc[0] > cap else None


def cap_table(table: pa.Table, thresholds: dict[str, int]) -> tuple[pa.Table, st.TableStats]:
    """The rows of `table` within their author's cap (see the module docstring)."""
    stats = st.TableStats()
    if not thresholds or not table.num_rows:
        return table, stats
    authors = table.column("author_id").to_pylist()
    limit = np.array([thresholds.get(a, np.iinfo(np.uint64).max) if a is not None else np.iinfo(np.uint64).max for a in authors], dtype=np.uint64)
    keep = _hashes(table) <= limit
    stats.reject("author_cap", int((~keep).sum()))
    return (table.filter(pa.array(keep)) if not keep.all() else table), stats
