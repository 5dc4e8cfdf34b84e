"""`twhin-data hydrate`: tweet IDs (or archives) -> tweets/, unavailable/, errors/hydrate/, reports/hydrate/."""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import secrets

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.runners import options as opts
from twhin_data.schemas.tweets import TWEETS, UNAVAILABLE, UNAVAILABLE_STATUSES
from twhin_data.transforms import hydrate as hyd
from twhin_data.transforms.io import ToTables, WriteDataset, WriteErrors

NAME = "hydrate"
HELP = "Hydrate tweet IDs through the X API v2 (paced, resumable), or read already-hydrated archives."
LOG = logging.getLogger("twhin_data.hydrate")
NAMESPACE = "hydrate"
#: bytes of ID-file input per expected ID, used only to size shards (a deterministic function of the input).
BYTES_PER_ID = 20
IDS_PER_PLAN_SHARD = 250_000
ROWS_PER_PART = 1_000_000
_FIELD_RE = re.compile(r"^[a-z_.]+$")


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
        help="Comma-separated tweet.fields (default: the R5 set: text, lang, created_at, author_id, "
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


def _has_parts(path: str) -> bool:
    return files.exists(path) and bool(FileSystems.match([files.join(path, "*.parquet")])[0].metadata_list)


def _clear(output: str) -> None:
    """--overwrite: removes exactly what hydrate writes in `output`."""
    for name in (
        "tweets",
        "unavailable",
        hyd.PROGRESS,
        os.path.join("errors", NAME),
        os.path.join("reports", NAME),
    ):
        files.remove(files.join(output, name))


def _drop_progress(output: str) -> None:
    """After a successful run the final parts hold every settled ID: per-batch files are not needed."""
    files.remove(files.join(output, hyd.PROGRESS))


def token_source(args: argparse.Namespace):
    from twhin_data.xapi.auth import TokenSource

    return TokenSource(file=args.bearer_token_file, secret=args.bearer_token_secret)


