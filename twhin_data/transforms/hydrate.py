"""HydrateTweets: distinct IDs -> deterministic <=100-ID batches -> X API lookups -> per-ID records.

Design (docs/hydrate.md):
- IDs are keyed to `num_id_shards` shards by a stable hash; one GroupByKey per shard collapses
  duplicates, drops IDs already settled by an earlier run (resume) and cuts the sorted remainder
  into batches. Batch content therefore depends only on the input, never on bundling, so a
  bundle retry re-requests exactly the same batch.
- Every looked-up batch is written atomically to ``<output>/_progress/{tweets,unavailable}/<hash>``
  before its rows are emitted. A retried bundle finds the file and re-emits it instead of
  re-billing; a killed job restarted with --resume reads the files as settled.
"""

from __future__ import annotations

import collections
import logging
import os
import posixpath
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from twhin_data.core import files
from twhin_data.core.errors import ConfigError, FatalApiError
from twhin_data.core.hashing import stable_hash64
from twhin_data.schemas import conform, to_table
from twhin_data.schemas.tweets import TWEETS, UNAVAILABLE
from twhin_data.transforms.io import shard_of

LOG = logging.getLogger("twhin_data.hydrate")
NAMESPACE = "hydrate"
UNAVAILABLE_TAG = "unavailable"
TERMINAL = ("not_found", "not_authorized", "unavailable")
SHARD_SALT = "hydrate-ids"
PROGRESS = "_progress"


@dataclass(frozen=True)
class Batch:
    """One API request's worth of IDs: `key` orders batches, `digest` names its progress files."""

    key: str
    ids: tuple[str, ...]

    @property
    def digest(self) -> str:
        return f"{stable_hash64(','.join(self.ids), 'hydrate-batch'):016x}"


def id_sort_key(tweet_id: str) -> tuple[int, str]:
    """Numeric order for decimal ID strings."""
    return (len(tweet_id), tweet_id)


def shard_chunk(ids: list[str], num_shards: int) -> Iterable[tuple[int, tuple[str, object]]]:
    """Splits a list of valid IDs by stable shard: ``(shard, ("ids", [..]))``."""
    if not ids:
        return
    shards = shard_of(pa.array(ids, pa.string()), num_shards, SHARD_SALT)
    for shard in np.unique(shards):
        picked = np.flatnonzero(shards == shard)
        yield int(shard), ("ids", [ids[i] for i in picked])


def shard_table(item: tuple[str, pa.Table], num_shards: int) -> Iterable[tuple[int, tuple[str, object]]]:
    """Splits a previous-results table (tag, table) by the same stable shard as the IDs."""
    tag, table = item
    if table.num_rows == 0:
        return
    shards = shard_of(table.column("tweet_id"), num_shards, SHARD_SALT)
    for shard in np.unique(shards):
        yield int(shard), (tag, table.take(pa.array(np.flatnonzero(shards == shard))))


def _latest_per_id(tables: list[pa.Table], schema: pa.Schema, keep: set[str], tiebreak: str) -> pa.Table:
    """Rows whose tweet_id is in `keep`, one per ID: the latest retrieved_at, ties by `tiebreak`."""
    if not tables:
        return schema.empty_table()
    table = pa.concat_tables([conform(t, schema) for t in tables])
    table = table.filter(pc.is_in(table.column("tweet_id"), value_set=pa.array(sorted(keep), pa.string())))
    if table.num_rows == 0:
        return table
    table = table.sort_by(
        [("tweet_id", "ascending"), ("retrieved_at", "descending"), (tiebreak, "ascending")]
    )
    ids = table.column("tweet_id").to_numpy(zero_copy_only=False)
    first = np.concatenate([[True], ids[1:] != ids[:-1]])
    return table.filter(pa.array(first))


