"""The X API lookup step of HydrateTweets: Batch and Plan, the lookup DoFn, and settling its rows."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from twhin_data.core import files, progress, tags
from twhin_data.core.errors import FatalApiError
from twhin_data.core.hashing import stable_hash64
from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS, UNAVAILABLE
from twhin_data.transforms.parallel import BoundedInFlightFn
from twhin_data.xapi.client import XClient

LOG = logging.getLogger("twhin_data.hydrate")
#: The progress reporter this step advances (core/progress.py): the pipeline's NAME.
STAGE = "hydrate"
NAMESPACE = "hydrate"


@dataclass(frozen=True)
class Batch:
    """One API request's worth of IDs: `key` orders batches, `digest` names its progress files."""

    key: str
    ids: tuple[str, ...]

    @property
    def digest(self) -> str:
        return f"{stable_hash64(','.join(self.ids), 'hydrate-batch'):016x}"


@dataclass(frozen=True)
class Plan:
    """The global view every lookup worker gets: how many IDs in total, which batches fit the budget."""

    total_ids: int
    last_allowed: str | None  # batches with key > last_allowed are not requested (max_reads)
    max_reads: int | None

    def allows(self, batch: Batch) -> bool:
        return self.max_reads is None or (self.last_allowed is not None and batch.key <= self.last_allowed)


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
class Settled:
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


class LookupBatchFn(BoundedInFlightFn):
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
        # A rate-limit wait counts down on the progress bar when one runs in this process.
        self._client = XClient(self._config, self._token_source.read(), sleep=progress.sleeper(STAGE, "X API wait"))
        workers = max(1, int(getattr(self._config, "max_concurrency", 1)))
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="lookup") if workers > 1 else None
        self._in_flight = workers
        self._started = self._last_log = time.monotonic()
        self._total_set = False
        self._settled = self._sent = 0
        self._waited = 0.0

    def start_bundle(self) -> None:
        super().start_bundle()
        self._plan = None

    def process(self, batch: Batch, plan: Plan) -> Iterable:
        self._plan = plan
        if not self._total_set:  # the job's total is known once the batches are cut
            progress.set_total(STAGE, plan.total_ids)
            self._total_set = True
        if not plan.allows(batch):
            self._counters["ids_over_read_budget"].inc(len(batch.ids))
            detail = (
                f"Not requested: --max_reads {plan.max_reads} was reached; rerun with --resume to continue."
            )
            rows = [failed_row(i, "read-budget", detail, None) for i in batch.ids]
            yield beam.pvalue.TaggedOutput(tags.UNAVAILABLE, to_table(rows, UNAVAILABLE))
            return
        if self._pool is None:
            yield from self.outputs(self._settle(batch))
            return
        yield from self.submit(self._pool.submit(self._settle, batch), self._in_flight)

    def _settle(self, batch: Batch) -> Settled:
        tweets_path, unavailable_path = progress_paths(self._progress_dir, batch)
        if files.exists(unavailable_path) and files.exists(tweets_path):
            # A retried bundle (or a resumed run) already paid for this batch: re-emit, never re-bill.
            return Settled(
                batch,
                files.read_parquet_table(tweets_path),
                files.read_parquet_table(unavailable_path),
                reused=True,
            )
        result = self._lookup(batch)
        files.write_parquet_atomic(tweets_path, result.tweets)
        files.write_parquet_atomic(unavailable_path, result.unavailable)  # written last: marks the batch done
        return result

    def _lookup(self, batch: Batch) -> Settled:
        try:
            outcome = self._client.lookup(list(batch.ids))
        except FatalApiError:
            raise
        except Exception as exc:  # a client bug must not lose IDs: settle them as failed
            LOG.warning("hydrate: lookup of batch %s failed: %s: %s", batch.key, type(exc).__name__, exc)
            detail = f"client error: {type(exc).__name__}: {exc}"[:500]
            rows = [failed_row(i, "client-error", detail, datetime.now(UTC)) for i in batch.ids]
            return Settled(batch, TWEETS.empty_table(), to_table(rows, UNAVAILABLE), client_error=True)
        tweets, unavailable, repaired = settle_rows(batch.ids, outcome.tweets, outcome.unavailable)
        return Settled(
            batch,
            to_table(tweets, TWEETS),
            to_table(unavailable, UNAVAILABLE),
            requests=outcome.requests,
            reads=outcome.reads,
            waited_s=outcome.waited_s or 0.0,
            repaired=repaired,
        )

    def outputs(self, result: Settled) -> Iterable:
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
        progress.advance(STAGE, len(result.batch.ids))
        self._log_progress()
        yield result.tweets
        yield beam.pvalue.TaggedOutput(tags.UNAVAILABLE, result.unavailable)

    def _log_progress(self) -> None:
        """Where no progress bar runs in this process (a Dataflow worker, a multi-process runner):
        a log line every `log_every_s` with what this worker settled."""
        now = time.monotonic()
        if progress.active(STAGE) or now - self._last_log < self._log_every_s or self._plan is None:
            return
        self._last_log = now
        total = self._plan.total_ids
        LOG.info(
            "hydrate: %d of %d IDs settled by this worker, %.1f IDs/s, %d requests, %.1f s waiting for rate limits",
            self._settled,
            total,
            self._settled / max(now - self._started, 1e-9),
            self._sent,
            self._waited,
        )

    def teardown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
