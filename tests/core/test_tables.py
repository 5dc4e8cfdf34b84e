"""core.tables: distinct keys and row groups by key, against plain numpy / Python references."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twhin_data.core.tables import groups, sorted_unique, split_table


@pytest.mark.parametrize("dtype", [np.uint64, np.int64, np.int32])
def test_sorted_unique_is_np_unique(dtype):
    rng = np.random.default_rng(3)
    high = min(np.iinfo(dtype).max, 2**62)
    for size, span in [(0, 10), (1, 10), (2, 1), (1000, 50), (5000, high)]:
        values = rng.integers(0, span, size).astype(dtype)
        got = sorted_unique(values)
        assert got.dtype == np.dtype(dtype)
        assert got.tolist() == sorted(set(values.tolist()))
        np.testing.assert_array_equal(got, np.unique(values))


def test_sorted_unique_takes_lists_strings_and_2d():
    assert sorted_unique([3, 1, 3, 2]).tolist() == [1, 2, 3]
    assert sorted_unique(np.array(["train", "validation", "train"])).tolist() == ["train", "validation"]
    assert sorted_unique(np.array([[2, 1], [1, 5]])).tolist() == [1, 2, 5]  # flattened, like np.unique
    assert sorted_unique(np.array([18446744073709551615, 0, 18446744073709551615], np.uint64)).tolist() == [
        0,
        18446744073709551615,
    ]


def test_groups_and_split_table_keep_row_order_within_a_key():
    keys = np.array([2, 0, 2, 1, 0, 2])
    assert [(k, rows.tolist()) for k, rows in groups(keys)] == [(0, [1, 4]), (1, [3]), (2, [0, 2, 5])]
    assert groups(np.array([], np.int64)) == []
    table = pa.table({"x": list("abcdef")})
    assert [(k, t.column("x").to_pylist()) for k, t in split_table(table, keys)] == [
        (0, ["b", "e"]),
        (1, ["d"]),
        (2, ["a", "c", "f"]),
    ]
