"""Small CombineFns every stage uses: sums of count dicts and unions of sets (bounded results)."""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam


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
