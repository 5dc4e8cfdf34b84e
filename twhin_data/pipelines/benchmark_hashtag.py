"""`twhin-data benchmark hashtag`: the paper's multilingual hashtag-prediction benchmark from ID,label files."""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass

import apache_beam as beam

from twhin_data.core import files
from twhin_data.core.report import write_stats
from twhin_data.pipelines import flags as opts
from twhin_data.pipelines.plan import Plan, RunSettings
from twhin_data.schemas.benchmark import TWEET_INPUT
from twhin_data.transforms.benchmark import common
from twhin_data.transforms.benchmark import hashtag as bt
from twhin_data.transforms.benchmark import read as bio
from twhin_data.transforms.benchmark.report import (
    open_output,
    read_json,
    rejected_of,
    render_report,
)
from twhin_data.transforms.io import WriteErrors
from twhin_data.transforms.metrics import counters

NAME = "benchmark hashtag"
STAGE = bt.STAGE
LEAK_REASONS = ("label_not_in_text", "label_leak_remains", "other_label_hashtag", "empty_after_removal")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels",
        required=True,
        help="Released ID,label files: file, directory, glob (comma-separated allowed) or the "
        "hashtag-classification-id.zip archive itself. TSV or CSV, delimiter detected per file.",
    )
    parser.add_argument(
        "--tweets", required=True, help="Hydrate output: DIR (reads DIR/tweets/*.parquet) or a Parquet glob."
    )
    parser.add_argument("--tokenizer", default=None, help="tokenizer.json path or Hub name: adds input_ids.")
    parser.add_argument(
        "--max_labels_per_lang",
        type=opts.positive_int,
        default=500,
        help="Keep the N most frequent labels of each language (paper: 500).",
    )
    parser.add_argument(
        "--split",
        default="0.8,0.1,0.1",
        help="train,validation,test fractions, assigned by a salted hash of the tweet ID; or 'released' "
        "to keep the split named by each label file (train/dev/test).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Salt of the split hash.")
    parser.add_argument(
        "--lang_column", default="lang", help="Language column of the label files, when they have one."
    )
    parser.add_argument(
        "--no_placeholders",
        action="store_true",
        help="Keep @mentions and URLs instead of the @user / http placeholders of normalize_v1.",
    )


def fractions_of(split: str) -> tuple[float, float, float] | None:
    """--split as train,validation,test fractions; None for 'released' (each label file names its split)."""
    return None if split.strip() == "released" else common.parse_split(split)


def validate(args: argparse.Namespace) -> None:
    fractions_of(args.split)


@dataclass(frozen=True)
class HashtagPlan(Plan):
    fractions: tuple[float, float, float] | None  # --split; None: the released splits
    label_sources: list[bio.LabelSource]  # the label files of --labels (zip members included)
    tweet_files: list[str]  # hydrate's tweets/*.parquet
    unavailable_files: list[str]  # hydrate's unavailable/*.parquet (empty without them)


def plan(args: argparse.Namespace, run: RunSettings) -> HashtagPlan:
    label_sources = bio.label_sources(args.labels)
    for source in label_sources:
        bio.check_label_source(source, args.lang_column)
    tweet_files = bio.tweet_files(args.tweets)
    common.check_tokenizer(args.tokenizer)
    return HashtagPlan(
        args=args,
        run=run,
        fractions=fractions_of(args.split),
        label_sources=label_sources,
        tweet_files=tweet_files,
        unavailable_files=bio.unavailable_files(args.tweets),
    )


def progress_total(plan: HashtagPlan) -> tuple[int, str]:
    """Label rows of the label files, counted by their lines (a malformed line counts as one row)."""
    lang_column = plan.args.lang_column
    total = sum(bio.count_label_rows(bio.read_source_bytes(s), lang_column) for s in plan.label_sources)
    return total, "labels"


def prepare_output(plan: HashtagPlan) -> None:
    open_output(plan.output, plan.args.overwrite, STAGE)


def build(p: beam.Pipeline, plan: HashtagPlan):
    args = plan.args
    labels = p | "ReadLabels" >> bio.ReadLabelFiles(
        plan.label_sources, stage=STAGE, lang_column=args.lang_column
    )
    tweets = p | "ReadTweets" >> bio.ReadParquetTables(plan.tweet_files, TWEET_INPUT.names)
    unavailable = p | "ReadUnavailable" >> bio.ReadUnavailable(plan.unavailable_files)
    examples = (labels.main, tweets, unavailable) | "JoinLabelsWithTweets" >> bt.JoinLabelsWithTweets(
        common.spill_folder(args.output), placeholders=not args.no_placeholders
    )
    vocabulary = examples.main | "BuildLabelVocabulary" >> bt.BuildLabelVocabulary(args.max_labels_per_lang)
    written = examples.main | "WriteBenchmark" >> bt.WriteHashtagBenchmark(
        args.output, vocabulary, tokenizer=args.tokenizer, fractions=plan.fractions, seed=args.seed
    )
    manifest = written.main | "WriteManifestAndCard" >> common.WriteManifestAndCard(
        args.output, render_card, stage=STAGE
    )
    errors = (labels.errors, examples.errors, written.errors) | "AllErrors" >> beam.Flatten()
    errors | "WriteErrors" >> WriteErrors(args.output, STAGE)
    return manifest


