"""ComplyOutputs: comply's steps (steps.py) wired as one Beam job that runs locally and on Dataflow.

1. The removed IDs: one sorted uint64 array the launcher saved, read once as a side input.
2. The graph's side facts: the indices of removed tweets in graph/tweets, then (from graph/edges)
   how many edges each user loses; both small, both side inputs.
3. Scan: every unit reads its ID columns only and is kept when it holds a removed tweet, so the
   rewrite costs follow the files affected, not the size of the output.
4. Mark: each dataset folder with an affected unit gets ``_INCOMPLETE`` (shards lose
   ``COMPLETED``) before any of its files is rewritten; a job killed half way leaves them so, and
   readers refuse them until a rerun of comply (idempotent) finishes.
5. Rewrite the affected units in place; their infos are the output.
"""

from __future__ import annotations

import hashlib
import json
import time

import apache_beam as beam
import numpy as np

from twhin_data.core import files, progress
from twhin_data.transforms.combiners import SumDicts
from twhin_data.transforms.comply.rewrite import Context
from twhin_data.transforms.comply.steps import (
    degree_drops,
    graph_removed_indices,
    is_affected,
    load_removed,
    rewrite_unit,
)
from twhin_data.transforms.comply.units import Unit

STAGE = "comply"
COMPLETED = "COMPLETED"


def _context(removed: np.ndarray, graph_removed: list[int], drops: dict[str, int]) -> Context:
    return Context(
        removed=removed,
        graph_removed=np.array(sorted(graph_removed), dtype=np.int64),
        degree_drop={int(k): int(v) for k, v in drops.items()},
    )


def _scan(unit: Unit, removed, graph_removed, drops) -> list[Unit]:
    hit = is_affected(unit, _context(removed, graph_removed, drops))
    progress.advance(STAGE, 1)
    return [unit] if hit else []


def _mark(folder: str) -> str:
    """Marks one dataset folder incomplete (remembering which stage wrote it, and whether it had a
    ``_SUCCESS`` marker, for `finish_folder`); a shards folder also loses COMPLETED."""
    marker = files.join(folder, files.INCOMPLETE)
    if not files.exists(marker):  # a rerun after a crash keeps the first run's record
        success = files.join(folder, files.SUCCESS)
        writer = json.loads(files.read_bytes(success)).get("stage") if files.exists(success) else None
        files.write_json(marker, {"stage": STAGE, "writer": writer, "had_success": writer is not None})
        files.remove(success)
    parent = folder.rstrip("/").rsplit("/", 1)[0]
    for candidate in (folder, parent):
        if files.exists(files.join(candidate, COMPLETED)):
            files.remove(files.join(candidate, COMPLETED))
    return folder


def finish_folder(folder: str) -> None:
    """Undoes `_mark` once the folder's rewrites are done: ``_SUCCESS`` again (under the stage that
    first wrote the folder) where there was one, and no ``_INCOMPLETE``."""
    marker = files.join(folder, files.INCOMPLETE)
    if not files.exists(marker):
        return
    record = json.loads(files.read_bytes(marker))
    if record.get("had_success"):
        files.finish_output(folder, record.get("writer") or STAGE)
    else:
        files.remove(marker)


def _rewrite(unit: Unit, removed, graph_removed, drops, marked: int, ledger: str) -> list[dict]:
    del marked  # a side input only so that every folder is marked before the first rewrite
    infos = rewrite_unit(unit, _context(removed, graph_removed, drops))
    for info in infos:  # kept until the run finishes: a rerun after a crash still knows them
        record = {**info, "sequence": time.time_ns()}
        name = hashlib.sha1(info["rel"].encode("utf-8")).hexdigest()[:16]
        files.write_json(files.join(ledger, f"{name}-{record['sequence']}.json"), record)
    return infos


def read_ledger(ledger: str) -> list[dict]:
    """The infos of every rewrite since the last finished run, merged per file: rows before from
    the first rewrite, the file's state (rows after, bytes, sha256, ...) from the last, removed
    counts summed."""
    by_rel: dict[str, dict] = {}
    records = [json.loads(files.read_bytes(p)) for p in files.list_files(ledger) if p.endswith(".json")]
    for record in sorted(records, key=lambda r: (r["rel"], r["sequence"])):
        first = by_rel.get(record["rel"])
        if first is None:
            by_rel[record["rel"]] = record
            continue
        merged = {**record, "rows_before": first["rows_before"]}
        for key in ("tweets_removed", "tokens_removed"):
            if key in first:
                merged[key] = first[key] + record.get(key, 0)
        langs = dict(first.get("langs_removed", {}))
        for lang, value in record.get("langs_removed", {}).items():
            old = langs.get(lang)
            langs[lang] = value if old is None else ([a + b for a, b in zip(old, value, strict=True)] if isinstance(value, list) else old + value)
        if langs:
            merged["langs_removed"] = dict(sorted(langs.items()))
        by_rel[record["rel"]] = merged
    return [{k: v for k, v in r.items() if k != "sequence"} for _, r in sorted(by_rel.items())]


class ComplyOutputs(beam.PTransform):
    """``pbegin`` -> the infos of every file rewritten (see steps.rewrite_unit)."""

    def __init__(self, units: list[Unit], removed_path: str, ledger: str):
        super().__init__()
        self._units = sorted(units)
        self._removed_path = removed_path
        self._ledger = ledger

    def expand(self, pbegin):
        removed = pbegin | "RemovedPath" >> beam.Create([self._removed_path]) | "LoadRemoved" >> beam.Map(load_removed)
        removed_view = beam.pvalue.AsSingleton(removed)
        graph_tweets = [u for u in self._units if u.kind == "graph_tweets"]
        graph_removed = (
            pbegin
            | "GraphTweetFiles" >> beam.Create(graph_tweets)
            | "RemovedIndices" >> beam.FlatMap(graph_removed_indices, removed=removed_view)
            | "AllRemovedIndices" >> beam.combiners.ToList()
        )
        graph_view = beam.pvalue.AsSingleton(graph_removed)
        edges = [u for u in self._units if u.kind == "graph_edges"]
        drops = (
            pbegin
            | "EdgeFiles" >> beam.Create(edges)
            | "DegreeDrops" >> beam.Map(degree_drops, graph_removed=graph_view)
            | "AllDegreeDrops" >> beam.CombineGlobally(SumDicts())
        )
        views = {"removed": removed_view, "graph_removed": graph_view, "drops": beam.pvalue.AsSingleton(drops)}
        affected = (
            pbegin
            | "Units" >> beam.Create(self._units)
            | "SpreadUnits" >> beam.Reshuffle()
            | "Scan" >> beam.FlatMap(_scan, **views)
        )
        marked = (
            affected
            | "Folders" >> beam.Map(lambda unit: unit.folder)
            | "DistinctFolders" >> beam.Distinct()
            | "MarkIncomplete" >> beam.Map(_mark)
            | "CountMarked" >> beam.combiners.Count.Globally()
        )
        marked_view = beam.pvalue.AsSingleton(marked)
        return affected | "Rewrite" >> beam.FlatMap(_rewrite, marked=marked_view, ledger=self._ledger, **views)