class _PlanShardFn(beam.DoFn):
    """Per shard: collapse duplicates, carry over settled rows (resume), cut the rest into batches."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size
        self._distinct = Metrics.counter(NAMESPACE, "distinct_ids")
        self._duplicates = Metrics.counter(NAMESPACE, "duplicate_ids")
        self._resumed = Metrics.counter(NAMESPACE, "resumed_ids")
        self._to_request = Metrics.counter(NAMESPACE, "ids_to_request")
        self._batches = Metrics.counter(NAMESPACE, "batches")

    def process(self, item: tuple[int, Iterable[tuple[str, object]]]) -> Iterable:
        shard, values = item
        distinct: set[str] = set()
        seen = 0
        prev: dict[str, list[pa.Table]] = {"tweets": [], "unavailable": []}
        for tag, payload in values:
            if tag == "ids":
                seen += len(payload)
                distinct.update(payload)
            else:
                prev[tag].append(payload)
        self._distinct.inc(len(distinct))
        self._duplicates.inc(seen - len(distinct))
        carried_tweets = _latest_per_id(prev["tweets"], TWEETS, distinct, "raw_text")
        done = set(carried_tweets.column("tweet_id").to_pylist())
        terminal = [
            t.filter(pc.is_in(t.column("status"), value_set=pa.array(TERMINAL))) for t in prev["unavailable"]
        ]
        carried_unavailable = _latest_per_id(terminal, UNAVAILABLE, distinct - done, "status")
        done.update(carried_unavailable.column("tweet_id").to_pylist())
        if done:
            self._resumed.inc(len(done))
            yield beam.pvalue.TaggedOutput("carried_tweets", carried_tweets)
            yield beam.pvalue.TaggedOutput("carried_unavailable", carried_unavailable)
        todo = sorted(distinct - done, key=id_sort_key)
        self._to_request.inc(len(todo))
        for start in range(0, len(todo), self._batch_size):
            self._batches.inc()
            yield Batch(
                f"{shard:05d}-{start // self._batch_size:07d}", tuple(todo[start : start + self._batch_size])
            )


@dataclass(frozen=True)
class Plan:
    """The global view every lookup worker gets: how many IDs in total, which batches fit the budget."""

    total_ids: int
    last_allowed: str | None  # batches with key > last_allowed are not requested (max_reads)
    max_reads: int | None

    def allows(self, batch: Batch) -> bool:
        return self.max_reads is None or (self.last_allowed is not None and batch.key <= self.last_allowed)


def make_plan(sizes: list[tuple[str, int]], max_reads: int | None) -> Plan:
    """Admits batches in key order while the IDs they request (an upper bound on reads) fit."""
    total = sum(n for _, n in sizes)
    last, used = None, 0
    if max_reads is not None:
        for key, n in sorted(sizes):
            if used + n > max_reads:
                break
            used, last = used + n, key
    return Plan(total_ids=total, last_allowed=last, max_reads=max_reads)


def progress_paths(progress_dir: str, batch: Batch) -> tuple[str, str]:
    name = f"batch-{batch.digest}.parquet"
    return files.join(progress_dir, "tweets", name), files.join(progress_dir, "unavailable", name)


def settle_rows(
    ids: Iterable[str], tweets: list[dict], unavailable: list[dict]
) -> tuple[list[dict], list[dict], int]:
    """Exactly one row per requested ID: drops extras/duplicates, adds `failed` rows for gaps.

    Returns (tweets, unavailable, number of repaired IDs) — a safety net around the client.
    """
    wanted = list(dict.fromkeys(ids))
    wanted_set = set(wanted)
    seen: set[str] = set()
    out_tweets, out_unavailable = [], []
    for row in tweets:
        if row["tweet_id"] in wanted_set and row["tweet_id"] not in seen:
            seen.add(row["tweet_id"])
            out_tweets.append(row)
    for row in unavailable:
        if row["tweet_id"] in wanted_set and row["tweet_id"] not in seen:
            seen.add(row["tweet_id"])
            out_unavailable.append(row)
    gaps = [i for i in wanted if i not in seen]
    dropped = len(tweets) + len(unavailable) - len(seen)
    now = datetime.now(UTC)
    for tweet_id in gaps:
        out_unavailable.append(
            failed_row(tweet_id, "unsettled", "The client returned no record for this ID.", now)
        )
    return out_tweets, out_unavailable, len(gaps) + dropped


def failed_row(tweet_id: str, problem: str, detail: str, when: datetime | None) -> dict:
    return {
        "tweet_id": tweet_id,
        "status": "failed",
        "problem_type": problem,
        "title": "Not hydrated",
        "detail": detail,
        "http_status": None,
        "api_version": None,
        "retrieved_at": when,
    }


@dataclass
class _Settled:
    """One batch's result, built off the main thread (Beam metrics are counted on the main thread)."""

    batch: Batch
    tweets: pa.Table
    unavailable: pa.Table
    reused: bool = False
    requests: int = 0
    reads: int = 0
    waited_s: float = 0.0
    repaired: int = 0
    client_error: bool = False