def client_config(args: argparse.Namespace, partitions: int = 1):
    from twhin_data.xapi.client import DEFAULT_EXPANSIONS, DEFAULT_TWEET_FIELDS, ClientConfig

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
    from twhin_data.transforms import archives, ids

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
    existing = _has_parts(files.join(args.output, "tweets")) or _has_parts(
        files.join(args.output, "unavailable")
    )
    existing = existing or files.exists(files.join(args.output, hyd.PROGRESS))
    if existing and not (args.resume or args.overwrite):
        raise ConfigError(
            f"{args.output} already holds hydrate output: pass --resume to continue it "
            "or --overwrite to replace it"
        )
    if args.archive and (args.resume or args.max_reads is not None):
        raise ConfigError("--resume and --max_reads apply to --ids (an archive run makes no API call)")
    if args.archive:
        args.sources = files.expand_inputs(args.archive)
        args.input_bytes = _total_bytes(args.sources)
    else:
        args.sources = ids.resolve_sources(args.ids, args.id_column)
        args.input_bytes = _total_bytes([s.path for s in args.sources])
        client_config(args).validate()
        if not getattr(args, "dataflow", False):
            token_source(args).read()  # fail fast on a missing token; the value is dropped at once
    estimated = max(1, args.input_bytes // (archives.BYTES_PER_TWEET if args.archive else BYTES_PER_ID))
    args.id_shards = max(1, min(1024, math.ceil(estimated / IDS_PER_PLAN_SHARD)))
    args.part_shards = max(1, min(256, math.ceil(estimated / ROWS_PER_PART)))
    if args.resume and not args.archive:
        hyd.stash_previous_parts(args.output)
    args.previous = hyd.previous_result_files(args.output) if args.resume else []
    if args.overwrite:
        _clear(args.output)


def _total_bytes(paths: list[str]) -> int:
    return sum(m.size_in_bytes for result in FileSystems.match(paths) for m in result.metadata_list)


def _count_statuses(table: pa.Table, dataset: str) -> pa.Table:
    if dataset == "tweets":
        Metrics.counter(NAMESPACE, "status_ok").inc(table.num_rows)
    else:
        for item in table.column("status").value_counts().to_pylist():
            Metrics.counter(NAMESPACE, f"status_{item['values']}").inc(item["counts"])
    return table


def _partitions(p: beam.Pipeline, args: argparse.Namespace) -> int:
    """Dataflow VMs do not share a pacing directory: each gets 1/max_num_workers of the window budget."""
    if not getattr(args, "dataflow", False):
        return 1
    from apache_beam.options.pipeline_options import WorkerOptions

    return max(1, p.options.view_as(WorkerOptions).max_num_workers or 1)


def build(p: beam.Pipeline, args: argparse.Namespace) -> None:
    output = args.output
    if args.archive:
        from twhin_data.transforms.archives import ReadArchives

        result = p | "ReadArchives" >> ReadArchives(args.sources)
        tweets, unavailable, errors = result["tweets"], result["unavailable"], result["errors"]
    else:
        from twhin_data.transforms.ids import ReadTweetIds

        read = p | "ReadIds" >> ReadTweetIds(args.sources)
        inputs = {"ids": read["ids"]}
        if args.previous:
            inputs["previous"] = p | "ReadPrevious" >> hyd.ReadPreviousResults(args.previous)
        hydrated = inputs | "Hydrate" >> hyd.HydrateTweets(
            client_config=client_config(args, _partitions(p, args)),
            token_source=token_source(args),
            # Per run: a retried bundle reuses its batch's file; a later run never does (it reads
            # the files as settled instead, and retries the failed IDs in them).
            progress_dir=files.join(output, hyd.PROGRESS, f"run-{secrets.token_hex(6)}"),
            batch_size=args.batch_size,
            num_id_shards=args.id_shards,
            max_reads=args.max_reads,
        )
        tweets = hydrated["tweets"]
        invalid = read["invalid"]
        unavailable = (hydrated["unavailable"], invalid) | "MergeUnavailable" >> beam.Flatten()
        errors = read["errors"]
    (
        tweets
        | "TweetTables" >> ToTables(TWEETS)
        | "CountTweets" >> beam.Map(_count_statuses, dataset="tweets")
        | "WriteTweets" >> WriteDataset(files.join(output, "tweets"), TWEETS, num_shards=args.part_shards)
    )
    (
        unavailable
        | "UnavailableTables" >> ToTables(UNAVAILABLE)
        | "CountUnavailable" >> beam.Map(_count_statuses, dataset="unavailable")
        | "WriteUnavailable"
        >> WriteDataset(files.join(output, "unavailable"), UNAVAILABLE, num_shards=args.part_shards)
    )
    errors | "WriteErrors" >> WriteErrors(output, NAME)


def finish(result, args: argparse.Namespace) -> dict:
    from twhin_data.runners.launch import counters

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
        conservation = {
            "input_lines": c.get("input_lines", 0),
            "blank_lines": c.get("blank_lines", 0),
            "valid_lines": c.get("valid_lines", 0),
            "invalid_lines": c.get("invalid_lines", 0),
            "duplicate_ids": c.get("duplicate_ids", 0),
            "distinct_ids": c.get("distinct_ids", 0),
            "resumed_ids": c.get("resumed_ids", 0),
            "requested_ids": c.get("ids_to_request", 0) - c.get("ids_over_read_budget", 0),
            "settled": settled,
        }
    summary = {
        "output": args.output,
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
        "elapsed_s": round(getattr(args, "elapsed_s", 0.0), 1),
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
    for name, schema in (("tweets", TWEETS), ("unavailable", UNAVAILABLE)):
        path = files.join(args.output, name)
        if not _has_parts(path):  # no rows at all: still leave a readable, empty dataset
            files.write_parquet_atomic(
                files.join(path, f"part-00000-of-{args.part_shards:05d}.parquet"), schema.empty_table()
            )
    if not args.archive:
        _drop_progress(args.output)
    files.write_json(
        files.join(args.output, "reports", NAME, "stats.json"),
        {k: v for k, v in summary.items() if k != "elapsed_s"},
    )
    LOG.info(
        "hydrate: %s; %d requests, %.1f s waiting for rate limits",
        ", ".join(f"{k}={v}" for k, v in statuses.items()),
        summary["requests"],
        summary["rate_limit_wait_s"],
    )
    return summary
