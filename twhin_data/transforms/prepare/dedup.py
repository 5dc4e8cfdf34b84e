"""Exact dedup of normalized text and retweet collapsing, per text-hash bucket (after ONE shuffle).

Input: one text-hash bucket's rows in the transforms.prepare.KEPT layout (prepare's first shuffle
brings every copy of a text to the same bucket; transforms/prepare/transform.py runs this per bucket). Rows are sorted by
(text hash, text, numeric tweet ID, is-retweet) -- the 64-bit hash first, so the sort compares
strings only between rows whose hashes tie; then, inside a run of equal texts:

* a row with the same ID as the row before it is dropped: ``retweet_duplicate`` when it is a
  retweet (its original, or another retweet of the same original, stays), else ``duplicate_id``
  (the same tweet read twice);
* with ``--dedup exact``, a row with a different ID is dropped as ``duplicate_text``: the lowest
  tweet ID of each text stays, whatever order the runner delivered the rows in;
* with ``--dedup view`` (the default) the runs are of equal *match views* instead
  (text/contamination.match_view: the text without mention and URL placeholders, hashtag marks,
  emoji, digits, punctuation and case), so the same tweet with another link, mention, emoji, case,
  punctuation or number is a duplicate too: ``near_duplicate`` when its text differs from the
  kept one's, ``duplicate_text`` when it is the same. The first shuffle buckets rows by the hash
  of the same key (table.py), so equal views meet.

Output: the kept rows in the corpus layout, plus their counts (`prepare_stats.TableStats`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.text.contamination import match_view
from twhin_data.transforms.prepare import stats as st
from twhin_data.transforms.prepare.table import CORPUS_LAYOUT


def dedup_table(table: pa.Table, *, exact: bool, view: bool = False) -> tuple[pa.Table, st.TableStats]:
    """Pure: the kept rows of one bucket (corpus layout, sorted) and the duplicate counts."""
    kept, stats, _, _ = dedup_with_map(table, exact=exact, view=view)
    return kept, stats


def dedup_with_map(
    table: pa.Table, *, exact: bool, view: bool = False
) -> tuple[pa.Table, st.TableStats, pa.Table, list[str]]:
    """`dedup_table`, plus who represents each removed tweet and the kept rows' dedup keys.

    Returns ``(kept, stats, removed, keys)``: `removed` holds one row per tweet dropped for its
    text (`transforms.prepare.near_dedup.REMOVED`: its ID, the kept ID of its run, the reason,
    its language); `keys` is the dedup key of each kept row (its match view with ``view``)."""
    stats = st.TableStats()
    if table.num_rows == 0:
        return table.select(CORPUS_LAYOUT.names), stats, _removed([], [], [], []), []
    ids_num = pc.cast(table.column("tweet_id"), pa.uint64())
    keyed = table.append_column("_id_num", ids_num)
    key = dedup_keys(keyed.column("text").to_pylist()) if view else keyed.column("text")
    keyed = keyed.append_column("_key", key)
    keyed = keyed.take(
        pc.sort_indices(
            keyed,
            sort_keys=[("_key", "ascending"), ("_id_num", "ascending"), ("_rt", "ascending"), ("text", "ascending")],
        )
    )
    n = keyed.num_rows
    keys, texts = keyed.column("_key"), keyed.column("text")
    same_key = np.zeros(n, dtype=bool)
    same_id = np.zeros(n, dtype=bool)
    if n > 1:
        same_key[1:] = pc.equal(keys.slice(1), keys.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        ids = keyed.column("_id_num").to_numpy()
        same_id[1:] = ids[1:] == ids[:-1]
    rt = keyed.column("_rt").to_numpy(zero_copy_only=False)
    drop_rt = same_key & same_id & rt
    drop_id = same_key & same_id & ~rt
    drop_key = same_key & ~same_id if (exact or view) else np.zeros(n, dtype=bool)
    # A dropped row whose text differs from its run's first (kept) row is a near duplicate.
    first = np.maximum.accumulate(np.where(same_key, 0, np.arange(n)))
    differs = pc.not_equal(texts, texts.take(pa.array(first))).to_numpy(zero_copy_only=False)
    stats.duplicate("retweet_duplicate", int(drop_rt.sum()))
    stats.duplicate("duplicate_id", int(drop_id.sum()))
    stats.duplicate("duplicate_text", int((drop_key & ~differs).sum()))
    stats.duplicate("near_duplicate", int((drop_key & differs).sum()))
    keep = ~(drop_rt | drop_id | drop_key)
    kept = keyed.filter(pa.array(keep))
    stats.add("retweets_as_original", int(pc.sum(kept.column("_rt")).as_py() or 0))
    stats.counts("lang_before", kept.column("lang").to_pylist())
    rows = np.flatnonzero(drop_key)
    ids = keyed.column("_id_num").to_numpy()
    removed = _removed(
        ids[rows],
        ids[first[rows]],
        np.where(differs[rows], "near_duplicate", "duplicate_text").tolist(),
        keyed.column("lang").take(pa.array(rows)).to_pylist(),
    )
    return kept.select(CORPUS_LAYOUT.names), stats, removed, kept.column("_key").to_pylist()


def _removed(ids, kept, reasons: list[str], langs: list) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(ids, pa.uint64()),
            "kept": pa.array(kept, pa.uint64()),
            "reason": pa.array(reasons, pa.string()),
            "lang": pa.array(langs, pa.string()),
        }
    )


def dedup_keys(texts: list[str]) -> pa.Array:
    """The ``--dedup view`` key of each text: its match view (the text itself when nothing is left)."""
    return pa.array([match_view(t) or t for t in texts], pa.string())


def drop_duplicate_ids(table: pa.Table) -> tuple[pa.Table, st.TableStats]:
    """Pure: one row per tweet_id within one output part (rows of an ID all land in the same part).

    Dedup meets copies by text, so a retweet whose text differs from its original's (hydrated
    without the original's full text in `includes`) reaches the writer under the original's ID
    beside the original itself. The original (source_tweet_id == tweet_id) stays, else the lowest
    source ID; the others count as ``retweet_duplicate`` (or ``duplicate_id`` for a plain repeat).
    """
    stats = st.TableStats()
    n = table.num_rows
    if n < 2:
        return table, stats
    ids = pc.cast(table.column("tweet_id"), pa.uint64()).to_numpy(zero_copy_only=False)
    source = pc.fill_null(table.column("source_tweet_id"), table.column("tweet_id"))
    is_self = pc.equal(source, table.column("tweet_id")).to_numpy(zero_copy_only=False)
    source_num = pc.cast(source, pa.uint64()).to_numpy(zero_copy_only=False)
    order = np.lexsort((source_num, ~is_self, ids))
    repeat = np.zeros(n, dtype=bool)
    repeat[1:] = ids[order][1:] == ids[order][:-1]
    if not repeat.any():
        return table, stats
    dropped = order[repeat]
    from_retweet = ~is_self[dropped]
    stats.duplicate("retweet_duplicate", int(from_retweet.sum()))
    stats.duplicate("duplicate_id", int((~from_retweet).sum()))
    stats.uncount("lang_before", table.column("lang").take(pa.array(dropped)).to_pylist())
    keep = np.ones(n, dtype=bool)
    keep[dropped] = False
    return table.filter(pa.array(keep)), stats
