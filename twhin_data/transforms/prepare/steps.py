"""Prepare's pooled steps (pure, no Beam): slices go through files, only their names through shuffles.

With ``--workers N`` the main process must do almost nothing per tweet, or it caps the speed-up
(docs/scale-up.md). So the three heavy steps are pure functions run by `PoolMapFn` processes
(inline with one worker or on Dataflow), and they hand rows to each other as Arrow IPC files
under a temporary directory of the output (local, or gs:// through Beam FileSystems):

1. `spill_task` (per read task): read, normalize, language ID, filters (transforms/prepare/table.py),
   then ONE file per task holding one record batch range per dedup bucket; emits
   ``(bucket, SliceRef)``, dead letters and stats;
2. `dedup_bucket` (per bucket, after a GroupByKey of the small refs): reads its slices in task
   order, dedups (transforms/prepare/dedup.py), and writes ONE file per bucket holding one batch range
   per output part (the part ``WriteDataset`` would pick: salted hash of tweet_id); emits
   ``(part, SliceRef)``, stats and the language counts resampling needs;
3. `write_part` (per output part, after a second GroupByKey of refs, with the resampling rates
   from the global language counts): reads its slices in bucket order, resamples
   (transforms/prepare/resample.py), sorts by tweet_id (ties: source_tweet_id, text) and writes
   ``part-XXXXX-of-YYYYY.parquet`` itself, with the same bytes as ``WriteDataset`` where tweet
   IDs are unique.

Every file name derives from a task index, bucket or part, and every read concatenates slices
in name order, so the bytes written do not depend on the number of workers or arrival order.
Files are written atomically (temp + rename): a retried bundle rewrites the same names.
`transforms/prepare/transform.py` (PrepareTweets) wires the steps; pipelines/prepare.py removes the
temporary directory in finish(). This module imports no Beam (the fork server preloads it:
core/pool.py); side outputs are `Tagged`.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.core.hashing import shard_of
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, read_slices, write_slices
from twhin_data.core.tables import split_table
from twhin_data.core.tags import AUTHORS, COUNTS, STATS
from twhin_data.schemas import conform
from twhin_data.schemas.corpus import CORPUS
from twhin_data.text.contamination import match_view
from twhin_data.text.minhash import LshParams
from twhin_data.transforms.prepare import near_dedup
from twhin_data.transforms.prepare import stats as st
from twhin_data.transforms.prepare import table as prep
from twhin_data.transforms.prepare.author_cap import bucket_authors, cap_table
from twhin_data.transforms.prepare.dedup import dedup_with_map, drop_duplicate_ids
from twhin_data.transforms.prepare.read import ReadTask
from twhin_data.transforms.prepare.resample import resample_table

STAGE = prep.STAGE
#: WriteDataset's default salt: corpus rows land in the same part as `WriteDataset` would put them.
PART_SALT = "twhin-data-parts"
#: Row order inside a part: tweet_id like WriteDataset, then a total order for rows sharing an ID
#: (a retweet kept beside its original when their texts differ), so the bytes never depend on
#: the bucket count or the order slices arrive in.
PART_ORDER = [("tweet_id", "ascending"), ("source_tweet_id", "ascending"), ("text", "ascending")]
#: The rows between dedup and the writer: the corpus columns (dedup_table's output).
CORPUS_LAYOUT = prep.CORPUS_LAYOUT


def spill_task(item: tuple[tuple[int, int], ReadTask], *, config: prep.PrepareConfig, tmp: str) -> list:
    """Step 1 (pool function): prepare one read task, spill its kept rows by dedup bucket."""
    (file_index, task_index), task = item
    outputs, slices = [], []
    for out in prep.prepare_task(task, config):
        if isinstance(out, Tagged):
            outputs.append(out)
        else:
            slices.append(out)
    path = files.join(tmp, "buckets", f"task-{file_index:06d}-{task_index:06d}.arrow")
    outputs.extend(write_slices(path, prep.KEPT, slices))
    return outputs


def dedup_bucket(
    item: tuple[int, Iterable[SliceRef]],
    *,
    exact: bool,
    num_parts: int,
    tmp: str,
    max_per_author: int = 0,
    view: bool = False,
    near: LshParams | None = None,
    partitions: int = 1,
) -> list:
    """Step 2 (pool function): dedup one text-hash bucket, spill the kept rows by output part (and,
    with a per-author cap, each author's count and smallest hashes: author_cap.py; with `near`,
    the MinHash band rows and the bucket's duplicates: near_dedup.spill_bands)."""
    bucket, refs = item
    table = read_slices(refs, prep.KEPT)
    kept, stats, removed, keys = dedup_with_map(table, exact=exact, view=view)
    stats_dict = stats.to_dict()
    outputs: list = [
        Tagged(STATS, stats_dict),
        Tagged(COUNTS, dict(stats_dict.get("lang_before", {}))),
    ]
    if max_per_author:
        outputs.extend(Tagged(AUTHORS, entry) for entry in bucket_authors(kept, max_per_author))
    views = (keys if view else [match_view(k) or k for k in keys]) if near is not None else []
    outputs.extend(
        near_dedup.spill_bands(
            kept, views, removed, params=near, partitions=partitions, tmp=tmp, bucket=bucket
        )
    )
    if kept.num_rows:
        parts = shard_of(kept.column("tweet_id"), num_parts, PART_SALT)
        path = files.join(tmp, "parts", f"bucket-{bucket:05d}.arrow")
        outputs.extend(write_slices(path, kept.schema, split_table(kept, parts)))
    return outputs


def write_part(
    item: tuple[int, list[SliceRef], dict[str, float], dict[str, int]],
    *,
    path: str,
    num_parts: int,
    mode: str = "materialize",
) -> list:
    """Step 3 (pool function): resample one output part's rows, sort by tweet_id, write the part."""
    part, refs, rates, caps = item
    drops = [ref for ref in refs if near_dedup.is_drop(ref)]
    rows = [ref for ref in refs if not near_dedup.is_drop(ref)]
    table, id_stats = drop_duplicate_ids(read_slices(rows, CORPUS_LAYOUT))
    near_stats = st.TableStats()
    if drops:
        table, near_stats = _drop_near(table, near_dedup.drop_ids(drops))
    table, cap_stats = cap_table(table, caps)
    kept, stats = resample_table(table, rates, mode=mode)
    outputs: list = [Tagged(STATS, stats.to_dict()), Tagged(STATS, cap_stats.to_dict())]
    outputs.extend(Tagged(STATS, extra.to_dict()) for extra in (id_stats, near_stats) if extra.to_dict())
    if kept.num_rows:
        kept = conform(kept, CORPUS).sort_by(PART_ORDER)
        name = f"part-{part:05d}-of-{num_parts:05d}.parquet"
        outputs.append(
            {"dataset": "corpus", "shard": part, **files.write_parquet_atomic(files.join(path, name), kept)}
        )
    return outputs


def _drop_near(table: pa.Table, ids: pa.Array) -> tuple[pa.Table, st.TableStats]:
    """The rows of `table` whose tweet_id is not in `ids` (MinHash duplicates), and their count."""
    stats = st.TableStats()
    hit = pc.is_in(table.column("tweet_id"), value_set=ids)
    gone = table.filter(hit)
    stats.duplicate(near_dedup.MINHASH, gone.num_rows)
    stats.uncount("lang_before", gone.column("lang").to_pylist())
    return table.filter(pc.invert(hit)), stats
