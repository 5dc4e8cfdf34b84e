"""graph's reading steps (pure, no Beam; the pool processes import this): input files -> edge files.

1. `read_input`, per input file (an engagement log, or a Parquet file of hydrated tweets, whose
   replies, quotes and retweets become edges): parse, clean (`clean_rows`), map prepare's
   duplicates to their kept tweet and drop benchmark tweets (tweet_map), then write the edges to
   ONE spill file, a record batch per chunk, while keeping a bottom-k hash sample of them. Emits
   ``(file index, [SliceRef], sample)``, dead letters and stats (`Tagged`).
2. `partition_file`, per input file, once the range split points are known (the merged samples):
   its edges by the range shard of their user, one spill file with a slice per shard; emits
   ``(user shard, SliceRef)``. The filter rounds (build_steps.py) start from these.

Every row in ends up as an edge, a dead letter or a `filtered_*` count: `rows_in` = edges +
rejected + filtered. The sample holds the k smallest stable hashes of distinct (user, tweet, rel),
so merging the files' samples gives the sample of the whole input, whatever the file order.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from twhin_data.core import files
from twhin_data.core.errors import error_record
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, SliceWriter, read_slices, write_split
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.schemas.graph import ENGAGEMENT_TYPES
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph.build_steps import Stats
from twhin_data.transforms.graph.logs import CHUNK_ROWS, file_format, open_log, read_raw
from twhin_data.transforms.graph.tweet_map import apply_to_edges, cached_tweet_map

STAGE = "graph"
LOG, TWEETS = "log", "tweets"
#: Hydrated tweet columns an edge is derived from.
TWEET_COLUMNS = ["tweet_id", "author_id", "created_at", "referenced_tweets"]
SAMPLE_SALT = 0x5A3D

Sample = tuple[np.ndarray, np.ndarray, np.ndarray]  # (hash, user, tweet), sorted by hash, distinct


class WindowSpec:
    """The engagement filter settings (types kept and time window), picklable."""

    def __init__(self, *, types: list[str], start_ms: int | None = None, end_ms: int | None = None):
        self.type_codes = np.array(sorted(ENGAGEMENT_TYPES.index(t) for t in types), dtype=np.int8)
        self.start_ms = start_ms
        self.end_ms = end_ms


def clean_rows(raw: pa.Table, *, source: int, spec: WindowSpec) -> tuple[pa.Table, list[tuple], dict]:
    """Raw string rows (user_id, tweet_id, type, ts) -> (edge table, rejects, counts).

    rejects: (row index, error_type, message). counts: rows_in, filtered_type,
    filtered_time_window, filtered_no_ts and valid_<type> / in_window_<type>.
    """
    n = raw.num_rows
    user, user_ok = gc.parse_ids(raw.column("user_id"))
    tweet, tweet_ok = gc.parse_ids(raw.column("tweet_id"))
    rel = gc.parse_types(raw.column("type"))
    ts, ts_ok = (
        gc.parse_ts(raw.column("ts"))
        if "ts" in raw.column_names
        else (np.full(n, gc.NO_TS), np.ones(n, bool))
    )
    rejects: list[tuple] = []
    bad = np.zeros(n, dtype=bool)
    for mask, kind, message in (
        (~user_ok, "invalid_user_id", "user_id is not a decimal ID (1-19 digits, < 2**64)"),
        (~tweet_ok, "invalid_tweet_id", "tweet_id is not a decimal ID (1-19 digits, < 2**64)"),
        (rel < 0, "invalid_type", "type is not one of " + ", ".join(sorted(gc.TYPE_ALIASES))),
        (~ts_ok, "invalid_ts", "ts is neither ISO 8601 nor epoch seconds/milliseconds"),
    ):
        for i in np.flatnonzero(mask & ~bad):
            rejects.append((int(i), kind, message))
        bad |= mask
    counts = {"rows_in": n}
    valid = ~bad
    for code, name in enumerate(ENGAGEMENT_TYPES):
        counts[f"valid_{name}"] = int((valid & (rel == code)).sum())
    type_ok = np.isin(rel, spec.type_codes)
    counts["filtered_type"] = int((valid & ~type_ok).sum())
    keep = valid & type_ok
    in_window = np.ones(n, dtype=bool)
    if spec.start_ms is not None or spec.end_ms is not None:
        known = ts != gc.NO_TS
        counts["filtered_no_ts"] = int((keep & ~known).sum())
        in_window &= known
        if spec.start_ms is not None:
            in_window &= ts >= spec.start_ms
        if spec.end_ms is not None:
            in_window &= ts < spec.end_ms
    counts["filtered_time_window"] = int((keep & ~in_window).sum())
    keep &= in_window
    for code, name in enumerate(ENGAGEMENT_TYPES):
        counts[f"in_window_{name}"] = int((keep & (rel == code)).sum())
    idx = np.flatnonzero(keep)
    edges = pa.Table.from_arrays(
        [
            pa.array(user[idx], pa.uint64()),
            pa.array(tweet[idx], pa.uint64()),
            pa.array(rel[idx], pa.int8()),
            pa.array(ts[idx], pa.int64()),
            pa.array(np.full(len(idx), source, dtype=np.int8), pa.int8()),
        ],
        schema=gc.EDGE_SCHEMA,
    )
    return edges, rejects, counts


def derive_from_tweets(table: pa.Table) -> pa.Table:
    """Hydrated tweets -> string rows (user_id, tweet_id, type, ts): author -> referenced tweet."""
    table = table.combine_chunks()
    refs = table.column("referenced_tweets").combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(refs), 0).to_numpy(zero_copy_only=False)
    parent = np.repeat(np.arange(table.num_rows), lengths)
    flat = pc.list_flatten(refs)
    # replied_to / quoted / retweeted are aliases of reply / quote / retweet (edges.TYPE_ALIASES).
    kinds = flat.field("type").cast(pa.string()) if len(flat) else pa.array([], pa.string())
    take = pa.array(parent, pa.int64())
    return pa.table(
        {
            "user_id": pc.take(table.column("author_id"), take).cast(pa.string()),
            "tweet_id": flat.field("id").cast(pa.string()) if len(flat) else pa.array([], pa.string()),
            "type": kinds,
            "ts": pc.take(table.column("created_at"), take),
        }
    )


def empty_sample() -> Sample:
    return np.zeros(0, np.uint64), np.zeros(0, np.uint64), np.zeros(0, np.uint64)


def merge_samples(samples: Iterable[Sample], k: int) -> Sample:
    """The k smallest distinct hashes among `samples` (with their user and tweet)."""
    samples = [s for s in samples if len(s[0])]
    if not samples:
        return empty_sample()
    h, u, t = (np.concatenate([s[i] for s in samples]) for i in range(3))
    _, first = np.unique(h, return_index=True)  # sorted by hash, duplicates removed
    first = first[:k]
    return h[first], u[first], t[first]


def sample_edges(table: pa.Table, k: int) -> Sample:
    user, tweet, rel = gc.cols(table, "user", "tweet", "rel")
    return merge_samples([(gc.edge_hash(user, tweet, rel, salt=SAMPLE_SALT), user, tweet)], k)


def make_splits(sample: Sample, num_shards: int) -> dict[str, np.ndarray]:
    """Range split points of users and tweets at the quantiles of the sample."""
    _, user, tweet = sample
    return {side: gc.quantile_splits(ids, num_shards) for side, ids in (("user", user), ("tweet", tweet))}


def _raw_tables(path: str, kind: str, mapping: dict[str, str], stats: Stats) -> Iterable:
    """(raw string table or None, bad lines) per chunk of one input file."""
    if kind == LOG:
        yield from read_raw(path, mapping)
        return
    with open_log(path) as handle:  # read by row group: memory ~ one row group
        for batch in pq.ParquetFile(handle).iter_batches(batch_size=CHUNK_ROWS, columns=TWEET_COLUMNS):
            raw = derive_from_tweets(pa.Table.from_batches([batch]))
            stats.inc("derived_rows", raw.num_rows)
            yield raw, []


def read_input(
    item: tuple[int, str, str],
    *,
    spec: WindowSpec,
    mapping: dict[str, str],
    tmp: str,
    sample_k: int,
    duplicates: str | None = None,
    exclude: tuple[str, ...] = (),
) -> list:
    """Step 1 (pool function): one input file -> ``(index, [SliceRef], sample)``, errors, stats."""
    index, path, kind = item
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if kind == LOG and (file_format(path) is None or name.startswith((".", "_"))):
        return [Tagged(STATS, {"files_skipped": 1})]  # unknown type, or hidden/temporary
    stats = Stats({"files_read" if kind == LOG else "tweet_files_read": 1})
    outputs: list = []
    tweet_map = cached_tweet_map(duplicates, exclude)
    writer = SliceWriter(files.join(tmp, "read", f"input-{index:06d}.arrow"), gc.EDGE_SCHEMA)
    sample = empty_sample()
    source = 0 if kind == LOG else 1
    for raw, bad in _raw_tables(path, kind, mapping, stats):
        for text, error, message in bad:
            stats.add({"rows_in": 1, f"rejected_{error}": 1})
            outputs.append(Tagged(ERRORS, error_record(STAGE, text, error, message, path)))
        if raw is None or not raw.num_rows:
            continue
        edges, rejects, counts = clean_rows(raw, source=source, spec=spec)
        stats.add(counts)
        if rejects:
            rows = raw.take(pa.array([i for i, _, _ in rejects])).to_pylist()
            for row, (_, error, message) in zip(rows, rejects, strict=True):
                stats.inc(f"rejected_{error}", 1)
                outputs.append(Tagged(ERRORS, error_record(STAGE, row, error, message, path)))
        if tweet_map is not None and edges.num_rows:
            edges, mapped = apply_to_edges(edges, tweet_map)
            stats.add(mapped)
        if edges.num_rows:
            writer.add(0, edges)
            sample = merge_samples([sample, sample_edges(edges, sample_k)], sample_k)
    refs = [ref for _, ref in writer.close()]
    outputs.append(Tagged(STATS, stats))
    if refs:
        outputs.append((index, refs, sample))
    return outputs


def partition_file(item: tuple[int, list[SliceRef], Sample, dict[str, np.ndarray]], *, tmp: str) -> list:
    """Step 2 (pool function): (index, refs, sample, splits) -> ``(user shard, SliceRef)`` per shard."""
    index, refs, _, splits = item
    edges = read_slices(refs, gc.EDGE_SCHEMA)
    shards = gc.range_shard(edges.column("user").to_numpy(), splits["user"])
    return write_split(files.join(tmp, "read", f"users-{index:06d}.arrow"), gc.EDGE_SCHEMA, edges, shards)
