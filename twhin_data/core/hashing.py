"""Stable hashes (same value on every machine, process and run) for sharding and sampling."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_MASK = (1 << 64) - 1


def stable_hash64(value: str | bytes, salt: str = "") -> int:
    """A 64-bit unsigned hash of `value` (blake2b), stable across processes and runs."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else value
    digest = hashlib.blake2b(data, digest_size=8, key=salt.encode("utf-8")[:64]).digest()
    return int.from_bytes(digest, "little")


def unit_interval(value: str | bytes, salt: str = "") -> float:
    """Maps `value` to a stable float in [0, 1), for deterministic sampling and splits."""
    return (stable_hash64(value, salt) >> 11) / float(1 << 53)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer, vectorized over uint64 (wraps around; callers silence overflow)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hash_ids(ids: pa.Array | pa.ChunkedArray | list[str], salt: str = "") -> np.ndarray:
    """Vectorized stable uint64 hash of decimal tweet/user ID strings (digits only, < 2**64).

    Args:
      ids: decimal ID strings (validated upstream against core.ids.ID_PATTERN).
      salt: mixes a per-purpose salt in, so shard and split assignment are independent.
    """
    arr = pa.chunked_array([ids]) if isinstance(ids, list) else ids
    values = pc.cast(arr, pa.uint64()).to_numpy(zero_copy_only=False).astype(np.uint64)
    salt_value = np.uint64(stable_hash64(salt) if salt else 0)
    with np.errstate(over="ignore"):
        return splitmix64(values ^ salt_value)


def hash_id(tweet_id: str, salt: str = "") -> int:
    """Scalar form of `hash_ids` (same value for the same ID and salt)."""
    return int(hash_ids([tweet_id], salt)[0])


def id_unit_interval(ids: pa.Array | pa.ChunkedArray | list[str], salt: str = "") -> np.ndarray:
    """Vectorized stable float64 in [0, 1) per ID, for splits and resampling."""
    return (hash_ids(ids, salt) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def shard_of(keys: pa.Array | pa.ChunkedArray, num_shards: int, salt: str) -> np.ndarray:
    """Stable shard index per key: vectorized for digit IDs, per-row blake2b otherwise."""
    try:
        return (hash_ids(keys, salt) % np.uint64(num_shards)).astype(np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
        values = keys.to_pylist()
        return np.array(
            [stable_hash64("" if v is None else str(v), salt) % num_shards for v in values], dtype=np.int64
        )
