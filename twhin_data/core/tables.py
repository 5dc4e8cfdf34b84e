"""Grouping the rows of an Arrow table by an integer key (shard, bucket, part), no Beam."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


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
