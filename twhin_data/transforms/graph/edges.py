"""Pure, vectorized helpers of the graph stage (no Beam): parsing, dedupe, caps, ranks, shards.

Inside the graph stage an edge table is a ``pa.Table`` with the columns of ``EDGE_COLUMNS``:
user and tweet IDs as uint64 (decimal IDs up to 19 digits fit), the engagement type as an int8
code (position in ``schemas.graph.ENGAGEMENT_TYPES``), ts in ms since the epoch (``NO_TS`` when
unknown) and the source (0 = log, 1 = derived from hydrated tweets).
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.ids import digits_mask, id_mask
from twhin_data.core.tables import lexsort, sorted_unique
from twhin_data.schemas.graph import ENGAGEMENT_TYPES

NO_TS = np.iinfo(np.int64).min
SOURCES = ("log", "derived")
EDGE_SCHEMA = pa.schema(
    [
        ("user", pa.uint64()),
        ("tweet", pa.uint64()),
        ("rel", pa.int8()),
        ("ts", pa.int64()),
        ("source", pa.int8()),
    ]
)
#: Accepted spellings of each engagement type (lower-cased input).
TYPE_ALIASES = {
    "fav": "fav",
    "favorite": "fav",
    "favourite": "fav",
    "like": "fav",
    "reply": "reply",
    "replied_to": "reply",
    "retweet": "retweet",
    "retweeted": "retweet",
    "rt": "retweet",
    "quote": "quote",
    "quoted": "quote",
}
#: The code of each alias in TYPE_ALIASES' order, then -1 (unknown).
_ALIAS_CODES = np.array([ENGAGEMENT_TYPES.index(name) for name in TYPE_ALIASES.values()] + [-1], dtype=np.int8)
_DIGITS = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def empty_edges() -> pa.Table:
    return EDGE_SCHEMA.empty_table()


def parse_ids(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Decimal ID strings -> (uint64 array, valid mask). Valid: 1-19 digits (always < 2**64)."""
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    ok = id_mask(text).to_numpy(zero_copy_only=False)
    out = np.zeros(len(values), dtype=np.uint64)
    if ok.any():
        good = pc.filter(text, pa.array(ok))
        out[ok] = pc.cast(good, pa.uint64()).to_numpy(zero_copy_only=False)
    return out, ok


def parse_types(values: pa.Array) -> np.ndarray:
    """Engagement type strings -> int8 codes (index in ENGAGEMENT_TYPES), -1 when unknown."""
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(values.cast(pa.string())))
    # One hash lookup per row: position in the alias list (null when unknown), then its type's code.
    found = pc.index_in(lowered, value_set=pa.array(list(TYPE_ALIASES)))
    position = pc.fill_null(found, len(TYPE_ALIASES)).to_numpy(zero_copy_only=False)
    return _ALIAS_CODES[position]


