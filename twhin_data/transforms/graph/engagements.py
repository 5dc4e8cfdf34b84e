"""Reading engagement logs (CSV/TSV/JSONL/Parquet) and hydrated tweets into edge tables.

Every input row ends up in exactly one place: a cleaned edge row, a dead letter (rejected, with
the reason), or a `filtered_type` / `filtered_time_window` count. Counters live in the "graph"
namespace so `pipelines.graph.finish` can check in = out + rejected + filtered.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from twhin_data.core import progress
from twhin_data.core.errors import error_record
from twhin_data.core.tags import ERRORS
from twhin_data.schemas.graph import ENGAGEMENT_TYPES
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph.logs import CHUNK_ROWS, file_format, read_raw
from twhin_data.transforms.graph.tweet_map import TweetMap, apply_to_edges, load_tweet_map
from twhin_data.transforms.metrics import Counters

NAMESPACE = "graph"
STAGE = "graph"


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


class _CleanFn(beam.DoFn):
    """Shared counting of clean_rows results; subclasses yield raw tables."""

    def __init__(self, spec: WindowSpec):
        self._spec = spec
        self._counters = Counters(NAMESPACE)

    def _inc(self, name: str, value: int) -> None:
        if value:
            self._counters.inc(name, value)

    def _emit(self, raw: pa.Table, source: int, origin: str, rows: list | None = None):
        edges, rejects, counts = clean_rows(raw, source=source, spec=self._spec)
        for name, value in counts.items():
            self._inc(name, value)
        progress.advance(NAMESPACE, counts["rows_in"])
        for i, kind, message in rejects:
            self._inc(f"rejected_{kind}", 1)
            value = rows[i] if rows is not None else {k: raw.column(k)[i].as_py() for k in raw.column_names}
            yield beam.pvalue.TaggedOutput(ERRORS, error_record(STAGE, value, kind, message, origin))
        if edges.num_rows:
            yield edges


class ReadEngagementFileFn(_CleanFn):
    """path -> edge tables (main) and dead letters (`errors`) for one engagement log file."""

    def __init__(self, spec: WindowSpec, mapping: dict[str, str]):
        super().__init__(spec)
        self._mapping = mapping

    def process(self, path: str) -> Iterable:
        if file_format(path) is None or path.rstrip("/").rsplit("/", 1)[-1].startswith((".", "_")):
            self._inc("files_skipped", 1)  # unknown type, or hidden/temporary (as core.files.expand_inputs)
            return
        self._inc("files_read", 1)
        for raw, bad in read_raw(path, self._mapping):
            for text, kind, message in bad:
                self._inc("rows_in", 1)
                self._inc(f"rejected_{kind}", 1)
                yield beam.pvalue.TaggedOutput(ERRORS, error_record(STAGE, text, kind, message, path))
            if raw is not None and raw.num_rows:
                yield from self._emit(raw, 0, path)


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


class DeriveFromTweetsFn(_CleanFn):
    """Parquet file of hydrated tweets -> derived reply/quote/retweet edge tables (+ errors)."""

    COLUMNS = ["tweet_id", "author_id", "created_at", "referenced_tweets"]

    def process(self, path: str) -> Iterable:
        self._inc("tweet_files_read", 1)
        with FileSystems.open(path) as handle:  # read by row group: memory ~ one row group
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=CHUNK_ROWS, columns=self.COLUMNS):
                raw = derive_from_tweets(pa.Table.from_batches([batch]))
                self._inc("derived_rows", raw.num_rows)
                if raw.num_rows:
                    yield from self._emit(raw, 1, path)


def _patterns(text: str) -> list[str]:
    out = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if "://" not in part and os.path.isdir(part):
            part = os.path.join(part, "**")
        elif "://" in part and not any(ch in part for ch in "*?[") and file_format(part) is None:
            part = part.rstrip("/") + "/**"  # a bucket "directory" (as core.files.expand_inputs)
        out.append(part)
    return out


class ReadEngagements(beam.PTransform):
    """Engagement log files (a glob/dir/comma list, any Beam filesystem) -> edge tables.

    Output: main = ``pa.Table`` of ``edges.EDGE_SCHEMA``; ``errors`` = dead-letter dicts.
    With `tweets` (a directory of hydrated tweets Parquet) derived engagements are added.
    """

    def __init__(self, pattern: str, *, spec: WindowSpec, mapping: dict[str, str], tweets: str | None = None):
        super().__init__()
        self._pattern, self._spec, self._mapping, self._tweets = pattern, spec, mapping, tweets

    def expand(self, pbegin):
        edges, errors = [], []
        if self._pattern:
            logs = (
                pbegin
                | "LogPatterns" >> beam.Create(_patterns(self._pattern))
                | "MatchLogs" >> fileio.MatchAll()
                | "LogPaths" >> beam.Map(lambda m: m.path)
                | "SpreadLogs" >> beam.Reshuffle()
                | "ReadLogs"
                >> beam.ParDo(ReadEngagementFileFn(self._spec, self._mapping)).with_outputs(
                    ERRORS, main="edges"
                )
            )
            edges.append(logs.edges)
            errors.append(logs[ERRORS])
        if self._tweets:
            derived = (
                pbegin
                | "TweetPatterns" >> beam.Create([tweets_pattern(self._tweets)])
                | "MatchTweets" >> fileio.MatchAll()
                | "TweetPaths" >> beam.Map(lambda m: m.path)
                | "SpreadTweets" >> beam.Reshuffle()
                | "DeriveEdges"
                >> beam.ParDo(DeriveFromTweetsFn(self._spec)).with_outputs(ERRORS, main="edges")
            )
            edges.append(derived.edges)
            errors.append(derived[ERRORS])
        return edges | "AllEdges" >> beam.Flatten(), errors | "AllReadErrors" >> beam.Flatten()


def tweets_pattern(directory: str) -> str:
    """The Parquet files of hydrated tweets: DIR/tweets/*.parquet when present, else DIR/*.parquet."""
    sub = directory.rstrip("/") + "/tweets"
    if FileSystems.exists(sub):
        return sub + "/*.parquet"
    return directory.rstrip("/") + "/*.parquet"


class MapTweetsFn(beam.DoFn):
    """Edge tables -> the same with `apply_to_edges`; the map is read once per worker (setup)."""

    def __init__(self, duplicates: str | None, exclude: tuple[str, ...]):
        self._duplicates, self._exclude = duplicates, exclude
        self._map: TweetMap | None = None

    def setup(self):
        self._map = load_tweet_map(self._duplicates, self._exclude)

    def process(self, table: pa.Table):
        out, counts = apply_to_edges(table, self._map)
        for name, value in counts.items():
            if value:
                Metrics.counter(NAMESPACE, name).inc(value)
        if out.num_rows:
            yield out
