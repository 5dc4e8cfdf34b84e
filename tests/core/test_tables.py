"""core.tables: distinct keys and row groups by key, against plain numpy / Python references."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twhin_data.core.tables import groups, lexsort, sorted_unique, split_table


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


def _random_keys(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """2-5 keys of the kinds the graph stage sorts by, with many ties."""
    keys = []
    for _ in range(int(rng.integers(2, 6))):
        kind = int(rng.integers(0, 5))
        if kind == 0:
            keys.append(rng.integers(0, 4, n).astype(np.int8))
        elif kind == 1:  # IDs above 2**63
            keys.append(rng.integers(0, 50, n).astype(np.uint64) + np.uint64(2**63))
        elif kind == 2:
            keys.append(-rng.integers(0, 5, n).astype(np.int64))
        elif kind == 3:  # scores with NaN, -0.0 and 0.0
            score = (rng.integers(-3, 3, n) / 2).astype(np.float32)
            score[rng.random(n) < 0.1] = np.nan
            score[score == 0] = np.where(rng.random(int((score == 0).sum())) < 0.5, -0.0, 0.0)
            keys.append(score)
        else:
            keys.append(rng.random(n) < 0.5)
    return keys


def test_lexsort_is_np_lexsort():
    rng = np.random.default_rng(11)
    for _ in range(60):
        keys = _random_keys(rng, int(rng.integers(1, 2_000)))
        got = lexsort(keys)
        assert got.dtype == np.int64 and got.flags.writeable
        assert got.tolist() == np.lexsort(keys).tolist()
    # keys that already come in sorted runs (the merge path)
    runs = np.concatenate([np.sort(rng.integers(0, 100, 500)) for _ in range(4)]).astype(np.uint64)
    ties = rng.integers(0, 3, len(runs))
    assert lexsort((ties, runs)).tolist() == np.lexsort((ties, runs)).tolist()
    assert lexsort((np.zeros(0, np.int64),)).tolist() == []
    with pytest.raises(ValueError, match="at least one key"):
        lexsort(())
