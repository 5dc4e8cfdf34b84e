"""core/spill.py: the pieces reader hands out rows in any order, a chunk at a time, the same rows as
a direct gather, reading each piece once."""

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
