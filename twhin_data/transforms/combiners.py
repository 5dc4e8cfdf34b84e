"""Small CombineFns every stage uses: sums of count dicts and unions of sets or ID arrays (bounded results)."""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.tables import sorted_unique


class SumDicts(beam.CombineFn):
    """Adds dicts (or Counters) of numbers key by key; the result is a plain dict sorted by key."""

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, acc: dict, item: dict) -> dict:
        for key, value in item.items():
            acc[key] = acc.get(key, 0) + value
        return acc

    def merge_accumulators(self, accs: Iterable[dict]) -> dict:
        out: dict = {}
        for acc in accs:
            self.add_input(out, acc)
        return out

    def extract_output(self, acc: dict) -> dict:
        return dict(sorted(acc.items()))


class SetUnion(beam.CombineFn):
    """Union of the iterables it is given (IDs, keys): one small result instead of one element per row.

    With ``sort=True`` the result is a sorted list, else a set.
    """

    def __init__(self, sort: bool = False):
        self._sort = sort

    def create_accumulator(self) -> set:
        return set()

    def add_input(self, acc: set, values: Iterable) -> set:
        acc.update(values)
        return acc

    def merge_accumulators(self, accs: Iterable[set]) -> set:
        return set().union(*accs)

    def extract_output(self, acc: set) -> set | list:
        return sorted(acc) if self._sort else acc


class IdUnion(beam.CombineFn):
    """Union of decimal ID strings as one sorted, unique ``uint64`` Arrow array (`id_numbers`).

    The inputs are Arrow arrays (or lists) of validated IDs (core.ids: at most 19 digits, so every
    one fits in 64 bits). Accumulators are numpy arrays, so they cross process boundaries as one
    buffer of 8 bytes per ID, and a lookup (`rows_with_ids`) is a binary search, not a hash set
    of strings rebuilt per table. Use it with ``CombineGlobally(IdUnion()).without_defaults()``
    and a side input ``AsSingleton(..., default_value=IdUnion.EMPTY)``: a default would turn the
    whole union into a Python list on its way to the side input.
    """

    EMPTY = pa.array([], pa.uint64())  # an Arrow array: Beam compares a side input's default with !=
    _COMPACT = 64  # arrays held before they are merged into one

    def create_accumulator(self) -> list:
        return []

    def add_input(self, acc: list, values) -> list:
        acc.append(sorted_unique(id_numbers(values)))
        return self._compact(acc) if len(acc) >= self._COMPACT else acc

    def merge_accumulators(self, accs: Iterable[list]) -> list:
        return self._compact([a for acc in accs for a in acc])

    def extract_output(self, acc: list) -> pa.Array:
        merged = self._compact(acc)
        return pa.array(merged[0], pa.uint64()) if merged else self.EMPTY

    @staticmethod
    def _compact(arrays: list) -> list:
        arrays = [a for a in arrays if len(a)]
        return [sorted_unique(np.concatenate(arrays))] if arrays else []


def id_numbers(ids) -> np.ndarray:
    """Decimal ID strings (Arrow array or list) -> their values as ``uint64`` (ArrowInvalid for a non-ID)."""
    if not isinstance(ids, (pa.Array, pa.ChunkedArray)):
        ids = pa.array(ids, pa.string())
    if ids.null_count:
        raise pa.ArrowInvalid("null ID")
    return pc.cast(ids, pa.uint64()).to_numpy(zero_copy_only=False).astype(np.uint64, copy=False)


def rows_with_ids(table: pa.Table, wanted: pa.Array) -> pa.Table:
    """The rows of `table` whose tweet_id is in `wanted` (the sorted uint64 IDs of `IdUnion`, a side input).

    A binary search per row; a table whose IDs are not all decimal is matched as strings (an ID
    with leading zeros may pass the number match: the join after it compares the strings).
    """
    if table.num_rows == 0 or len(wanted) == 0:
        return table.slice(0, 0)
    column, wanted = table.column("tweet_id"), wanted.to_numpy()
    try:
        values = id_numbers(column)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return table.filter(pc.is_in(column, value_set=pa.array(wanted).cast(pa.string())))
    found = wanted[np.minimum(np.searchsorted(wanted, values), len(wanted) - 1)] == values
    return table.filter(pa.array(found))