class _LookupBatchFn(beam.DoFn):
    """Looks up Batches through XClient; emits tweets tables and tags unavailable tables.

    The client (token, HTTP session, pacing) is built in setup(); the token is read there from
    `token_source` and never stored on the DoFn, logged, or written. With max_concurrency > 1,
    up to that many batches are in flight on threads (the pacer bounds them per token across
    processes too); outputs keep submission order.
    """

    def __init__(self, *, client_config, token_source, progress_dir: str, log_every_s: float = 10.0):
        self._config = client_config
        self._token_source = token_source
        self._progress_dir = progress_dir
        self._log_every_s = log_every_s
        self._client = None
        self._pool = None
        self._counters = {
            name: Metrics.counter(NAMESPACE, name)
            for name in (
                "requests",
                "billable_reads",
                "rate_limit_wait_ms",
                "batches_reused_from_progress",
                "ids_over_read_budget",
                "ids_repaired_by_settle",
                "client_errors",
            )
        }

    def setup(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        from twhin_data.xapi.client import XClient

        self._client = XClient(self._config, self._token_source.read())
        workers = max(1, int(getattr(self._config, "max_concurrency", 1)))
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="lookup") if workers > 1 else None
        self._in_flight = workers
        self._started = self._last_log = time.monotonic()
        self._last_bar = 0.0
        self._tty = sys.stderr.isatty()
        self._settled = self._sent = 0
        self._waited = 0.0

    def start_bundle(self) -> None:
        self._pending = collections.deque()
        self._plan = None

    def process(self, batch: Batch, plan: Plan) -> Iterable:
        self._plan = plan
        if not plan.allows(batch):
            self._counters["ids_over_read_budget"].inc(len(batch.ids))
            detail = (
                f"Not requested: --max_reads {plan.max_reads} was reached; rerun with --resume to continue."
            )
            rows = [failed_row(i, "read-budget", detail, None) for i in batch.ids]
            yield beam.pvalue.TaggedOutput(UNAVAILABLE_TAG, to_table(rows, UNAVAILABLE))
            return
        if self._pool is None:
            yield from self._emit(self._settle(batch))
            return
        self._pending.append(self._pool.submit(self._settle, batch))
        while len(self._pending) > self._in_flight:
            yield from self._emit(self._pending.popleft().result())

    def finish_bundle(self) -> Iterable[WindowedValue]:
        while self._pending:
            for out in self._emit(self._pending.popleft().result()):
                if isinstance(out, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(
                        out.tag, WindowedValue(out.value, MIN_TIMESTAMP, [GlobalWindow()])
                    )
                else:
                    yield WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])

    def _settle(self, batch: Batch) -> _Settled:
        tweets_path, unavailable_path = progress_paths(self._progress_dir, batch)
        if files.exists(unavailable_path) and files.exists(tweets_path):
            # A retried bundle (or a resumed run) already paid for this batch: re-emit, never re-bill.
            return _Settled(
                batch,
                files.read_parquet_table(tweets_path),
                files.read_parquet_table(unavailable_path),
                reused=True,
            )
        result = self._lookup(batch)
        files.write_parquet_atomic(tweets_path, result.tweets)
        files.write_parquet_atomic(unavailable_path, result.unavailable)  # written last: marks the batch done
        return result

    def _lookup(self, batch: Batch) -> _Settled:
        try:
            outcome = self._client.lookup(list(batch.ids))
        except FatalApiError:
            raise
        except Exception as exc:  # a client bug must not lose IDs: settle them as failed
            LOG.warning("hydrate: lookup of batch %s failed: %s: %s", batch.key, type(exc).__name__, exc)
            detail = f"client error: {type(exc).__name__}: {exc}"[:500]
            rows = [failed_row(i, "client-error", detail, datetime.now(UTC)) for i in batch.ids]
            return _Settled(batch, TWEETS.empty_table(), to_table(rows, UNAVAILABLE), client_error=True)
        tweets, unavailable, repaired = settle_rows(batch.ids, outcome.tweets, outcome.unavailable)
        return _Settled(
            batch,
            to_table(tweets, TWEETS),
            to_table(unavailable, UNAVAILABLE),
            requests=outcome.requests,
            reads=outcome.reads,
            waited_s=outcome.waited_s or 0.0,
            repaired=repaired,
        )

    def _emit(self, result: _Settled) -> Iterable:
        c = self._counters
        c["batches_reused_from_progress"].inc(int(result.reused))
        c["client_errors"].inc(int(result.client_error))
        c["requests"].inc(result.requests)
        c["billable_reads"].inc(result.reads)
        c["rate_limit_wait_ms"].inc(int(result.waited_s * 1000))
        c["ids_repaired_by_settle"].inc(result.repaired)
        self._sent += result.requests
        self._waited += result.waited_s
        self._settled += len(result.batch.ids)
        self._log_progress()
        yield result.tweets
        yield beam.pvalue.TaggedOutput(UNAVAILABLE_TAG, result.unavailable)

    def _log_progress(self) -> None:
        """A log line every `log_every_s`; on a terminal, also a bar redrawn in place twice a second."""
        now = time.monotonic()
        tty = self._tty and now - self._last_bar >= 0.5
        if (now - self._last_log < self._log_every_s and not tty) or self._plan is None:
            return
        total = self._plan.total_ids
        line = (
            f"hydrate: {self._settled}/{total} IDs settled by this worker "
            f"({100.0 * self._settled / max(total, 1):.1f}% of the job), "
            f"{self._settled / max(now - self._started, 1e-9):.1f} IDs/s, {self._sent} requests, "
            f"{self._waited:.1f} s waiting for rate limits"
        )
        if tty:
            self._last_bar = now
            done = int(30 * min(1.0, self._settled / max(total, 1)))
            sys.stderr.write(f"\r[{'#' * done}{'.' * (30 - done)}] {line}\033[K")
            sys.stderr.flush()
        if now - self._last_log >= self._log_every_s:
            self._last_log = now
            LOG.info("%s", line)

    def teardown(self) -> None:
        if getattr(self, "_tty", False) and self._settled:
            sys.stderr.write("\n")
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None


