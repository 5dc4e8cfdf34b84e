"""Resuming HydrateTweets: listing, stashing and reading a previous run's results and progress files."""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.transforms.hydrate.lookup import NAMESPACE

PROGRESS = "_progress"


def previous_result_files(output: str) -> list[tuple[str, str]]:
    """(tag, path) of every Parquet file a previous run left in `output`: final parts, progress
    files, and final parts stashed by an earlier --resume; tag is the parent folder's name."""
    found: set[tuple[str, str]] = set()
    for root in (
        files.join(output, "tweets"),
        files.join(output, "unavailable"),
        files.join(output, PROGRESS),
    ):
        try:
            paths = files.expand_inputs(root, suffixes=(".parquet",))
        except ConfigError:  # nothing there
            continue
        for path in paths:
            tag = posixpath.basename(posixpath.dirname(path.replace(os.sep, "/")))
            if tag in ("tweets", "unavailable"):
                found.add((tag, path))
    return sorted(found)


def stash_moves(output: str) -> dict[str, str]:
    """Where `stash_previous_parts` puts each previous final part: {path: new path} under
    ``_progress/previous-NNN/<tag>/`` (the first free NNN per tag). Reads only."""
    moves: dict[str, str] = {}
    for tag in ("tweets", "unavailable"):
        parts = [m.path for m in FileSystems.match([files.join(output, tag, "*.parquet")])[0].metadata_list]
        if not parts:
            continue
        n = 0
        while files.exists(files.join(output, PROGRESS, f"previous-{n:03d}", tag)):
            n += 1
        target = files.join(output, PROGRESS, f"previous-{n:03d}", tag)
        moves.update({path: files.join(target, posixpath.basename(path)) for path in parts})
    return moves


def results_after_stash(output: str, moves: dict[str, str]) -> list[tuple[str, str]]:
    """`previous_result_files(output)` as it will be once `moves` are done."""
    return sorted((tag, moves.get(path, path)) for tag, path in previous_result_files(output))


def stash_previous_parts(moves: dict[str, str]) -> None:
    """--resume: moves the previous final parts as `stash_moves` planned, so this run's writer
    starts from empty folders (a part it does not rewrite cannot survive as a stale file)."""
    if not moves:
        return
    for target in sorted({posixpath.dirname(new) for new in moves.values()}):
        if "://" not in target:
            os.makedirs(target, exist_ok=True)
    FileSystems.rename(list(moves), list(moves.values()))


def read_previous(item: tuple[str, str]) -> Iterable[tuple[str, pa.Table]]:
    tag, path = item
    table = files.read_parquet_table(path)
    Metrics.counter(NAMESPACE, f"previous_{tag}_rows").inc(table.num_rows)
    yield tag, table


class ReadPreviousResults(beam.PTransform):
    """Reads a previous run's tweets/unavailable parts and progress files as ``(tag, pa.Table)``.

    Args:
      paths: from `previous_result_files` (listed before the pipeline starts, so the parts this
        run rewrites are read as they were).
    """

    def __init__(self, paths: list[tuple[str, str]]):
        super().__init__()
        self._paths = paths

    def expand(self, pbegin):
        return (
            pbegin
            | "ListPrevious" >> beam.Create(self._paths)
            | "SpreadPrevious" >> beam.Reshuffle()
            | "ReadPrevious" >> beam.FlatMap(read_previous)
        )
