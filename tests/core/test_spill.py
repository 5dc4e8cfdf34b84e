"""core/spill.py: the pieces reader hands out rows in any order, a chunk at a time, the same rows as
a direct gather, reading each piece once; a slice index gives each key the slices of its rows."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from twhin_data.core import spill

SCHEMA = pa.schema([("id", pa.int64()), ("tokens", pa.list_(pa.int32())), ("lang", pa.string())])


def _pieces(folder: str, rng: np.random.Generator) -> list:
    pieces = []
    for f in range(5):
        n = int(rng.integers(20, 60))
        table = pa.table(
            {
                "id": pa.array(np.arange(n) + 1000 * f),
                "tokens": pa.array([[int(x)] * int(x % 7) for x in rng.integers(0, 100, n)], pa.list_(pa.int32())),
                "lang": pa.array(rng.choice(["en", "ja", None], n).tolist(), pa.string()),
            },
            schema=SCHEMA,
        )
        parts = [(0, table.slice(0, 10)), (1, table.slice(10))]
        refs = spill.write_slices(os.path.join(folder, f"piece-{f}.arrow"), SCHEMA, parts)
        for (_, part), (_, ref) in zip(parts, refs, strict=True):
            rows = None if f % 2 else np.flatnonzero(rng.random(part.num_rows) < 0.7)  # every row, or some
            pieces.append((ref, rows))
    return pieces


@pytest.mark.parametrize("files_at_once", [256, 3, 1])
def test_chunks_equal_a_direct_gather_in_any_order(tmp_path, monkeypatch, files_at_once):
    monkeypatch.setattr(spill, "MAX_CHUNK_FILES", files_at_once)
    rng = np.random.default_rng(files_at_once)
    shard = spill.Pieces(_pieces(str(tmp_path / "in"), rng), SCHEMA)
    rows = rng.permutation(len(shard))[: len(shard) - 7]  # a hash-like order, some rows left out
    starts = np.r_[0, np.sort(rng.choice(np.arange(1, len(rows)), 9, replace=False))]
    chunks = list(shard.chunks(["tokens", "id"], rows, starts, str(tmp_path / "chunks")))
    ends = np.r_[starts[1:], len(rows)]
    assert [t.num_rows for t in chunks] == (ends - starts).tolist()
    for table, first, last in zip(chunks, starts, ends, strict=True):
        assert table.equals(shard.columns(["tokens", "id"], rows[first:last]))
    assert not os.listdir(tmp_path / "chunks")  # each chunk file is removed once read
    lengths = [pc.list_value_length(t.column("tokens")).to_numpy() for t in chunks]
    assert shard.list_lengths("tokens")[rows].tolist() == np.concatenate(lengths).tolist()


def test_slice_index_gives_each_key_the_slices_write_split_returned(tmp_path):
    rng = np.random.default_rng(3)
    parts, want, rows_of, indexes = 9, {}, {}, []
    for f, kind in enumerate(["b", "a", "a"]):  # files named out of order; two kinds
        keys = rng.choice([0, 2, 3, 8], 200)  # keys 1 and 4..7 hold nothing
        ids = np.arange(200) + 1000 * f
        table = pa.table({"id": ids, "tokens": pa.array([[1]] * 200, pa.list_(pa.int32())), "lang": ["en"] * 200})
        refs = spill.write_split(str(tmp_path / f"f{2 - f}.arrow"), SCHEMA, table.cast(SCHEMA), keys)
        for key, ref in refs:
            want.setdefault(key, []).append((kind, ref))
            rows_of.setdefault(key, set()).update(ids[keys == key].tolist())
        indexes += [(kind, index) for index in spill.SliceIndex.of(refs, parts)]
    assert len(indexes) == 3 and all(index.offsets.dtype == np.int32 for _, index in indexes)
    for key in range(parts):
        got = spill.slices_of(indexes, key)
        assert got == sorted(want.get(key, []), key=lambda item: (item[1].path, item[0]))
        ids = spill.read_slices([ref for _, ref in got], SCHEMA).column("id").to_pylist()
        assert sorted(ids) == sorted(rows_of.get(key, set()))  # exactly the rows written with that key
    assert spill.SliceIndex.of([], parts) == []
    with pytest.raises(ValueError, match="outside"):
        spill.SliceIndex.of([(parts, spill.SliceRef("x", 0, 1))], parts)


@pytest.mark.parametrize("keys", [[0, 0, 0, 0, 0, 0], [0, 0, 2, 2, 2, 5], [2, 0, 2, 5, 0, 2]])
def test_write_split_gives_each_key_its_rows_in_order_sorted_or_not(tmp_path, keys):
    keys = np.array(keys, np.int64)
    table = pa.table({"id": pa.array(np.arange(6) * 10, pa.int64())})
    refs = spill.write_split(str(tmp_path / "s.arrow"), table.schema, table, keys)
    assert [key for key, _ in refs] == sorted(set(keys.tolist()))
    for key, ref in refs:
        got = spill.read_slices([ref], table.schema).column("id").to_pylist()
        assert got == (np.flatnonzero(keys == key) * 10).tolist()  # original row order within a key
