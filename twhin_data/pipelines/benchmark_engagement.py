"""`twhin-data benchmark engagement`: the paper's engagement-prediction benchmark (HITS@10 candidate lists)."""

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
from twhin_data.transforms.benchmark import engagement as be
from twhin_data.transforms.benchmark import engagement_read as beio
from twhin_data.transforms.benchmark import engagement_records as ber
from twhin_data.transforms.benchmark import read as bio
from twhin_data.transforms.benchmark.report import (
    open_output,
    read_json,
    rejected_of,
    render_report,
)
from twhin_data.transforms.io import WriteErrors
from twhin_data.transforms.metrics import counters

NAME = "benchmark engagement"
STAGE = beio.STAGE
FILES = (
    "train",
    "validation",
    "test",
    "validation_candidates",
    "test_candidates",
    "train_negatives",
    "tweets",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engagements",
        required=True,
        help="Engagement logs (user_id, tweet_id, type, ts): CSV/TSV with a header, JSONL or Parquet; "
        "file, directory or glob.",
    )
    parser.add_argument(
        "--tweets", required=True, help="Hydrate output: DIR (reads DIR/tweets/*.parquet) or a Parquet glob."
    )
    parser.add_argument(
        "--user_embeddings",
        required=True,
        help="Parquet files with user_id and one list<float> column (embedding, user_emb, emb or vector).",
    )
    parser.add_argument(
        "--negatives",
        type=opts.positive_int,
        default=999,
        help="Negatives per validation/test candidate list (paper: 999, so 1,000 candidates).",
    )
    parser.add_argument("--split", default="0.8,0.1,0.1", help="Tweet-level train,validation,test fractions.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of every hash and sampler.")
    parser.add_argument(
        "--max_tweets_per_lang",
        type=opts.positive_int,
        default=10_000,
        help="Tweets sampled per language (uniform, by salted hash of the tweet ID; paper: 10,000).",
    )
    parser.add_argument(
        "--records_per_user",
        type=opts.positive_int,
        default=1,
        help="Records per user embedding (paper: 1, each user embedding appears once, for privacy).",
    )
    parser.add_argument(
        "--tokenizer", default=None, help="tokenizer.json path or Hub name: adds input_ids to tweets."
    )
    parser.add_argument(
        "--no_placeholders", action="store_true", help="Keep @mentions and URLs instead of @user / http."
    )


def validate(args: argparse.Namespace) -> None:
    common.parse_split(args.split)


@dataclass(frozen=True)
class EngagementPlan(Plan):
    fractions: tuple[float, float, float]  # --split
    engagement_files: list[str]
    embedding_files: list[str]
    tweet_files: list[str]  # hydrate's tweets/*.parquet
    unavailable_files: list[str]  # hydrate's unavailable/*.parquet (empty without them)


def plan(args: argparse.Namespace, run: RunSettings) -> EngagementPlan:
    engagement_files = files.expand_inputs(args.engagements)
    embedding_files = files.expand_inputs(args.user_embeddings, suffixes=(".parquet",))
    beio.check_embedding_files(embedding_files)
    tweet_files = bio.tweet_files(args.tweets)
    common.check_tokenizer(args.tokenizer)
    return EngagementPlan(
        args=args,
        run=run,
        fractions=common.parse_split(args.split),
        engagement_files=engagement_files,
        embedding_files=embedding_files,
        tweet_files=tweet_files,
        unavailable_files=bio.unavailable_files(args.tweets),
    )


def prepare_output(plan: EngagementPlan) -> None:
    open_output(plan.output, plan.args.overwrite, STAGE)


def build(p: beam.Pipeline, plan: EngagementPlan):
    args = plan.args
    pairs, read_errors = p | "ReadEngagements" >> beio.ReadEngagementPairs(plan.engagement_files)
    tweet_tables = p | "ReadTweets" >> bio.ReadParquetTables(plan.tweet_files, TWEET_INPUT.names)
    unavailable = p | "ReadUnavailable" >> bio.ReadUnavailable(plan.unavailable_files)
    attached = (pairs, tweet_tables, unavailable) | "AttachTweets" >> be.AttachTweets(
        placeholders=not args.no_placeholders
    )
    sampled = attached.main | "SampleAndSplit" >> be.SampleAndSplitTweets(
        max_tweets=args.max_tweets_per_lang, fractions=plan.fractions, seed=args.seed
    )
    embeddings = p | "ReadEmbeddings" >> bio.ReadParquetTables(plan.embedding_files, [])
    records, emb_errors = (sampled.main, embeddings) | "PickUserRecords" >> ber.PickUserRecords(
        per_user=args.records_per_user, seed=args.seed
    )
    infos = (records, sampled.tweets) | "WriteBenchmark" >> be.WriteEngagementBenchmark(
        args.output, negatives=args.negatives, seed=args.seed, tokenizer=args.tokenizer
    )
    manifest = infos | "WriteManifestAndCard" >> common.WriteManifestAndCard(args.output, render_card, stage=STAGE)
    errors = (read_errors, attached.errors, emb_errors) | "AllErrors" >> beam.Flatten()
    errors | "WriteErrors" >> WriteErrors(args.output, STAGE)
    return manifest


