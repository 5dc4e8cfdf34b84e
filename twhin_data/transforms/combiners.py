"""Small CombineFns every stage uses: sums of count dicts and unions of sets or ID arrays (bounded results)."""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc


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
    """Union of string IDs as one sorted, unique Arrow array; the inputs are arrays or lists of IDs.

    Accumulators are Arrow arrays, so they cross process boundaries as buffers, not as one Python
    string per ID. Use it with ``CombineGlobally(IdUnion()).without_defaults()`` and a side input
    ``AsSingleton(..., default_value=IdUnion.EMPTY)``: a default would turn the whole union into a
    Python list on its way to the side input.
    """

    EMPTY = pa.array([], pa.string())
    _COMPACT = 64  # arrays held before they are merged into one

    def create_accumulator(self) -> list:
        return []

    def add_input(self, acc: list, values) -> list:
        if not isinstance(values, (pa.Array, pa.ChunkedArray)):
            values = pa.array(values, pa.string())
        acc.append(pc.unique(values))
        return self._compact(acc) if len(acc) >= self._COMPACT else acc

    def merge_accumulators(self, accs: Iterable[list]) -> list:
        return self._compact([a for acc in accs for a in acc])

    def extract_output(self, acc: list) -> pa.Array:
        merged = self._compact(acc)
        if not merged:
            return self.EMPTY
        unique = merged[0]
        return unique.take(pc.sort_indices(unique))

    @staticmethod
    def _compact(arrays: list) -> list:
        chunks = [c for a in arrays for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a]) if len(c)]
        if not chunks:
            return []
        return [pc.unique(pa.concat_arrays([c.cast(pa.string()) for c in chunks]))]