class HydrateTweets(beam.PTransform):
    """Settles every distinct valid ID exactly once through the X API (or a previous run's output).

    Input: a dict ``{"ids": PCollection[list[str]], "previous": PCollection[(tag, pa.Table)]}``
    ("previous" optional; tag is "tweets" or "unavailable"). Output dict:
      ``tweets``: pa.Table batches of TWEETS; ``unavailable``: pa.Table batches of UNAVAILABLE.

    Args:
      client_config: xapi.client.ClientConfig (base URL, fields, pacing).
      token_source: xapi.auth.TokenSource, read on workers in setup().
      progress_dir: where per-batch results are persisted (``<output>/_progress``).
      batch_size: IDs per request (<= 100).
      num_id_shards: shards for duplicate collapsing and batch planning.
      max_reads: do not request batches beyond this many IDs (None: no budget).
    """

    def __init__(
        self,
        *,
        client_config,
        token_source,
        progress_dir: str,
        batch_size: int = 100,
        num_id_shards: int = 1,
        max_reads: int | None = None,
    ):
        super().__init__()
        if not 1 <= batch_size <= 100:
            raise ValueError("batch_size must be between 1 and 100")
        self._config = client_config
        self._token_source = token_source
        self._progress_dir = progress_dir
        self._batch_size = batch_size
        self._num_id_shards = num_id_shards
        self._max_reads = max_reads

    def expand(self, inputs):
        n = self._num_id_shards
        keyed = [inputs["ids"] | "ShardIds" >> beam.FlatMap(shard_chunk, num_shards=n)]
        if inputs.get("previous") is not None:
            keyed.append(inputs["previous"] | "ShardPrevious" >> beam.FlatMap(shard_table, num_shards=n))
        planned = (
            keyed
            | "MergeKeyed" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "PlanBatches"
            >> beam.ParDo(_PlanShardFn(self._batch_size)).with_outputs(
                "carried_tweets", "carried_unavailable", main="batches"
            )
        )
        plan = (
            planned.batches
            | "BatchSizes" >> beam.Map(lambda b: (b.key, len(b.ids)))
            | "AllSizes" >> beam.combiners.ToList()
            | "MakePlan" >> beam.Map(make_plan, max_reads=self._max_reads)
        )
        looked_up = (
            planned.batches
            # Spread batches over workers; batch content is fixed before this point.
            | "SpreadBatches" >> beam.Reshuffle()
            | "LookupBatch"
            >> beam.ParDo(
                _LookupBatchFn(
                    client_config=self._config,
                    token_source=self._token_source,
                    progress_dir=self._progress_dir,
                ),
                plan=beam.pvalue.AsSingleton(plan),
            ).with_outputs(UNAVAILABLE_TAG, main="tweets")
        )
        tweets = (looked_up.tweets, planned.carried_tweets) | "AllTweets" >> beam.Flatten()
        unavailable = (
            looked_up[UNAVAILABLE_TAG],
            planned.carried_unavailable,
        ) | "AllUnavailable" >> beam.Flatten()
        return {"tweets": tweets, "unavailable": unavailable}


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


def stash_previous_parts(output: str) -> None:
    """--resume: moves the previous final parts to ``_progress/previous-NNN/<tag>/``, so this run's
    writer starts from empty folders (a part it does not rewrite cannot survive as a stale file)."""
    for tag in ("tweets", "unavailable"):
        parts = [m.path for m in FileSystems.match([files.join(output, tag, "*.parquet")])[0].metadata_list]
        if not parts:
            continue
        n = 0
        while files.exists(files.join(output, PROGRESS, f"previous-{n:03d}", tag)):
            n += 1
        target = files.join(output, PROGRESS, f"previous-{n:03d}", tag)
        if "://" not in target:
            os.makedirs(target, exist_ok=True)
        FileSystems.rename(parts, [files.join(target, posixpath.basename(p)) for p in parts])


def _read_previous(item: tuple[str, str]) -> Iterable[tuple[str, pa.Table]]:
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
            | "ReadPrevious" >> beam.FlatMap(_read_previous)
        )
