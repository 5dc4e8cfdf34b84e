"""comply's steps on one unit (a file, or a benchmark language folder): read, decide, rewrite.

Plain functions (no Beam) over `units.Unit`: `graph_removed_indices` and `degree_drops` compute
the graph's side facts, `is_affected` reads only the ID columns of a unit, `rewrite_unit` rewrites
an affected unit in place (temporary file + rename, the original's row-group size kept) and
returns one info dict per file it wrote. A file that holds no removed tweet is never written.
"""

from __future__ import annotations

import posixpath

import numpy as np
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.errors import InputRejectedError
from twhin_data.core.parquet import row_group_sizes
from twhin_data.transforms.comply import benchmarks
from twhin_data.transforms.comply.removals import removed_in
from twhin_data.transforms.comply.rewrite import (
    ID_COLUMNS,
    Context,
    hit_rows,
    rewrite_table,
    rewrite_tsv,
    tsv_hit,
)
from twhin_data.transforms.comply.units import Unit

REMOVED_FILE = "removed-ids.npy"


def load_removed(path: str) -> np.ndarray:
    """The sorted uint64 array the launcher wrote (np.save format)."""
    import io

    return np.load(io.BytesIO(files.read_bytes(path)), allow_pickle=False).astype(np.uint64)


def save_removed(path: str, ids: np.ndarray) -> None:
    import io

    sink = io.BytesIO()
    np.save(sink, np.asarray(ids, np.uint64), allow_pickle=False)
    files.write_bytes_atomic(path, sink.getvalue())


def graph_removed_indices(unit: Unit, removed: np.ndarray) -> list[int]:
    """graph/tweets: the indices of the removed tweets."""
    table = files.read_parquet_table(unit.path, ["index", "tweet_id"])
    hit = removed_in(table.column("tweet_id"), removed)
    return [int(i) for i in table.column("index").to_numpy(zero_copy_only=False)[hit]]


def degree_drops(unit: Unit, graph_removed: list[int]) -> dict[str, int]:
    """graph/edges: per user index (as a string: stats dicts have string keys), the edges to drop."""
    table = files.read_parquet_table(unit.path, ["lhs", "rhs"])
    indices = np.array(sorted(graph_removed), dtype=np.int64)
    hit = hit_rows("graph_edges", table, Context(np.zeros(0, np.uint64), indices))
    users, counts = np.unique(table.column("lhs").to_numpy(zero_copy_only=False)[hit], return_counts=True)
    return {str(int(u)): int(c) for u, c in zip(users, counts, strict=True)}


def _language_tables(folder: str) -> dict[str, pa.Table]:
    return {posixpath.basename(p.replace("\\", "/"))[: -len(".parquet")]: files.read_parquet_table(p) for p in files.list_parquet(folder)}


def is_affected(unit: Unit, ctx: Context) -> bool:
    """Whether the unit holds a removed tweet (reads its ID columns only); a damaged file stops the
    job with one line naming it, before any file is rewritten."""
    try:
        return _is_affected(unit, ctx)
    except (OSError, pa.ArrowException) as exc:
        raise InputRejectedError(f"{unit.path} is unreadable ({type(exc).__name__}: {exc}); comply changed nothing") from None


def _is_affected(unit: Unit, ctx: Context) -> bool:
    if unit.kind == "pbg_tsv":
        return tsv_hit(files.read_bytes(unit.path), ctx.removed)
    if unit.kind in ("hashtag", "engagement"):
        return benchmarks.affected(unit.kind, _language_tables(unit.path), ctx.removed)
    return bool(hit_rows(unit.kind, files.read_parquet_table(unit.path, list(ID_COLUMNS[unit.kind]), present_only=True), ctx).any())


def _write(path: str, table: pa.Table, unit: Unit, rel: str, info: dict) -> dict:
    sizes = row_group_sizes(path)  # the original's row-group size, kept
    kwargs = {"row_group_size": sizes[0]} if sizes and sizes[0] else {}
    written = files.write_parquet_atomic(path, table, **kwargs)
    return {**info, "kind": unit.kind, "rel": rel, "folder": unit.folder, "bytes": written["bytes"], "sha256": written["sha256"]}


def rewrite_unit(unit: Unit, ctx: Context) -> list[dict]:
    """Rewrites an affected unit in place; one info per file written (rel path, rows, hash, extras)."""
    if unit.kind == "pbg_tsv":
        data, info = rewrite_tsv(files.read_bytes(unit.path), ctx.removed)
        files.write_bytes_atomic(unit.path, data)
        return [{**info, "kind": unit.kind, "rel": unit.rel, "folder": unit.folder}]
    if unit.kind in ("hashtag", "engagement"):
        tables = _language_tables(unit.path)
        infos = []
        for stem, (table, info) in sorted(benchmarks.rewrite_language(unit.kind, tables, ctx.removed).items()):
            path = files.join(unit.path, f"{stem}.parquet")
            lang = posixpath.basename(unit.path.rstrip("/").replace("\\", "/"))
            extra = {"lang": lang, "name": stem, "manifest_path": f"{lang}/{stem}.parquet"}
            infos.append(_write(path, table, unit, f"{unit.rel}/{stem}.parquet", {**info, **extra}))
        return infos
    table = files.read_parquet_table(unit.path)
    new, info = rewrite_table(unit.kind, table, ctx)
    return [_write(unit.path, new, unit, unit.rel, info)]
