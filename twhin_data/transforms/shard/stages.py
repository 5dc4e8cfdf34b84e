"""Two-stage shards, as the paper trained: stage 1 (MLM) on tweets without engagement, stage 2
(MLM + the social loss) on the engaged tweets and their pairs.

With ``shard --engaged DIR`` (graph's ``graph/tweets/``: every tweet that kept engagements
after graph's filters), each tweet's split label gains its stage: ``stage1_train``,
``stage1_validation``, ``stage2_train``, ``stage2_validation``; the MLM files are named by label
(``mlm/stage2_train-00000-of-00003.parquet``), the manifest has a ``stages`` section and the
dataset card the configs ``stage1`` and ``stage2`` (plus ``pairs``, which are stage 2's pair
batches). ``--stages 1`` or ``2`` writes one stage; the other stage's tweets are counted
(``stage_not_selected``). Without --engaged (no engagement data) every tweet is stage 1 and the
labels stay ``train``/``validation`` (config ``default``).

The engaged IDs are held per worker as one sorted uint64 array (8 bytes a tweet), read once per
process. Pure functions, no Beam.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.tables import sorted_unique

_ENGAGED: dict[str, np.ndarray] = {}


def load_engaged(path: str) -> np.ndarray:
    """Sorted distinct tweet IDs (uint64) of a graph/tweets folder or Parquet file; cached per process."""
    if path not in _ENGAGED:
        paths = files.list_parquet(path) or [path]
        ids = [files.read_parquet_table(p, ["tweet_id"]).column("tweet_id") for p in paths]
        column = pa.chunked_array([c for chunked in ids for c in chunked.chunks], pa.string())
        values = np.array(column.to_pylist(), dtype=np.uint64) if len(column) else np.zeros(0, np.uint64)
        _ENGAGED[path] = sorted_unique(values)
    return _ENGAGED[path]


def stage_of(ids: np.ndarray, engaged: np.ndarray) -> np.ndarray:
    """1 or 2 per uint64 tweet ID: 2 when the tweet is engaged."""
    if engaged.size == 0:
        return np.ones(ids.size, np.int8)
    at = np.minimum(np.searchsorted(engaged, ids), engaged.size - 1)
    return np.where(engaged[at] == ids, 2, 1).astype(np.int8)


def labels(validation: np.ndarray, stage: np.ndarray | None) -> np.ndarray:
    """Split label per row: train/validation, prefixed with ``stageN_`` when stages are on."""
    split = np.where(validation, "validation", "train")
    if stage is None:
        return split
    return np.char.add(np.where(stage == 2, "stage2_", "stage1_"), split)
