"""Pure functions of the engagement-prediction benchmark (paper 3.2): sampling, records, candidates.

Everything random is seeded from stable hashes of (seed, language, split, record), so the same
inputs give the same benchmark on every runner and machine.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.hashing import id_unit_interval, stable_hash64
from twhin_data.transforms.benchmark.common import SPLITS, assign_splits, numeric_id_order, rng_for

#: Twitter language values that name no language.
NO_LANGUAGE = frozenset({"", "und", "qst", "qme", "qht", "qam", "zxx", "art"})
NEGATIVE_POWER = 0.75


def sample_tweets(
    lang: str, tweet_ids: Sequence[str], max_tweets: int, seed: int
) -> tuple[list[str], list[str]]:
    """(selected, not selected): the `max_tweets` tweets with the smallest salted hash (a uniform sample)."""
    if not tweet_ids:
        return [], []
    u = id_unit_interval(pa.array(list(tweet_ids), pa.string()), f"twhin-benchmark-sample:{seed}:{lang}")
    order = sorted(range(len(tweet_ids)), key=lambda i: (u[i], len(tweet_ids[i]), tweet_ids[i]))
    chosen = {tweet_ids[i] for i in order[:max_tweets]}
    return [t for t in tweet_ids if t in chosen], [t for t in tweet_ids if t not in chosen]


def split_tweets(tweet_ids: Sequence[str], fractions: Sequence[float], seed: int) -> dict[str, str]:
    """tweet_id -> split (tweet-level split by salted hash; records follow their tweet)."""
    return dict(zip(tweet_ids, assign_splits(tweet_ids, fractions, seed), strict=True))


def choose_records(
    user_id: str, tweet_ids: Sequence[str], per_user: int, seed: int
) -> tuple[list[str], list[str]]:
    """(kept, dropped) tweets of one user: `per_user` of them, picked by a salted hash (privacy rule)."""
    order = sorted(
        tweet_ids, key=lambda t: (stable_hash64(f"{user_id}:{t}", f"twhin-benchmark-record:{seed}"), t)
    )
    return order[:per_user], order[per_user:]


def user_key(user_id: str, seed: int) -> int:
    """An opaque per-run key of a user (orders records; the user ID itself is never written)."""
    return stable_hash64(user_id, f"twhin-benchmark-user:{seed}") >> 1


def number_records(records: list[dict]) -> list[dict]:
    """Records sorted by (split, user key, tweet) with ``user_row`` = position in the language."""
    ordered = sorted(
        records, key=lambda r: (SPLITS.index(r["split"]), r["user_key"], len(r["tweet_id"]), r["tweet_id"])
    )
    return [{**r, "user_row": i} for i, r in enumerate(ordered)]


def candidate_list(
    record: dict,
    pool: np.ndarray,
    negatives: int,
    *,
    lang: str,
    seed: int,
    positions: dict[str, int] | None = None,
) -> tuple[list[str], int, bool]:
    """(candidate tweet IDs, index of the positive, short?) for one evaluation record.

    Negatives are drawn without replacement from `pool` (the language's tweets of the record's
    split, numerically sorted, each once), never the positive nor another tweet the user engaged
    with. When fewer than `negatives` remain, all of them are used and `short` is True.
    `positions` (tweet ID -> index in `pool`) saves rebuilding that index for every record.
    """
    if positions is None:
        positions = {t: i for i, t in enumerate(pool.tolist())}
    drop = [positions[t] for t in {record["tweet_id"], *record.get("exclude", ())} if t in positions]
    if drop:
        keep = np.ones(len(pool), dtype=bool)
        keep[drop] = False
        available = pool[keep]
    else:
        available = pool
    rng = rng_for(seed, lang, record["split"], record["user_row"])
    take = min(negatives, len(available))
    chosen = rng.choice(len(available), size=take, replace=False) if take else np.array([], dtype=np.int64)
    candidates = np.empty(take + 1, dtype=object)
    candidates[0] = record["tweet_id"]
    candidates[1:] = available[np.sort(chosen)]
    order = rng.permutation(len(candidates))
    return candidates[order].tolist(), int(np.flatnonzero(order == 0)[0]), take < negatives


def build_candidates(
    records: list[dict], pools: dict[str, list[str]], negatives: int, *, lang: str, seed: int
) -> tuple[list[dict], int]:
    """ENGAGEMENT_CANDIDATES rows for the validation and test records, and how many lists are short."""
    arrays = {
        split: np.array([ids[i] for i in numeric_id_order(ids)], dtype=object) for split, ids in pools.items()
    }
    positions = {split: {t: i for i, t in enumerate(pool.tolist())} for split, pool in arrays.items()}
    rows, short = [], 0
    for record in records:
        if record["split"] == "train":
            continue
        pool = arrays.get(record["split"], np.array([], dtype=object))
        ids, positive, is_short = candidate_list(
            record, pool, negatives, lang=lang, seed=seed, positions=positions.get(record["split"], {})
        )
        short += is_short
        rows.append(
            {
                "lang": lang,
                "split": record["split"],
                "user_row": record["user_row"],
                "candidate_tweet_ids": ids,
                "positive_index": positive,
            }
        )
    return rows, short


def negative_distribution(lang: str, train_records: list[dict], power: float = NEGATIVE_POWER) -> list[dict]:
    """Training negative sampler: P(t) ∝ count(t)^power over the training records' tweets (paper: 3/4)."""
    counts = Counter(r["tweet_id"] for r in train_records)
    ids = sorted(counts, key=lambda t: (len(t), t))
    weights = [math.pow(counts[t], power) for t in ids]
    total = math.fsum(weights)
    return [
        {"lang": lang, "tweet_id": t, "count": counts[t], "probability": w / total}
        for t, w in zip(ids, weights, strict=True)
    ]


def embedding_problems(values: pa.Array | pa.ChunkedArray, dim: int) -> list[str | None]:
    """Per embedding (a ``list<double>`` column): None when it is a finite vector of length `dim`, else why.

    >>> embedding_problems(pa.array([[1.0, 2.0], [1.0], None], pa.list_(pa.float64())), 2)
    [None, 'embedding has 1 values, expected 2', 'embedding is not a list of numbers']
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    lengths = pc.list_value_length(values).fill_null(-1).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(values).to_numpy(zero_copy_only=False)  # a null value reads as NaN
    parents = pc.list_parent_indices(values).to_numpy(zero_copy_only=False)
    not_finite = np.bincount(parents[~np.isfinite(flat)], minlength=len(values)) > 0
    out: list[str | None] = []
    for n, bad in zip(lengths.tolist(), not_finite.tolist(), strict=True):
        if n < 0:
            out.append("embedding is not a list of numbers")
        elif n != dim:
            out.append(f"embedding has {n} values, expected {dim}")
        else:
            out.append("embedding holds NaN or infinity" if bad else None)
    return out
