"""transforms/combiners: ID unions as uint64 arrays, and the row filter that reads them."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from twhin_data.transforms.combiners import IdUnion, rows_with_ids


def test_id_union_in_a_pipeline_is_sorted_unique_numbers():
    batches = [pa.array(["30", "1", "1600000000000000000"]), ["2", "30"], pa.chunked_array([["9999999999999999999"]])]
    with TestPipeline() as p:
        union = (
            p
            | beam.Create(batches)
            | beam.CombineGlobally(IdUnion()).without_defaults()
            | beam.Map(lambda a: a.to_pylist())
        )
        assert_that(union, equal_to([[1, 2, 30, 1600000000000000000, 9999999999999999999]]))


def test_id_union_merges_accumulators_and_empty():
    fn = IdUnion()
    a = fn.add_input(fn.create_accumulator(), ["5", "3"])
    b = fn.add_input(fn.create_accumulator(), pa.array(["4", "5"]))
    assert fn.extract_output(fn.merge_accumulators([a, b])).to_pylist() == [3, 4, 5]
    assert fn.extract_output(fn.create_accumulator()).equals(IdUnion.EMPTY)


def test_rows_with_ids_matches_numbers_and_falls_back_to_strings():
    fn = IdUnion()
    wanted = fn.extract_output(fn.add_input(fn.create_accumulator(), ["10", "12", "500"]))
    table = pa.table({"tweet_id": ["9", "10", "11", "12", "501", "500"], "n": list(range(6))})
    assert rows_with_ids(table, wanted).column("n").to_pylist() == [1, 3, 5]
    odd = pa.table({"tweet_id": ["10", "x12", None, "500"], "n": list(range(4))})  # not all decimal: as strings
    assert rows_with_ids(odd, wanted).column("n").to_pylist() == [0, 3]
    assert rows_with_ids(table, IdUnion.EMPTY).num_rows == 0
    assert rows_with_ids(table.slice(0, 0), wanted).num_rows == 0
