"""`twhin-data prepare`: hydrated tweets -> normalized, language-tagged, deduplicated corpus."""

from __future__ import annotations

import argparse
import logging
import os

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.runners import options as opts
from twhin_data.schemas.tweets import TWEETS
from twhin_data.text import langid
from twhin_data.text.normalize import NORMALIZERS
from twhin_data.transforms import prepare as prep
from twhin_data.transforms import prepare_stats as st
from twhin_data.transforms.io import WriteErrors
from twhin_data.transforms.prepare_read import (
    keyed_file_tasks,
    read_tables,  # noqa: F401 - re-exported for tools
)
from twhin_data.transforms.prepare_spill import PrepareTweets

NAME = "prepare"
#: Modules the pool's fork server imports once (runners/launch.py starts it early; none imports Beam).
POOL_PRELOAD = ["twhin_data.transforms.prepare_steps"]
HELP = "Normalize, language-tag, filter, dedupe and resample hydrated tweets into corpus/."
LOG = logging.getLogger("twhin_data.prepare")
PARTIAL_STATS = "_pipeline_stats.json"
#: Temporary directory of the output (slices between the pooled steps); removed by finish().
TMP = "_tmp_prepare"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tweets",
        required=True,
        help="Hydrate output: a directory (DIR/tweets/*.parquet if present, else DIR/*.parquet), "
        "a Parquet file or a glob; comma-separated allowed.",
    )
    parser.add_argument(
        "--lang_detector",
        default="fasttext",
        choices=sorted(langid.DETECTORS),
        help="Language-ID backend: fasttext (lid.176, default), langdetect (slow) or x (the API's lang).",
    )
    parser.add_argument(
        "--normalizer",
        default="normalize_v1",
        choices=sorted(NORMALIZERS),
        help="Normalizer version (a published version never changes its output).",
    )
    parser.add_argument(
        "--no_placeholders",
        action="store_true",
        help="Keep @mentions and URLs as written instead of @user / http placeholders.",
    )
    parser.add_argument("--strip_rt", action="store_true", help="Remove a leading 'RT @name:' prefix.")
    parser.add_argument(
        "--min_chars",
        type=opts.non_negative_int,
        default=1,
        help="Drop tweets whose normalized text is shorter (code points) as too_short.",
    )
    parser.add_argument(
        "--max_chars",
        type=opts.positive_int,
        default=100_000,
        help="Reject texts longer than this before normalization as text_too_long.",
    )
    parser.add_argument(
        "--dedup",
        default="exact",
        choices=["exact", "none"],
        help="exact: one tweet per normalized text (lowest tweet ID); none: keep repeats.",
    )
    parser.add_argument(
        "--resample_alpha",
        type=float,
        default=1.0,
        help="Language resampling exponent: q_l ~ n_l^alpha (1.0 = off, 0.7 = the paper).",
    )
    parser.add_argument(
        "--resample_min_count",
        type=opts.non_negative_int,
        default=100,
        help="Languages with fewer tweets (after dedup) are kept whole by resampling.",
    )
    parser.add_argument(
        "--languages",
        type=opts.csv_list,
        default=None,
        help="Comma-separated language codes to keep (e.g. en,ja,und); default: all.",
    )
    parser.add_argument(
        "--min_lang_score",
        type=float,
        default=None,
        help="Detector confidence below which the language is 'und' (default: 0.3 fasttext, 0.5 langdetect).",
    )
    parser.add_argument(
        "--num_output_shards",
        type=opts.positive_int,
        default=None,
        help="Parquet parts in corpus/ (default: 1 per ~200k input rows, at most 256).",
    )
    parser.add_argument(
        "--dedup_buckets",
        type=opts.positive_int,
        default=None,
        help="Text-hash buckets of the dedup step (default: 1 per 25k input rows, at most 4096; more "
        "buckets = more parallel dedup tasks); "
        "the output does not depend on it.",
    )
    parser.add_argument(
        "--keep_raw_text",
        action="store_true",
        help="Also store the hydrated text before normalization in corpus.text_raw (default: null; "
        "source_tweet_id points to the row in tweets/).",
    )


def resolve_inputs(pattern: str) -> list[str]:
    """DIR -> DIR/tweets/*.parquet when that exists, else DIR/*.parquet; globs and files as given."""
    parts = []
    for part in opts.csv_list(pattern):
        if "://" not in part and os.path.isdir(part):
            sub = os.path.join(part, "tweets")
            parts.append(sub if os.path.isdir(sub) else part)
        else:
            parts.append(part)
    try:
        return files.expand_inputs(",".join(parts), suffixes=(".parquet",))
    except ConfigError:
        raise ConfigError(f"--tweets {pattern!r}: no Parquet files found (expected hydrate output)") from None


def check_input_schema(path: str) -> None:
    """ConfigError (one line) when a file is not Parquet or lacks/mistypes the columns prepare reads."""
    try:
        with FileSystems.open(path) as handle:
            schema = pq.ParquetFile(handle).schema_arrow
    except Exception as exc:  # any reader failure means: not a Parquet file we can use
        raise ConfigError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    for name in prep.REQUIRED_COLUMNS:
        if name not in schema.names:
            raise ConfigError(
                f"{path}: missing column {name!r} (is this hydrate output? columns: "
                f"{', '.join(schema.names[:12])})"
            )
    for name in prep.INPUT_COLUMNS:
        if name in schema.names:
            have, want = schema.field(name).type, TWEETS.field(name).type
            try:
                pa.array([], type=have).cast(want)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise ConfigError(f"{path}: column {name!r} has type {have}, expected {want}") from None


