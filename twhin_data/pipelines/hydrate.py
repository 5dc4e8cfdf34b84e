"""`twhin-data hydrate`: tweet IDs (or archives) -> tweets/, unavailable/, errors/hydrate/, reports/hydrate/."""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import re
import secrets
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import WorkerOptions

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.report import stats_report, write_stats
from twhin_data.pipelines import flags as opts
from twhin_data.pipelines.plan import Plan, RunSettings
from twhin_data.schemas.tweets import TWEETS, UNAVAILABLE, UNAVAILABLE_STATUSES
from twhin_data.transforms.hydrate import archives, ids, resume
from twhin_data.transforms.hydrate import transform as hyd
from twhin_data.transforms.io import MarkComplete, ToTables, WriteDataset, WriteErrors
from twhin_data.transforms.metrics import counters
from twhin_data.xapi.auth import TokenSource
from twhin_data.xapi.client import DEFAULT_EXPANSIONS, DEFAULT_TWEET_FIELDS, ClientConfig

NAME = "hydrate"
LOG = logging.getLogger("twhin_data.hydrate")
NAMESPACE = "hydrate"
#: bytes of ID-file input per expected ID, used only to size shards (a deterministic function of the input).
BYTES_PER_ID = 20
IDS_PER_PLAN_SHARD = 250_000
ROWS_PER_PART = 1_000_000
_FIELD_RE = re.compile(r"^[a-z_.]+$")
#: Everything hydrate writes in --output: what --overwrite removes.
#: The datasets hydrate publishes (each gets _INCOMPLETE while written, _SUCCESS when done).
DATASETS = ("tweets", "unavailable")
OUTPUT_DIRS = ("tweets", "unavailable", resume.PROGRESS, *(os.path.join(d, NAME) for d in ("errors", "reports")))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--ids",
        help="ID files: path, directory, glob or comma list (local or gs://). Plain text (one ID per line), "
        "CSV/TSV (ID column named or guessed, e.g. HashtagPrediction `ID,label`), JSONL, Parquet; .gz ok.",
    )
    source.add_argument(
        "--archive",
        help="Already-hydrated tweets to convert without any API call: twarc2 JSONL pages, v2 tweet JSON "
        "lines, or v1.1 status JSON lines (path, directory, glob or comma list).",
    )
    parser.add_argument(
        "--id_column",
        default=None,
        help="Column/field holding the IDs in CSV/TSV/JSONL/Parquet "
        "input (default: guessed from tweet_id, id_str, id, status_id, ...).",
    )
    parser.add_argument(
        "--api_base_url",
        default="https://api.twitter.com",
        help="scheme://host[:port] of the API (requests go to <base>/2/tweets); a mock for tests.",
    )
    parser.add_argument(
        "--bearer_token_file",
        default=None,
        help="File (local or gs://) holding the bearer token (default: env X_BEARER_TOKEN).",
    )
    parser.add_argument(
        "--bearer_token_secret",
        default=None,
        help="Secret Manager name projects/P/secrets/S[/versions/V] holding the bearer token.",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Skip IDs already settled in --output (hydrated, not_found, not_authorized, "
        "unavailable), including batches saved by a killed run; re-request failed ones.",
    )
    parser.add_argument(
        "--max_reads",
        type=opts.non_negative_int,
        default=None,
        help="Request at most N IDs in this run (each bills at most one read; tweets pulled in by "
        "--expansions may bill more: pass --expansions '' to exclude them); the rest are recorded as "
        "failed/read-budget and a later --resume continues.",
    )
    parser.add_argument(
        "--tweet_fields",
        type=opts.csv_list,
        default=None,
        help="Comma-separated tweet.fields (default: text, lang, created_at, author_id, "
        "conversation_id, in_reply_to_user_id, referenced_tweets, public_metrics, entities, "
        "note_tweet, possibly_sensitive, edit_history_tweet_ids).",
    )
    parser.add_argument(
        "--expansions",
        type=opts.csv_list,
        default=None,
        help="Comma-separated expansions (default: referenced_tweets.id).",
    )
    parser.add_argument("--batch_size", type=opts.positive_int, default=100, help="IDs per request (1-100).")
    parser.add_argument(
        "--max_concurrency",
        type=opts.positive_int,
        default=1,
        help="Requests in flight at once per token on one machine (shared by all its processes).",
    )
    parser.add_argument(
        "--requests_per_window",
        type=opts.positive_int,
        default=None,
        help="Request budget per rate-limit window (default: trust x-rate-limit-* headers).",
    )
    parser.add_argument(
        "--window_s",
        type=float,
        default=900.0,
        help="Rate-limit window length in seconds, used when the API sends no reset header.",
    )
    parser.add_argument(
        "--reset_margin_s",
        type=float,
        default=1.0,
        help="Seconds to wait past x-rate-limit-reset before the next window's first request.",
    )
    parser.add_argument(
        "--pacing_dir",
        default=None,
        help="Local directory holding the shared pacing state (default: a temp dir keyed by a "
        "hash of token and API host).",
    )
    parser.add_argument(
        "--max_retries",
        type=opts.non_negative_int,
        default=6,
        help="Retries after 5xx, timeouts and connection errors before IDs are recorded as failed.",
    )
    parser.add_argument(
        "--backoff_base",
        type=float,
        default=1.0,
        help="First retry backoff in seconds (doubles per retry, deterministic jitter).",
    )
    parser.add_argument(
        "--backoff_cap", type=float, default=60.0, help="Longest single retry backoff in seconds."
    )
    parser.add_argument("--read_timeout", type=float, default=30.0, help="HTTP read timeout in seconds.")
    parser.add_argument("--connect_timeout", type=float, default=5.0, help="HTTP connect timeout in seconds.")


def token_source(args: argparse.Namespace) -> TokenSource:
    return TokenSource(file=args.bearer_token_file, secret=args.bearer_token_secret)


def client_config(args: argparse.Namespace, partitions: int = 1) -> ClientConfig:
    return ClientConfig(
        base_url=args.api_base_url.rstrip("/"),
        tweet_fields=tuple(args.tweet_fields or DEFAULT_TWEET_FIELDS),
        expansions=tuple(DEFAULT_EXPANSIONS if args.expansions is None else args.expansions),
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        max_retries=args.max_retries,
        backoff_base=args.backoff_base,
        backoff_cap=args.backoff_cap,
        requests_per_window=args.requests_per_window,
        window_s=args.window_s,
        max_concurrency=args.max_concurrency,
        partitions=partitions,
        pacing_dir=args.pacing_dir,
        reset_margin_s=args.reset_margin_s,
    )


def validate(args: argparse.Namespace) -> None:
    if args.bearer_token_file and args.bearer_token_secret:
        raise ConfigError("pass at most one of --bearer_token_file and --bearer_token_secret")
    if args.batch_size > 100:
        raise ConfigError(f"--batch_size must be between 1 and 100 (the API's limit), got {args.batch_size}")
    if args.reset_margin_s < 0:
        raise ConfigError("--reset_margin_s must be >= 0")
    if args.window_s <= 0 or args.read_timeout <= 0 or args.connect_timeout <= 0:
        raise ConfigError("--window_s, --read_timeout and --connect_timeout must be > 0")
    for flag in ("tweet_fields", "expansions"):
        bad = [f for f in getattr(args, flag) or [] if not _FIELD_RE.match(f)]
        if bad:
            raise ConfigError(f"--{flag}: not a field name: {', '.join(bad)}")
    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the output in --output; --overwrite replaces it: pass one")
    if args.archive and (args.resume or args.max_reads is not None):
        raise ConfigError("--resume and --max_reads apply to --ids (an archive run makes no API call)")
    if not args.archive:
        client_config(args).validate()


@dataclass(frozen=True)
class HydratePlan(Plan):
    sources: list[str] | list[ids.IdSource]  # --archive: the files; --ids: one IdSource per file
    input_bytes: int
    id_shards: int  # ID shards of the lookup step
    part_shards: int  # Parquet parts of tweets/ and unavailable/
    stash: dict[str, str]  # --resume: previous final part -> where prepare_output moves it
    previous: list[tuple[str, str]]  # --resume: (tag, path) of the earlier results, once stashed


def plan(args: argparse.Namespace, run: RunSettings) -> HydratePlan:
    if args.archive:
        sources = files.expand_inputs(args.archive)
        input_bytes = files.total_size(sources)
    else:
        sources = ids.resolve_sources(args.ids, args.id_column)
        input_bytes = files.total_size([s.path for s in sources])
        if not run.dataflow:
            token_source(args).read()  # fail fast on a missing token; the value is dropped at once
    estimated = max(1, input_bytes // (archives.BYTES_PER_TWEET if args.archive else BYTES_PER_ID))
    stash = resume.stash_moves(args.output) if args.resume else {}
    return HydratePlan(
        args=args,
        run=run,
        sources=sources,
        input_bytes=input_bytes,
        id_shards=max(1, min(1024, math.ceil(estimated / IDS_PER_PLAN_SHARD))),
        part_shards=max(1, min(256, math.ceil(estimated / ROWS_PER_PART))),
        stash=stash,
        previous=resume.results_after_stash(args.output, stash) if args.resume else [],
    )


def progress_total(plan: HydratePlan) -> tuple[None, str]:
    """IDs looked up; the total is set once the IDs are read and cut into batches (lookup.py)."""
    return None, "IDs"


def prepare_output(plan: HydratePlan) -> None:
    args, output = plan.args, plan.output
    existing = files.list_parquet(files.join(output, "tweets")) or files.list_parquet(files.join(output, "unavailable"))
    existing = existing or files.exists(files.join(output, resume.PROGRESS))
    if existing and not (args.resume or args.overwrite):
        raise ConfigError(
            f"{output} already holds hydrate output: pass --resume to continue it "
            "or --overwrite to replace it"
        )
    if args.resume:
        resume.stash_previous_parts(plan.stash)
    if args.overwrite:
        for name in OUTPUT_DIRS:
            files.remove(files.join(output, name))
    for name in DATASETS:
        files.begin_output(files.join(output, name), NAME)


def _count_statuses(table: pa.Table, dataset: str) -> pa.Table:
    if dataset == "tweets":
        Metrics.counter(NAMESPACE, "status_ok").inc(table.num_rows)
    else:
        for item in table.column("status").value_counts().to_pylist():
            Metrics.counter(NAMESPACE, f"status_{item['values']}").inc(item["counts"])
    return table


def _partitions(p: beam.Pipeline, plan: HydratePlan) -> int:
    """Dataflow VMs do not share a pacing directory: each gets 1/max_num_workers of the window budget."""
    if not plan.run.dataflow:
        return 1
    return max(1, p.options.view_as(WorkerOptions).max_num_workers or 1)


def build(p: beam.Pipeline, plan: HydratePlan) -> None:
    args, output = plan.args, plan.output
    if args.archive:
        result = p | "ReadArchives" >> archives.ReadArchives(plan.sources)
        tweets, unavailable, errors = result["tweets"], result["unavailable"], result["errors"]
    else:
        read = p | "ReadIds" >> ids.ReadTweetIds(plan.sources)
        inputs = {"ids": read["ids"]}
        if plan.previous:
            inputs["previous"] = p | "ReadPrevious" >> resume.ReadPreviousResults(plan.previous)
        hydrated = inputs | "Hydrate" >> hyd.HydrateTweets(
            client_config=client_config(args, _partitions(p, plan)),
            token_source=token_source(args),
            # Per run: a retried bundle reuses its batch's file; a later run never does (it reads
            # the files as settled instead, and retries the failed IDs in them).
            progress_dir=files.join(output, resume.PROGRESS, f"run-{secrets.token_hex(6)}"),
            batch_size=args.batch_size,
            num_id_shards=plan.id_shards,
            max_reads=args.max_reads,
        )
        tweets = hydrated["tweets"]
        unavailable = (hydrated["unavailable"], read["invalid"]) | "MergeUnavailable" >> beam.Flatten()
        errors = read["errors"]
    written_tweets = (
        tweets
        | "TweetTables" >> ToTables(TWEETS)
        | "CountTweets" >> beam.Map(_count_statuses, dataset="tweets")
        | "WriteTweets" >> WriteDataset(files.join(output, "tweets"), TWEETS, num_shards=plan.part_shards)
    )
    written_unavailable = (
        unavailable
        | "UnavailableTables" >> ToTables(UNAVAILABLE)
        | "CountUnavailable" >> beam.Map(_count_statuses, dataset="unavailable")
        | "WriteUnavailable"
        >> WriteDataset(files.join(output, "unavailable"), UNAVAILABLE, num_shards=plan.part_shards)
    )
    errors | "WriteErrors" >> WriteErrors(output, NAME)
    datasets = {files.join(output, "tweets"): TWEETS, files.join(output, "unavailable"): UNAVAILABLE}
    written = (written_tweets, written_unavailable) | "AllWritten" >> beam.Flatten()
    _ = written | "MarkComplete" >> MarkComplete(
        datasets, NAME, empty_name=f"part-00000-of-{plan.part_shards:05d}.parquet"
    )


def finish(result, plan: HydratePlan, elapsed_s: float) -> dict:
    args, output = plan.args, plan.output
    c = counters(result, NAMESPACE)
    statuses = {"ok": c.get("status_ok", 0)}
    statuses.update({s: c.get(f"status_{s}", 0) for s in UNAVAILABLE_STATUSES})
    settled = sum(statuses.values())
    if args.archive:
        expected = c.get("archive_tweets_distinct", 0) + c.get("archive_unavailable_distinct", 0)
        conservation = {
            "records_in": c.get("archive_records", 0),
            "settled": settled,
            "duplicates": c.get("archive_duplicates", 0),
            "rejected": c.get("archive_rejected", 0),
        }
    else:
        expected = c.get("distinct_ids", 0) + c.get("invalid_distinct", statuses["invalid_id"])
        lines = ("input_lines", "blank_lines", "valid_lines", "invalid_lines", "duplicate_ids")
        conservation = {k: c.get(k, 0) for k in (*lines, "distinct_ids", "resumed_ids")}
        conservation["requested_ids"] = c.get("ids_to_request", 0) - c.get("ids_over_read_budget", 0)
        conservation["settled"] = settled
    summary = {
        "output": output,
        "mode": "archive" if args.archive else "api",
        "statuses": statuses,
        "ids_settled": settled,
        "conservation_ok": settled == expected,
        "conservation": conservation,
        "requests": c.get("requests", 0),
        "billable_reads": c.get("billable_reads", 0),
        "rate_limit_wait_s": round(c.get("rate_limit_wait_ms", 0) / 1000.0, 1),
        "batches": c.get("batches", 0),
        "batches_reused_from_progress": c.get("batches_reused_from_progress", 0),
        "ids_over_read_budget": c.get("ids_over_read_budget", 0),
        "invalid_by_reason": {
            k[len("invalid_") :]: v
            for k, v in c.items()
            if k.startswith("invalid_") and k not in ("invalid_lines", "invalid_distinct")
        },
        "elapsed_s": round(elapsed_s, 1),
        "counters": c,
    }
    if c.get("valid_lines", 0) >= 100 and c.get("ids_ending_00", 0) > 0.3 * c["valid_lines"]:
        LOG.warning(
            "hydrate: %d of %d IDs end in 00: the input may have been damaged by a spreadsheet",
            c["ids_ending_00"],
            c["valid_lines"],
        )
        summary["warning"] = "many IDs end in 00 (spreadsheet damage?)"
    if summary["ids_over_read_budget"]:
        LOG.warning(
            "hydrate: --max_reads %s reached: %d IDs were not requested; rerun with --resume to continue",
            args.max_reads,
            summary["ids_over_read_budget"],
        )
    if not args.archive:
        # The final parts hold every settled ID: the per-batch files are not needed any more.
        files.remove(files.join(output, resume.PROGRESS))
    stats = {k: v for k, v in summary.items() if k != "elapsed_s"}
    write_stats(output, NAME, stats, functools.partial(stats_report, "hydrate report"))
    summary["report"] = files.join(output, "reports", NAME, "report.html")
    LOG.info(
        "hydrate: %s; %d requests, %.1f s waiting for rate limits",
        ", ".join(f"{k}={v}" for k, v in statuses.items()),
        summary["requests"],
        summary["rate_limit_wait_s"],
    )
    return summary
