"""What under a `twhin-data run` output holds tweet IDs, as units of work for comply.

A unit is one file (or, for a benchmark, one language folder: its files refer to each other) of
a known kind. The layout is the one `twhin-data run` writes; folders that are absent are skipped.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from twhin_data.core import files

#: (folder under the output, kind) of the per-file units, in the order they are reported.
FILE_KINDS: tuple[tuple[str, str], ...] = (
    ("tweets", "tweets"),
    ("unavailable", "unavailable"),
    ("corpus", "corpus"),
    ("duplicates", "duplicates"),
    ("engagements", "engagements"),
    ("graph/tweets", "graph_tweets"),
    ("graph/edges", "graph_edges"),
    ("graph/users", "graph_users"),
    ("pairs", "pairs"),
    ("shards/mlm", "mlm"),
    ("shards/pairs", "pair_shards"),
)
#: Dead-letter folders: their rendered inputs may quote a tweet ID.
ERROR_FOLDERS = (
    "errors",
    "shards/errors",
    "benchmarks/hashtag/errors",
    "benchmarks/engagement/errors",
)
PBG_EDGES = "graph/pbg/edges"
BENCHMARKS = (("benchmarks/hashtag", "hashtag"), ("benchmarks/engagement", "engagement"))


@dataclass(frozen=True, order=True)
class Unit:
    """`path`: a file, or a benchmark's language folder; `folder`: the dataset folder it belongs to
    (marked incomplete while comply rewrites it); `rel`: `path` relative to the output."""

    kind: str
    path: str
    folder: str
    rel: str


def _list(folder: str, suffix: str) -> list[str]:
    if suffix == ".parquet":
        return files.list_parquet(folder)
    return sorted(p for p in files.list_files(folder) if p.endswith(suffix))


def discover(output: str) -> list[Unit]:
    """Every unit under `output`, sorted by kind and path (the same list on every run)."""
    units: list[Unit] = []

    def add(kind: str, path: str, folder: str) -> None:
        units.append(Unit(kind, path, folder, files.relative_to(path, output).replace("\\", "/")))

    for rel, kind in FILE_KINDS:
        folder = files.join(output, rel)
        for path in _list(folder, ".parquet"):
            add(kind, path, folder)
    for rel in ERROR_FOLDERS:
        for stage in files.list_dirs(files.join(output, rel)):
            for path in _list(stage, ".parquet"):
                add("errors", path, stage)
    pbg = files.join(output, PBG_EDGES)
    for path in _list(pbg, ".tsv"):
        add("pbg_tsv", path, pbg)
    for rel, kind in BENCHMARKS:
        root = files.join(output, rel)
        if files.exists(files.join(root, "manifest.json")):
            for lang in files.list_dirs(root):
                if files.list_parquet(lang) and posixpath.basename(lang.rstrip("/")) not in ("errors", "reports"):
                    add(kind, lang, root)
    return sorted(units)