def render_card(manifest: dict) -> str:
    """The dataset card: one config per language, data_files per split."""
    langs = common.languages_in(manifest)
    configs = [common.card_config(manifest, lang, lang, {s: s for s in common.SPLITS}) for lang in langs]
    rows = [
        [
            lang,
            *(common.rows_of(manifest, lang, s) for s in common.SPLITS),
            common.rows_of(manifest, lang, "labels"),
        ]
        for lang in langs
    ]
    body = "\n".join(
        [
            "## Languages",
            "",
            common.markdown_table(["config", *common.SPLITS, "labels"], rows),
            "",
            "## Files",
            "",
            "- `<lang>/{train,validation,test}.parquet`: `tweet_id, lang, split, text, label, label_id, input_ids`;"
            " `text` is the normalized tweet with every occurrence of its label hashtag removed.",
            "- `<lang>/labels.parquet`: the label vocabulary (`label_id` 0 = most frequent).",
            "- `manifest.json`: every file with its rows and sha256.",
            "",
            'Load one language with `datasets.load_dataset("<this directory>", "<lang>")`.',
            "Tweet texts are subject to X's terms: share tweet IDs, not this directory.",
        ]
    )
    return common.dataset_card(
        "Hashtag prediction benchmark (TwHIN-BERT)",
        "Built by `twhin-data benchmark hashtag` from released `ID,label` files and hydrated tweets "
        "(arXiv 2209.07562, section 3).",
        configs,
        body,
        manifest=manifest,
        task_categories=["text-classification"],
    )


def finish(result, plan: HashtagPlan, elapsed_s: float) -> dict:
    args = plan.args
    counts = counters(result, STAGE)
    rejected = rejected_of(counts)
    kept = {s: counts.get(f"kept_{s}", 0) for s in common.SPLITS}
    manifest_path = files.join(args.output, "manifest.json")
    manifest = read_json(manifest_path) if files.exists(manifest_path) else {"files": []}
    per_language = {
        lang: {name: common.rows_of(manifest, lang, name) for name in (*common.SPLITS, "labels")}
        for lang in common.languages_in(manifest)
    }
    labels_read = counts.get("labels_read", 0)
    duplicates = counts.get("duplicate_label_rows", 0)
    malformed = sum(v for k, v in rejected.items() if k.startswith("malformed_"))
    found = counts.get("tweets_found", 0)
    steps = {
        "labels_read": labels_read,
        "malformed_label_rows": malformed,
        "duplicate_label_rows": duplicates,
        "conflicting_label": rejected.get("conflicting_label", 0),
        "unavailable": rejected.get("unavailable", 0),
        "not_hydrated": rejected.get("not_hydrated", 0),
        "tweets_found": found,
        "leaked": {r: rejected.get(r, 0) for r in LEAK_REASONS},
        "label_not_in_top_k": rejected.get("label_not_in_top_k", 0),
        "kept": kept,
    }
    after_found = sum(
        v
        for k, v in rejected.items()
        if not k.startswith("malformed_") and k not in ("conflicting_label", "unavailable", "not_hydrated")
    )
    stats = {
        "stage": STAGE,
        "in": labels_read,
        "out": sum(kept.values()),
        "rejected": dict(sorted(rejected.items())),
        "duplicates": duplicates,
        "steps": steps,
        "checks": {
            "in == out + rejected + duplicates": labels_read
            == sum(kept.values()) + sum(rejected.values()) + duplicates,
            "tweets_found == out + rejected after the join": found == sum(kept.values()) + after_found,
        },
        "per_language": per_language,
        "parameters": {
            "labels": args.labels,
            "tweets": args.tweets,
            "tokenizer": args.tokenizer,
            "max_labels_per_lang": args.max_labels_per_lang,
            "split": args.split,
            "seed": args.seed,
            "placeholders": not args.no_placeholders,
        },
        "elapsed_s": round(elapsed_s, 3),
    }
    write_stats(args.output, STAGE, stats, functools.partial(render_report, STAGE))
    return {
        "stage": STAGE,
        "report": files.join(args.output, "reports", STAGE, "report.html"),
        "output": args.output,
        "languages": len(per_language),
        "in": stats["in"],
        "out": stats["out"],
        "rejected": sum(rejected.values()),
        "duplicates": duplicates,
        "balanced": all(stats["checks"].values()),
    }
