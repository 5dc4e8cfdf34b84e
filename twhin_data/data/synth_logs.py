"""Synthetic engagement logs, planted communities, community embeddings and ID lists (deterministic)."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from twhin_data.core.hashing import hash_ids

TWITTER_EPOCH_MS = 1288834974657
ENGAGEMENT_TYPES = ("fav", "reply", "retweet", "quote")
ENGAGEMENT_TYPE_P = (0.72, 0.10, 0.12, 0.06)
COMMUNITY_SALT = "synth-community"
_USER_MOD = (1 << 61) - 1  # prime: multiplying by a constant mod it is a bijection
_USER_MUL = 0x5DEECE66D1B7

# ---------------------------------------------------------------- IDs and timestamps (shared with synth.py tweets)


def user_id(index: int) -> str:
    """The decimal user ID of synthetic user `index` (a fixed bijection, so IDs never collide)."""
    return str((index + 1) * _USER_MUL % _USER_MOD)


def snowflake(created_ms: int, worker: int, sequence: int) -> int:
    """A Snowflake ID: created_ms = (id >> 22) + TWITTER_EPOCH_MS."""
    return ((created_ms - TWITTER_EPOCH_MS) << 22) | ((worker & 1023) << 12) | (sequence & 4095)


@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def iso_ms(ms: int) -> str:
    """ISO 8601 UTC with milliseconds, as the X API writes created_at."""
    return f"{_iso_seconds(ms // 1000)}.{ms % 1000:03d}Z"


# ---------------------------------------------------------------- engagements and communities


def tweet_community(tweet_ids: Sequence[str], communities: int) -> np.ndarray:
    """Planted community (0..communities-1) of each tweet ID (stable hash, any machine)."""
    return (hash_ids(list(tweet_ids), COMMUNITY_SALT) % np.uint64(communities)).astype(np.int64)


def user_community(user_ids: Sequence[str], communities: int) -> np.ndarray:
    """Planted community of each user ID (same rule as tweets, different salt)."""
    return (hash_ids(list(user_ids), COMMUNITY_SALT + "-user") % np.uint64(communities)).astype(np.int64)


def _zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    ranks = rng.permutation(n) + 1
    weights = 1.0 / ranks.astype(np.float64) ** exponent
    return weights / weights.sum()


def generate_engagements(
    tweets: Iterable[dict | str],
    n_users: int,
    n_engagements: int,
    seed: int = 0,
    *,
    communities: int = 8,
    in_community: float = 0.85,
    chunk: int = 65_536,
) -> Iterator[dict]:
    """Yields engagement rows {user_id, tweet_id, type, ts} with planted communities.

    User activity and tweet popularity are power laws (Zipf over a seeded random ranking). A user
    engages with a tweet of its own community (`user_community`/`tweet_community`) with probability
    `in_community`, else with any tweet. ts is after the tweet's creation time (from its Snowflake ID).
    The same (user, tweet, type) can repeat, as in real logs.
    """
    if communities < 1 or not 0.0 <= in_community <= 1.0:
        raise ValueError(
            f"need communities >= 1 and 0 <= in_community <= 1, got {communities}, {in_community}"
        )
    ids = [t if isinstance(t, str) else t["id"] for t in tweets]
    if not ids or n_users <= 0:
        return
    rng = np.random.default_rng(seed)
    users = [user_id(i) for i in range(n_users)]
    ucomm = user_community(users, communities)
    tcomm = tweet_community(ids, communities)
    created = (np.array([int(t) >> 22 for t in ids], dtype=np.int64)) + TWITTER_EPOCH_MS
    activity = _zipf_weights(rng, n_users, 0.85)
    popularity = _zipf_weights(rng, len(ids), 0.85)
    all_cdf = np.cumsum(popularity)
    members = [np.flatnonzero(tcomm == c) for c in range(communities)]
    cdfs = [np.cumsum(popularity[m]) for m in members]
    done = 0
    while done < n_engagements:
        size = min(chunk, n_engagements - done)
        done += size
        who = rng.choice(n_users, size=size, p=activity)
        pick = np.searchsorted(all_cdf, rng.random(size) * all_cdf[-1], side="right")
        inside = rng.random(size) < in_community
        draws = rng.random(size)
        for c in range(communities):
            if not len(members[c]):
                continue
            mask = inside & (ucomm[who] == c)
            local = np.searchsorted(cdfs[c], draws[mask] * cdfs[c][-1], side="right")
            pick[mask] = members[c][np.minimum(local, len(members[c]) - 1)]
        pick = np.minimum(pick, len(ids) - 1)
        kinds = rng.choice(len(ENGAGEMENT_TYPES), size=size, p=ENGAGEMENT_TYPE_P)
        delay = (rng.exponential(6 * 3_600_000, size=size)).astype(np.int64) + 1_000
        ts = created[pick] + delay
        for u, t, k, ms in zip(who.tolist(), pick.tolist(), kinds.tolist(), ts.tolist(), strict=True):
            yield {"user_id": users[u], "tweet_id": ids[t], "type": ENGAGEMENT_TYPES[k], "ts": iso_ms(ms)}


def community_embeddings(
    ids: Sequence[str], communities: np.ndarray, dim: int, seed: int = 0, *, noise: float = 0.35
) -> np.ndarray:
    """Unit float32 vectors: a random centroid per community plus Gaussian noise (rows follow `ids`)."""
    rng = np.random.default_rng(seed)
    k = int(communities.max()) + 1 if len(communities) else 1
    centroids = rng.standard_normal((k, dim))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    vectors = centroids[communities] + noise * rng.standard_normal((len(ids), dim)) / np.sqrt(dim)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


# ---------------------------------------------------------------- ID lists

#: Malformed ID-list lines, one per kind; "excel" is filled in from a real ID (Excel's 1.23E+18 damage).
MALFORMED_KINDS = ("alpha", "empty", "excel", "too_long", "negative")


def malformed_line(kind: str, rng: random.Random, example_id: str) -> str:
    """One malformed ID line of the given kind."""
    if kind == "alpha":
        return rng.choice(["abc", "tweet_id", "n/a", "1234x5678"])
    if kind == "empty":
        return ""
    if kind == "excel":
        return f"{int(example_id):.2E}"  # 1.48E+18
    if kind == "too_long":
        return example_id + str(rng.randrange(10**6, 10**7))
    if kind == "negative":
        return "-" + example_id[:8]
    raise ValueError(f"unknown malformed kind {kind!r}")


def unavailable_ids(tweet_ids: Sequence[str], n: int, seed: int = 0) -> dict[str, str]:
    """`n` plausible IDs that are not in `tweet_ids`, each mapped to "deleted" or "protected"."""
    rng = random.Random(seed)
    taken = set(tweet_ids)
    out: dict[str, str] = {}
    while len(out) < n and tweet_ids:
        base = int(rng.choice(tweet_ids))
        candidate = str(
            base + (rng.randrange(1, 4096) << 12 if rng.random() < 0.5 else rng.randrange(1, 4096))
        )
        if candidate not in taken and candidate not in out:
            out[candidate] = "deleted" if rng.random() < 0.6 else "protected"
    return dict(sorted(out.items()))


def generate_id_list(
    tweet_ids: Sequence[str | dict],
    extra_ids: Sequence[str] = (),
    seed: int = 0,
    *,
    duplicate_rate: float = 0.03,
    messy_rate: float = 0.05,
    malformed: Sequence[str] = MALFORMED_KINDS,
) -> list[str]:
    """ID-list lines: every ID once (shuffled), some duplicates, some wrapped in whitespace/quotes,
    and one line per entry of `malformed` (a kind from MALFORMED_KINDS)."""
    rng = random.Random(seed)
    tweet_ids = [t if isinstance(t, str) else t["id"] for t in tweet_ids]
    lines = list(tweet_ids) + list(extra_ids)
    lines += [rng.choice(lines) for _ in range(int(len(lines) * duplicate_rate))]
    rng.shuffle(lines)
    wraps = ("  {} ", "\t{}", '"{}"', "'{}'", " {}\t", '"{}" ')
    for i in range(len(lines)):
        if rng.random() < messy_rate:
            lines[i] = rng.choice(wraps).format(lines[i])
    for kind in malformed:
        lines.insert(rng.randrange(len(lines) + 1), malformed_line(kind, rng, rng.choice(tweet_ids)))
    return lines
