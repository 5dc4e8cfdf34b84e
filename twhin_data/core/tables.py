"""Grouping the rows of an Arrow table by an integer key (shard, bucket, part), distinct keys and
multi-key sort orders; no Beam."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def sorted_unique(values) -> np.ndarray:
    """The sorted distinct values of an array of IDs, codes or labels (what ``np.unique(values)`` returns).

    A sort and a neighbour compare: numpy 2.3+ sends a plain ``np.unique`` without ``return_*``
    through a hash table first, which measured 7-17x slower on a million 64-bit IDs (1.2 s against
    0.07 s) on this project's bench machine.
    """
    values = np.sort(np.asarray(values).ravel())
    if values.size < 2:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


def lexsort(keys: Sequence[np.ndarray]) -> np.ndarray:
    """``np.lexsort(keys)``, the same int64 order (the last key is the primary one; stable, so ties
    keep their row order), computed by Arrow's multi-key sort.

    Arrow sorts on the keys it needs and merges runs that are already in order: on the graph
    stage's edge tables (1M rows, 2-6 keys) it measured 1.1-1.7x faster than ``np.lexsort``, and
    2.8x on slices that each come sorted. NaN sorts last and -0.0 equals 0.0, as in numpy.
    """
    if not keys:
        raise ValueError("lexsort needs at least one key")
    if len(keys[0]) == 0:
        return np.zeros(0, np.int64)
    names = [f"k{i}" for i in range(len(keys))]
    table = pa.table(dict(zip(names, keys, strict=True)))
    order = pc.sort_indices(table, sort_keys=[(name, "ascending") for name in reversed(names)])
    return order.to_numpy().astype(np.int64)  # a writable array, as np.lexsort's


def groups(keys: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(key, row indices)`` per distinct key: keys ascending, rows in their original order."""
    if len(keys) == 0:
        return []
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    return [(int(keys[rows[0]]), rows) for rows in np.split(order, bounds)]


def split_table(table: pa.Table, keys: np.ndarray) -> list[tuple[int, pa.Table]]:
    """Splits `table` by the aligned integer `keys`: ``[(key, rows of that key)]``, keys ascending."""
    return [(key, table.take(pa.array(rows))) for key, rows in groups(keys)]