def _clear(output: str) -> None:
    remove_tmp(output)
    for name in ("corpus", os.path.join("errors", NAME), os.path.join("reports", NAME)):
        files.remove(files.join(output, name))


def validate(args: argparse.Namespace) -> None:
    if not 0.0 < args.resample_alpha <= 1.0:
        raise ConfigError(f"--resample_alpha must be in (0, 1], got {args.resample_alpha}")
    if args.min_lang_score is not None and not 0.0 <= args.min_lang_score <= 1.0:
        raise ConfigError(f"--min_lang_score must be in [0, 1], got {args.min_lang_score}")
    args.languages = sorted({langid.canonical(code) for code in args.languages}) if args.languages else None
    args.inputs = resolve_inputs(args.tweets)
    total = 0
    for path in args.inputs:
        check_input_schema(path)
        with FileSystems.open(path) as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    args.input_rows = total
    if args.dedup_buckets is None:
        args.dedup_buckets = max(1, min(4096, -(-total // 25_000)))
    if args.num_output_shards is None:
        args.num_output_shards = max(1, min(256, -(-total // 200_000)))
    if files.exists(files.join(args.output, "corpus")) and not args.overwrite:
        raise ConfigError(f"{files.join(args.output, 'corpus')} exists: pass --overwrite to replace it")
    if args.overwrite:
        _clear(args.output)
    remove_tmp(args.output)  # left by a failed run: its slices are never read again
    if args.lang_detector == "fasttext":
        try:
            langid.fasttext_model_path()
        except RuntimeError as exc:
            raise ConfigError(str(exc)) from None


def config_from_args(args: argparse.Namespace) -> prep.PrepareConfig:
    return prep.PrepareConfig(
        normalizer=args.normalizer,
        placeholders=not args.no_placeholders,
        strip_rt=args.strip_rt,
        min_chars=args.min_chars,
        max_chars=args.max_chars,
        detector=args.lang_detector,
        min_lang_score=args.min_lang_score,
        languages=tuple(args.languages or ()),
        buckets=args.dedup_buckets,
        keep_raw_text=args.keep_raw_text,
    )


def _write_partial_stats(merged: dict, path: str) -> None:
    files.write_json(path, merged)


def tmp_dir(output: str) -> str:
    """Where the pooled steps hand slices to each other; removed by finish()."""
    return files.join(output, TMP)


def remove_tmp(output: str) -> None:
    """Deletes tmp_dir(output) and everything under it (object stores: every object below it)."""
    files.remove(tmp_dir(output))


def build(p: beam.Pipeline, args: argparse.Namespace) -> None:
    _files, errors, stats = (
        p
        # Only file paths go into the job graph (Dataflow caps it near 10 MB); footers are read on workers.
        | "InputFiles" >> beam.Create(list(enumerate(args.inputs)))
        | "PlanTasks" >> beam.FlatMap(keyed_file_tasks)
        # One file fans out into many tasks: spread them over workers before the heavy step.
        | "SpreadTasks" >> beam.Reshuffle()
        | "Prepare"
        >> PrepareTweets(
            config_from_args(args),
            tmp=tmp_dir(args.output),
            corpus=files.join(args.output, "corpus"),
            num_parts=args.num_output_shards,
            workers=args.workers or 1,
            exact=args.dedup == "exact",
            alpha=args.resample_alpha,
            min_count=args.resample_min_count,
        )
    )
    errors | "WriteErrors" >> WriteErrors(args.output, NAME)
    (
        stats
        | "MergeStats" >> beam.CombineGlobally(st.merge)
        | "WriteStats"
        >> beam.Map(_write_partial_stats, path=files.join(args.output, "reports", NAME, PARTIAL_STATS))
    )


def params(args: argparse.Namespace) -> dict:
    keys = (
        "tweets",
        "lang_detector",
        "normalizer",
        "no_placeholders",
        "strip_rt",
        "min_chars",
        "max_chars",
        "dedup",
        "resample_alpha",
        "resample_min_count",
        "languages",
        "min_lang_score",
        "num_output_shards",
        "dedup_buckets",
        "workers",
    )
    return {k: getattr(args, k, None) for k in keys}


def finish(result, args: argparse.Namespace) -> dict:
    from twhin_data.transforms.prepare_report import write_report

    report_dir = files.join(args.output, "reports", NAME)
    partial = files.join(report_dir, PARTIAL_STATS)
    import json

    merged = json.loads(files.read_bytes(partial)) if files.exists(partial) else {}
    remove_tmp(args.output)
    stats = st.finalize(merged, params=params(args), elapsed_s=getattr(args, "elapsed_s", None))
    files.write_json(files.join(report_dir, "stats.json"), stats)
    write_report(stats, files.join(report_dir, "report.html"))
    if not stats["balanced"]:
        LOG.error(
            "prepare: counts do not balance: in=%d out=%d rejected=%d duplicates=%d",
            stats["in"],
            stats["out"],
            stats["rejected_total"],
            stats["duplicates_total"],
        )
    top = list(stats["languages"]["after_resampling"].items())[:5]
    return {
        "stage": NAME,
        "in": stats["in"],
        "out": stats["out"],
        "rejected": stats["rejected"],
        "duplicates": stats["duplicates"],
        "top_languages": dict(top),
        "corpus": files.join(args.output, "corpus"),
        "report": files.join(report_dir, "report.html"),
        "tweets_per_s": stats["timing"]["tweets_per_s"],
    }
