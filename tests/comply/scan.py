"""Test helper: every tweet ID an output folder holds, file by file, found independently of comply.

Parquet: every string column, list-of-string column and list-of-struct ``id`` field (packed
``tweet_ids``, pair IDs, candidate lists, references); the dead letters' rendered ``input`` by
its digit runs. Text files (PyTorch-BigGraph TSVs, JSON, Markdown, HTML, Python): digit runs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DIGITS = re.compile(r"\d{15,19}")
TEXT_SUFFIXES = (".tsv", ".json", ".md", ".html", ".py", ".txt")


def _strings(column: pa.ChunkedArray) -> list[str]:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return [v for v in column.to_pylist() if v is not None]
    if pa.types.is_list(kind):
        flat = pc.list_flatten(column)
        if pa.types.is_string(flat.type):
            return [v for v in flat.to_pylist() if v is not None]
        if pa.types.is_struct(flat.type) and "id" in [f.name for f in flat.type]:
            return [v for v in pc.struct_field(flat, "id").to_pylist() if v is not None]
    return []


def ids_in(path: Path) -> set[str]:
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        found: set[str] = set()
        for name in table.column_names:
            for value in _strings(table.column(name)):
                found.update(DIGITS.findall(value) if name == "input" or not value.isdigit() else [value])
        return found
    if path.suffix in TEXT_SUFFIXES or path.name.startswith(("t", "_")):
        return set(DIGITS.findall(path.read_text(encoding="utf-8", errors="replace")))
    return set()


def inventory(root: Path) -> dict[str, tuple[str, set[str]]]:
    """{relative path: (sha256, tweet IDs held)} of every file under `root`."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        out[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(), ids_in(path))
    return out
