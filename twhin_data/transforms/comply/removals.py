"""The removal sources of `twhin-data comply`, reduced to one sorted array of tweet IDs.

Tweet IDs are decimal strings below 2**64, so a set of removed IDs is a sorted ``uint64`` array:
8 bytes an ID (10M removals: 80 MB), and membership of a whole column is one `np.searchsorted`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.core.ids import ID_RE, id_mask

#: unavailable/ statuses that mean "this tweet is gone for us": deleted (or never existed) and
#: protected / suspended authors. `unavailable`, `failed` and `invalid_id` are not verdicts.
GONE_STATUSES = ("not_found", "not_authorized")
_DIGITS = re.compile(rb"\d{1,20}")


@dataclass
class Removals:
    """Removed IDs (sorted, unique), how many came from each reason, and the input lines rejected."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    reasons: Counter = field(default_factory=Counter)
    rejected: list[dict] = field(default_factory=list)

    def add(self, ids: Iterable[str], reason: str) -> None:
        values = np.array([int(i) for i in ids], dtype=np.uint64)
        self.reasons[reason] += len(values)
        self.ids = np.union1d(self.ids, values).astype(np.uint64)


def read_id_list(path: str, removals: Removals) -> None:
    """One tweet ID per line (blank lines and ``#`` comments skipped); a bad line is a rejection."""
    text = files.read_bytes(path).decode("utf-8", errors="replace")
    good = []
    for number, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].strip().strip("\"'")
        if not value:
            continue
        if ID_RE.match(value):
            good.append(value)
        else:
            removals.rejected.append({"line": number, "value": line[:200], "source": path})
    removals.add(good, "requested")


def read_unavailable(folder: str, removals: Removals) -> None:
    """A re-hydration's ``unavailable/``: its not_found and not_authorized IDs, by status."""
    for path in files.list_parquet(folder):
        table = files.read_parquet_table(path, columns=["tweet_id", "status"])
        for status in GONE_STATUSES:
            ids = table.filter(pc.equal(table.column("status"), status)).column("tweet_id").to_pylist()
            removals.add([i for i in ids if i and ID_RE.match(i)], status)


def to_uint64(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(values, valid): an ID column as uint64; rows that are null or not digits are not valid."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_integer(arr.type):
        valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False))
        return pc.fill_null(arr, 0).cast(pa.uint64()).to_numpy(zero_copy_only=False), valid
    ok = id_mask(arr)
    valid = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    digits = pc.if_else(ok, arr, "0")
    return pc.cast(digits, pa.uint64()).to_numpy(zero_copy_only=False), valid


def member(values: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Boolean mask: which `values` are in the sorted array `removed`."""
    if not len(removed) or not len(values):
        return np.zeros(len(values), dtype=bool)
    at = np.searchsorted(removed, values)
    at[at == len(removed)] = 0
    return removed[at] == values


def removed_in(column: pa.Array | pa.ChunkedArray, removed: np.ndarray) -> np.ndarray:
    """Mask of the rows of a tweet-ID column (string or integer) that are removed."""
    values, valid = to_uint64(column)
    return member(values, removed) & valid


def removed_in_lists(column: pa.ChunkedArray | pa.Array, removed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a list<string> ID column: (per element mask, per row "holds one" mask)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    flat = pc.list_flatten(arr)
    hit = removed_in(flat, removed) if len(flat) else np.zeros(0, bool)
    parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False) if len(flat) else np.zeros(0, np.int64)
    rows = np.zeros(len(arr), dtype=bool)
    rows[parents[hit]] = True
    return hit, rows


def mentions(texts: Iterable[str | None], removed: np.ndarray) -> np.ndarray:
    """Rows of free text (a dead letter's rendered input) that contain a removed ID as a number."""
    out = []
    for text in texts:
        numbers = [int(m) for m in _DIGITS.findall((text or "").encode("utf-8")) if len(m) < 20]
        out.append(bool(numbers) and bool(member(np.array(numbers, np.uint64), removed).any()))
    return np.array(out, dtype=bool)