def _parse_one_ts(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if _DIGITS.match(text):
        value = float(text)
        # Epoch seconds below 1e11 (year 5138); anything larger is milliseconds.
        return int(round(value * 1000)) if abs(value) < 1e11 else int(value)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def parse_ts(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (ISO 8601, naive = UTC, or epoch s/ms; or Arrow timestamps) -> (ms, valid).

    Null or empty -> NO_TS and valid (ts is optional); unparseable -> invalid.
    """
    n = len(values)
    if pa.types.is_timestamp(values.type):
        ms = pc.cast(pc.cast(values, pa.timestamp("ms", tz=values.type.tz)), pa.int64())
        return pc.fill_null(ms, NO_TS).to_numpy(zero_copy_only=False).astype(np.int64), np.ones(n, bool)
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        values = values.cast(pa.string())
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    out = np.full(n, NO_TS, dtype=np.int64)
    valid = np.ones(n, dtype=bool)
    present = pc.fill_null(pc.greater(pc.utf8_length(text), 0), False).to_numpy(zero_copy_only=False)
    digits = digits_mask(text, 15).to_numpy(zero_copy_only=False)
    if digits.any():  # epoch seconds (< 1e11, i.e. before year 5138) or milliseconds, vectorized
        epoch_text = text if digits.all() else pc.filter(text, pa.array(digits))
        epoch = pc.cast(epoch_text, pa.int64()).to_numpy(zero_copy_only=False)
        out[digits] = np.where(epoch < 100_000_000_000, epoch * 1000, epoch)
    rest = np.flatnonzero(present & ~digits)
    if len(rest):
        subset = pc.take(text, pa.array(rest))
        try:  # ISO 8601 with a zone, vectorized
            out[rest] = pc.cast(pc.cast(subset, pa.timestamp("ms", tz="UTC")), pa.int64()).to_numpy(
                zero_copy_only=False
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for i, value in zip(rest, subset.to_pylist(), strict=True):
                parsed = _parse_one_ts(value)
                if parsed is None:
                    valid[i] = False
                else:
                    out[i] = parsed
    return out, valid


def iso_to_ms(text: str) -> int:
    """An ISO 8601 date/time (naive = UTC) to ms since the epoch; ValueError when unparseable."""
    parsed = _parse_one_ts(text)
    if parsed is None:
        raise ValueError(f"not an ISO 8601 date or time: {text!r}")
    return parsed


def splitmix64(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def edge_hash(user: np.ndarray, tweet: np.ndarray, rel: np.ndarray, salt: int = 0) -> np.ndarray:
    """A stable uint64 hash of (user, tweet, rel): the same on every machine and run."""
    with np.errstate(over="ignore"):
        mixed = splitmix64(user ^ np.uint64(salt)) ^ splitmix64(tweet + np.uint64(0x632BE59BD9B4E019))
        return splitmix64(mixed + rel.astype(np.uint64))


def cols(table: pa.Table, *names: str) -> list[np.ndarray]:
    return [table.column(n).to_numpy() for n in names]


def dedupe(edges: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """Keeps one row per (user, tweet, rel): the earliest known ts, a log row before a derived one.

    Returns (deduplicated edges sorted by user, tweet, rel; duplicates dropped per rel code).
    """
    if edges.num_rows == 0:
        return edges, np.zeros(len(ENGAGEMENT_TYPES), np.int64)
    user, tweet, rel, ts, source = cols(edges, "user", "tweet", "rel", "ts", "source")
    unknown = ts == NO_TS  # unknown times sort after known ones
    order = lexsort((source, ts, unknown, rel, tweet, user))
    u, t, r = user[order], tweet[order], rel[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (u[1:] != u[:-1]) | (t[1:] != t[:-1]) | (r[1:] != r[:-1])
    dropped = np.bincount(r[~first], minlength=len(ENGAGEMENT_TYPES)).astype(np.int64)
    return edges.take(pa.array(order[first])), dropped


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in a sorted array."""
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def rank_within_groups(sorted_keys: np.ndarray) -> np.ndarray:
    """0-based position of each row inside its run of equal keys (keys sorted)."""
    n = len(sorted_keys)
    starts = group_starts(sorted_keys)
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)


def cap_per_user(edges: pa.Table, alive: np.ndarray, cap: int, policy: str) -> np.ndarray:
    """Selects at most `cap` edges per user among the rows where `alive` (mask aligned to rows).

    policy "recent": the most recent first (unknown ts counts as oldest; ties by tweet, rel);
    "hash": the `cap` edges with the smallest stable hash of (user, tweet, rel).
    """
    selected = np.zeros(edges.num_rows, dtype=bool)
    idx = np.flatnonzero(alive)
    if len(idx) == 0:
        return selected
    user, tweet, rel, ts = (c[idx] for c in cols(edges, "user", "tweet", "rel", "ts"))
    if policy == "hash":
        order = lexsort((edge_hash(user, tweet, rel, salt=0x5EED), user))
    else:
        order = lexsort((rel, tweet, -np.maximum(ts, NO_TS + 1), user))
    keep = rank_within_groups(user[order]) < cap
    selected[idx[order[keep]]] = True
    return selected


def distinct_users_per_tweet(tweet: np.ndarray, user: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tweets sorted, number of distinct users of each) over aligned tweet/user arrays."""
    if len(tweet) == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    order = lexsort((user, tweet))
    t, u = tweet[order], user[order]
    distinct = np.r_[True, (t[1:] != t[:-1]) | (u[1:] != u[:-1])]  # first row of each (tweet, user)
    tweets, counts = np.unique(t[distinct], return_counts=True)
    return tweets, counts.astype(np.int64)


def lookup(keys_sorted: np.ndarray, values: np.ndarray, query: np.ndarray, default=0) -> np.ndarray:
    """values[keys == query] for each query (keys sorted and unique); `default` when absent."""
    if len(keys_sorted) == 0:
        return np.full(len(query), default, dtype=values.dtype)
    pos = np.clip(np.searchsorted(keys_sorted, query), 0, len(keys_sorted) - 1)
    found = keys_sorted[pos] == query
    return np.where(found, values[pos], default)


def range_shard(ids: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Range partition: shard i holds ids in [splits[i-1], splits[i]) (numeric order preserved)."""
    return np.searchsorted(splits, ids, side="right").astype(np.int64)


def quantile_splits(sample: np.ndarray, num_shards: int) -> np.ndarray:
    """num_shards - 1 (or fewer, deduplicated) split points at the quantiles of `sample`."""
    if len(sample) == 0 or num_shards <= 1:
        return np.zeros(0, dtype=np.uint64)
    ordered = np.sort(sample)
    positions = (np.arange(1, num_shards) * len(ordered)) // num_shards
    return sorted_unique(ordered[positions])


def log2_histogram(degrees: np.ndarray) -> dict[str, int]:
    """Counts of degrees by power-of-two bucket: '1', '2-3', '4-7', ..."""
    if len(degrees) == 0:
        return {}
    buckets = np.floor(np.log2(np.maximum(degrees, 1))).astype(np.int64)
    values, counts = np.unique(buckets, return_counts=True)
    return {bucket_label(int(b)): int(c) for b, c in zip(values, counts, strict=True)}


def bucket_label(bucket: int) -> str:
    low, high = 1 << bucket, (1 << (bucket + 1)) - 1
    return f"{bucket:02d}:{low}" if low == high else f"{bucket:02d}:{low}-{high}"


def ids_to_strings(ids: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(ids, type=pa.uint64()), pa.string())


def ts_to_arrow(ts: np.ndarray) -> pa.Array:
    """ms int64 with NO_TS -> nullable int64."""
    return pa.array(ts, type=pa.int64(), mask=ts == NO_TS)