def render_card(manifest: dict) -> str:
    langs = common.languages_in(manifest)
    configs = []
    for lang in langs:
        configs += [
            common.card_config(manifest, lang, lang, {s: s for s in common.SPLITS}),
            common.card_config(
                manifest, lang, f"{lang}_candidates", {s: f"{s}_candidates" for s in ("validation", "test")}
            ),
            common.card_config(manifest, lang, f"{lang}_tweets", {"train": "tweets"}),
        ]
    rows = [[lang, *(common.rows_of(manifest, lang, name) for name in FILES)] for lang in langs]
    body = "\n".join(
        [
            "## Languages",
            "",
            common.markdown_table(["lang", *FILES], rows),
            "",
            "## Files per language",
            "",
            "- `{train,validation,test}.parquet`: records `lang, split, user_row, tweet_id, user_emb` (one per"
            " user embedding; tweets are split 0.8/0.1/0.1 by hashed tweet ID and records follow their tweet).",
            "- `{validation,test}_candidates.parquet`: `user_row, candidate_tweet_ids, positive_index`: the engaged"
            " tweet plus N negatives from the same language and split.",
            "- `train_negatives.parquet`: training negative sampler, P(tweet) ∝ count^0.75.",
            "- `tweets.parquet`: `tweet_id, lang, split, text, input_ids` of every sampled tweet.",
            "",
            "Evaluate with `twhin-data benchmark evaluate --benchmark <this directory> --scores <file>`"
            " (HITS@10, with random and popularity baselines).",
        ]
    )
    return common.dataset_card(
        "Engagement prediction benchmark (TwHIN-BERT)",
        "Built by `twhin-data benchmark engagement` (arXiv 2209.07562, section 3.2).",
        [c for c in configs if c],
        body,
        manifest=manifest,
        task_categories=["text-retrieval"],
    )


def finish(result, plan: EngagementPlan, elapsed_s: float) -> dict:
    args = plan.args
    counts = counters(result, STAGE)
    rejected = rejected_of(counts)
    read = counts.get("engagements_read", 0)
    malformed = sum(v for k, v in rejected.items() if k.startswith("malformed_"))
    pairs = counts.get("distinct_pairs", 0)
    duplicates = read - malformed - pairs
    kept = {s: counts.get(f"records_{s}", 0) for s in common.SPLITS}
    manifest_path = files.join(args.output, "manifest.json")
    manifest = read_json(manifest_path) if files.exists(manifest_path) else {"files": []}
    per_language = {
        lang: {name: common.rows_of(manifest, lang, name) for name in FILES}
        for lang in common.languages_in(manifest)
    }
    out = sum(kept.values())
    stats = {
        "stage": STAGE,
        "unit": "engagement rows (a (user, tweet) pair after dedup)",
        "in": read,
        "out": out,
        "rejected": rejected,
        "duplicates": duplicates,
        "steps": {
            "engagements_read": read,
            "malformed": malformed,
            "duplicate_pairs": duplicates,
            "distinct_pairs": pairs,
            "tweet_unavailable": rejected.get("tweet_unavailable", 0),
            "tweet_not_hydrated": rejected.get("tweet_not_hydrated", 0),
            "tweet_no_language": rejected.get("tweet_no_language", 0),
            "tweet_not_sampled": rejected.get("tweet_not_sampled", 0),
            "user_embedding_missing": rejected.get("user_embedding_missing", 0),
            "bad_user_embedding": rejected.get("bad_user_embedding", 0),
            "user_already_used": rejected.get("user_already_used", 0),
            "records": kept,
        },
        "checks": {"in == out + rejected + duplicates": read == out + sum(rejected.values()) + duplicates},
        "short_candidate_lists": counts.get("short_candidate_lists", 0),
        "duplicate_user_embeddings": counts.get("duplicate_user_embeddings", 0),
        "per_language": per_language,
        "parameters": {
            "engagements": args.engagements,
            "tweets": args.tweets,
            "user_embeddings": args.user_embeddings,
            "negatives": args.negatives,
            "split": args.split,
            "seed": args.seed,
            "max_tweets_per_lang": args.max_tweets_per_lang,
            "records_per_user": args.records_per_user,
            "tokenizer": args.tokenizer,
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
        "in": read,
        "out": out,
        "rejected": sum(rejected.values()),
        "duplicates": duplicates,
        "short_candidate_lists": stats["short_candidate_lists"],
        "balanced": all(stats["checks"].values()),
    }
