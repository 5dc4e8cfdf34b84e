"""Deterministic Parquet parts (pure, no Beam): which part a row goes to, and writing one part.

A dataset is written as ``part-{i:05d}-of-{n:05d}.parquet``: a row goes to the part of a salted
stable hash of its `key` column, and the rows of a part are sorted by `sort_by`, so the same rows
give the same bytes on every runner and whatever order they arrive in. `io.WriteDataset` (tables
through a shuffle) and the steps that hand rows over in spill files (graph) both write with these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.hashing import shard_of
from twhin_data.core.tables import split_table
from twhin_data.schemas import conform

#: The part salt: it must not depend on the output path, so the same rows go to the same part anywhere.
SALT = "twhin-data-parts"


@dataclass(frozen=True)
class PartSpec:
    """One output dataset: folder, schema (parts are conformed to it), part key, row order, parts."""

    path: str
    schema: pa.Schema
    key: str
    sort_by: tuple[str, ...]
    num_shards: int = 1
    name: str = ""
    salt: str = SALT


def part_keys(table: pa.Table, spec: PartSpec) -> np.ndarray:
    """The part of each row of `table`."""
    if table.num_rows == 0:
        return np.zeros(0, np.int64)
    return shard_of(table.column(spec.key), spec.num_shards, spec.salt)


def split_parts(table: pa.Table, spec: PartSpec) -> list[tuple[int, pa.Table]]:
    """``(part, rows)`` for the rows of `table` (parts ascending)."""
    return split_table(table, part_keys(table, spec))


def write_part(spec: PartSpec, part: int, tables: list[pa.Table]) -> dict:
    """Conforms, concatenates and sorts one part's tables and writes the file atomically; returns
    ``{"dataset", "shard", "path", "rows", "bytes", "sha256"}``."""
    table = pa.concat_tables([conform(t, spec.schema) for t in tables]) if tables else spec.schema.empty_table()
    table = table.sort_by([(c, "ascending") for c in spec.sort_by])
    filename = f"part-{part:05d}-of-{spec.num_shards:05d}.parquet"
    info = files.write_parquet_atomic(files.join(spec.path, filename), table)
    return {"dataset": spec.name, "shard": part, **info}
