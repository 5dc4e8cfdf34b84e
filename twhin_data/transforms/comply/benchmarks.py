"""comply for the benchmarks: one language folder at a time (its files refer to each other).

Hashtag: the removed tweets' rows leave train/validation/test, and ``labels.parquet`` counts drop
with them (a label keeps its ``label_id``, even at count 0, so the other files stay valid).

Engagement: records of a removed tweet leave train/validation/test; a candidate list whose engaged
tweet was removed leaves with its record; a removed negative is replaced by another tweet of the
same language and split that is not removed and not already in the list (the first by a hash of
(user_row, tweet ID): deterministic), so the list keeps its size; when no such tweet is left the
list shrinks and is counted (``short_candidate_lists``). ``train_negatives`` drops the removed
tweets and renormalizes ``probability`` = count^0.75 / sum; ``tweets.parquet`` drops them.

`rewrite_language(kind, tables, removed)` takes ``{file stem: table}`` and returns ``{file stem:
(new table, info)}`` for the files that change (an unchanged file is not in it).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.hashing import hash_ids
from twhin_data.transforms.comply.removals import removed_in, removed_in_lists

SPLIT_FILES = ("train", "validation", "test")
NEGATIVE_EXPONENT = 0.75


def affected(kind: str, tables: dict[str, pa.Table], removed: np.ndarray) -> bool:
    for table in tables.values():
        if "tweet_id" in table.column_names and removed_in(table.column("tweet_id"), removed).any():
            return True
        if "candidate_tweet_ids" in table.column_names and removed_in_lists(table.column("candidate_tweet_ids"), removed)[1].any():
            return True
    return False


def rewrite_language(kind: str, tables: dict[str, pa.Table], removed: np.ndarray) -> dict[str, tuple[pa.Table, dict]]:
    if kind == "hashtag":
        return _hashtag(tables, removed)
    return _engagement(tables, removed)


def _drop(table: pa.Table, removed: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    hit = removed_in(table.column("tweet_id"), removed)
    return table.filter(pa.array(~hit)), hit


def _hashtag(tables: dict[str, pa.Table], removed: np.ndarray) -> dict:
    out: dict = {}
    dropped_labels: dict[int, int] = {}
    for stem in SPLIT_FILES:
        if stem not in tables:
            continue
        table = tables[stem]
        kept, hit = _drop(table, removed)
        if hit.any():
            out[stem] = (kept, {"rows_before": table.num_rows, "rows_after": kept.num_rows})
            for label_id in table.filter(pa.array(hit)).column("label_id").to_pylist():
                dropped_labels[int(label_id)] = dropped_labels.get(int(label_id), 0) + 1
    labels = tables.get("labels")
    if dropped_labels and labels is not None:
        ids = labels.column("label_id").to_pylist()
        count = np.array(labels.column("count").to_pylist(), np.int64)
        count -= np.array([dropped_labels.get(int(i), 0) for i in ids], np.int64)
        index = labels.schema.get_field_index("count")
        new = labels.set_column(index, "count", pa.array(count, labels.schema.field("count").type))
        out["labels"] = (new, {"rows_before": labels.num_rows, "rows_after": new.num_rows})
    return out


def _engagement(tables: dict[str, pa.Table], removed: np.ndarray) -> dict:
    out: dict = {}
    for stem in SPLIT_FILES:
        if stem in tables:
            kept, hit = _drop(tables[stem], removed)
            if hit.any():
                out[stem] = (kept, {"rows_before": tables[stem].num_rows, "rows_after": kept.num_rows})
    tweets = tables.get("tweets")
    for split in ("validation", "test"):
        stem = f"{split}_candidates"
        if stem in tables and tweets is not None:
            result = replace_candidates(tables[stem], tweets, split, removed)
            if result is not None:
                out[stem] = result
    negatives = tables.get("train_negatives")
    if negatives is not None:
        kept, hit = _drop(negatives, removed)
        if hit.any():
            weight = np.power(kept.column("count").to_numpy(zero_copy_only=False).astype(np.float64), NEGATIVE_EXPONENT)
            probability = weight / weight.sum() if weight.sum() > 0 else weight
            index = kept.schema.get_field_index("probability")
            kept = kept.set_column(index, "probability", pa.array(probability, pa.float64()))
            out["train_negatives"] = (kept, {"rows_before": negatives.num_rows, "rows_after": kept.num_rows})
    if tweets is not None:
        kept, hit = _drop(tweets, removed)
        if hit.any():
            out["tweets"] = (kept, {"rows_before": tweets.num_rows, "rows_after": kept.num_rows})
    return out


def replace_candidates(table: pa.Table, tweets: pa.Table, split: str, removed: np.ndarray) -> tuple[pa.Table, dict] | None:
    """Candidate lists without removed tweets (see the module doc); None when none holds one."""
    element_hit, row_hit = removed_in_lists(table.column("candidate_tweet_ids"), removed)
    if not row_hit.any():
        return None
    pool_table = tweets.filter(pc.equal(tweets.column("split"), split))
    pool_table = pool_table.filter(pa.array(~removed_in(pool_table.column("tweet_id"), removed)))
    pool_ids = pool_table.column("tweet_id").combine_chunks()
    pool = np.array(pool_ids.to_pylist(), dtype=object)
    rows = table.to_pylist()
    flat_hit = element_hit.tolist()
    kept, replaced, short, position = [], 0, 0, 0
    for row in rows:
        ids = row["candidate_tweet_ids"]
        hits = flat_hit[position : position + len(ids)]
        position += len(ids)
        if not any(hits):
            kept.append(row)
            continue
        if hits[row["positive_index"]]:
            continue  # the engaged tweet is gone: its record left the split file too
        present = set(ids)
        order = np.argsort(hash_ids(pool_ids, salt=f"comply:{row['user_row']}"), kind="stable") if len(pool) else []
        spare = [pool[i] for i in order if pool[i] not in present]
        new_ids, new_positive = [], row["positive_index"]
        for index, (tweet_id, hit) in enumerate(zip(ids, hits, strict=True)):
            if not hit:
                new_ids.append(tweet_id)
            elif spare:
                new_ids.append(spare.pop(0))
                replaced += 1
            elif index < row["positive_index"]:
                new_positive -= 1
        short += int(len(new_ids) < len(ids))
        kept.append({**row, "candidate_tweet_ids": new_ids, "positive_index": new_positive})
    new = pa.Table.from_pylist(kept, schema=table.schema)
    info = {"rows_before": table.num_rows, "rows_after": new.num_rows, "negatives_replaced": replaced, "short_candidate_lists": short}
    return new, info
