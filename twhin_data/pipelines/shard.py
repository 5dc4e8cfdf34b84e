"""`twhin-data shard`: tokenize the corpus, pack tweets, write deterministic Parquet shards.

Output under --output DIR: ``mlm/{split}-{i:05d}-of-{n:05d}.parquet``, ``pairs/...`` (with
--pairs), ``manifest.json``, the dataset card ``README.md`` and ``COMPLETED`` (written last, by
the final Beam step, which first moves the shards from ``DIR/.partial/`` into place). Dead letters
go to ``DIR/errors/shard/``, stats to ``DIR/reports/shard/stats.json``; the pooled steps hand tokens
to each other under ``DIR/.tmp_shard/`` (removed at the end). See docs/shards.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from dataclasses import dataclass

import apache_beam as beam

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.parquet import check_input_schema
from twhin_data.core.report import stats_report, write_stats
from twhin_data.pipelines import flags as opts
from twhin_data.pipelines.plan import Plan, RunSettings
from twhin_data.text.tokenize import BUNDLED, TokenizerInfo, bundled_path, load_tokenizer
from twhin_data.transforms.combiners import SumDicts
from twhin_data.transforms.io import ReadTables, WriteErrors
from twhin_data.transforms.shard.manifest import DATASETS, STAGING, write_manifest
from twhin_data.transforms.shard.pairs import ShardPairs
from twhin_data.transforms.shard.tokenize import CORPUS_COLUMNS, OPTIONAL_CORPUS_COLUMNS, PAIR_COLUMNS
from twhin_data.transforms.shard.transform import ShardCorpus

NAME = "shard"
#: Modules the shard pool's fork server imports once (runners/launch.py starts it early).
POOL_PRELOAD = ["twhin_data.transforms.shard.steps", "twhin_data.transforms.shard.pair_steps"]
#: Where the pooled steps hand tokens to each other (under --output; hidden, so `load_dataset` never
#: reads it); removed by finish().
TMP = ".tmp_shard"
#: Parquet input bytes per partition of the pairs join.
PAIR_PARTITION_BYTES = 4 << 20
OUTPUT_NAMES = (STAGING, *DATASETS, "manifest.json", "README.md", "COMPLETED")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus",
        required=True,
        help="Prepared corpus: Parquet files, glob or directory (DIR means DIR/corpus/ if present).",
    )
    parser.add_argument(
        "--pairs",
        default=None,
        help="Pairs from `twhin-data graph` (file, glob or directory; DIR/pairs/ if present).",
    )
    parser.add_argument(
        "--tokenizer",
        default=BUNDLED,
        help="tokenizer.json path (local or gs://), a directory holding one, a Hub name found in the local "
        "Hugging Face cache (offline), or 'bundled' (the small 8k tokenizer shipped with twhin-data; default).",
    )
    parser.add_argument(
        "--max_length", type=opts.positive_int, default=128, help="Most token ids per sequence (default 128)."
    )
    parser.add_argument(
        "--pack",
        dest="pack",
        action="store_true",
        default=True,
        help="Pack several whole tweets per MLM row up to --max_length (the default).",
    )
    parser.add_argument(
        "--no_pack", dest="pack", action="store_false", help="One tweet per MLM row (no packing)."
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--target_shard_mb",
        type=opts.positive_int,
        default=None,
        help="Aim for shards of about this many MB of uncompressed token data (default 256).",
    )
    size.add_argument(
        "--num_shards",
        type=opts.positive_int,
        default=None,
        help="Exact number of train shards (validation gets a proportional count, at least 1).",
    )
    parser.add_argument(
        "--valid_fraction",
        type=opts.fraction,
        default=0.01,
        help="Fraction of tweets (by hashed tweet ID) in the validation split (default 0.01).",
    )
    parser.add_argument(
        "--seed",
        type=opts.non_negative_int,
        default=0,
        help="Salt of the split and shard hashes (same seed, same shards).",
    )
    parser.add_argument(
        "--engaged",
        default=None,
        help="Two-stage shards, as the paper: graph's tweets (OUT/graph/tweets, the tweets with "
        "engagements) are stage 2 (MLM + pairs), the others stage 1 (MLM only); MLM files are named "
        "stage1_train-..., stage2_validation-..., dataset-card configs stage1/stage2/pairs. `run` passes "
        "it when graph ran. Default: one stage.",
    )
    parser.add_argument(
        "--stages",
        type=opts.csv_list,
        default=["1", "2"],
        help="With --engaged: which stages to write (1, 2 or 1,2; default both); the other stage's tweets "
        "are counted as stage_not_selected.",
    )
    parser.add_argument(
        "--pair_batch_size",
        type=opts.non_negative_int,
        default=32,
        help="Lay pair shards out as batches of this many pairs in which no tweet appears twice and no "
        "author (when the corpus has author_id) in two pairs (in-batch negatives for the contrastive loss); each shard holds whole batches, pairs that fit "
        "no batch are counted (pair_unplaced). 0: plain hash order. Default 32.",
    )
    parser.add_argument(
        "--max_pairs_per_tweet",
        type=opts.non_negative_int,
        default=16,
        help="A tweet keeps its best-scoring pairs up to this many (hub tweets); the others are "
        "counted (pair_over_tweet_cap). 0: no cap. Default 16.",
    )
    parser.add_argument(
        "--batch_rows",
        type=opts.positive_int,
        default=4096,
        help="Tweets per Arrow table read and tokenized at once (default 4096).",
    )


def _input_files(pattern: str, subdir: str) -> list[str]:
    if "://" not in pattern and os.path.isdir(os.path.join(pattern, subdir)):
        pattern = os.path.join(pattern, subdir)
    return files.expand_inputs(pattern, suffixes=(".parquet",))


def validate(args: argparse.Namespace) -> None:
    if args.max_length < 4:
        raise ConfigError("--max_length must be at least 4 (<s>, a token, </s>)")
    if not args.stages or any(x not in ("1", "2") for x in args.stages):
        raise ConfigError(f"--stages: expected 1, 2 or 1,2, got {','.join(args.stages) or '(empty)'}")
    if args.engaged and args.pairs and "2" not in args.stages:
        raise ConfigError("--stages 1 writes no pair shards (pairs are stage 2's): drop --pairs or add stage 2")


@dataclass(frozen=True)
class ShardPlan(Plan):
    corpus_files: list[str]  # the Parquet files of --corpus
    corpus_rows: int  # their rows (footers): what the live progress counts
    pairs_files: list[str]  # the Parquet files of --pairs (empty without it)
    tokenizer: TokenizerInfo  # what the manifest records about --tokenizer
    target_bytes: int  # uncompressed token bytes per shard (--target_shard_mb, default 256 MB)
    engaged: str | None = None  # the folder of graph's tweets (--engaged), stage 2's tweets
    pair_parts: int = 1  # partitions of the pairs join (`pair_partitions`)


def pair_partitions(paths: list[str]) -> int:
    """Partitions of the pairs join: one per `PAIR_PARTITION_BYTES` of Parquet input (corpus and
    pairs), from 8 to 4,096. A join step holds one partition of tweets and pairs; the output does not
    depend on the count."""
    size = files.total_size(paths)
    return max(8, min(4096, -(-size // PAIR_PARTITION_BYTES)))


def plan(args: argparse.Namespace, run: RunSettings) -> ShardPlan:
    """Lists the inputs, checks their columns and loads the tokenizer (reads only)."""
    corpus_files = _input_files(args.corpus, "corpus")
    corpus_rows = sum(
        check_input_schema(p, CORPUS_COLUMNS, what="a prepared corpus").num_rows for p in corpus_files
    )
    engaged = None
    if args.engaged:  # graph/tweets, or an output root / graph folder holding it
        engaged = next((c for c in (files.join(args.engaged, "graph", "tweets"), files.join(args.engaged, "tweets")) if files.list_parquet(c)), args.engaged)
        for path in files.list_parquet(engaged) or [engaged]:
            check_input_schema(path, ["tweet_id"], what="graph's tweets (graph/tweets)")
    pairs_files = _input_files(args.pairs, "pairs") if args.pairs else []
    for path in pairs_files:
        check_input_schema(path, PAIR_COLUMNS, what="pairs from twhin-data graph")
    _tokenizer, info = load_tokenizer(args.tokenizer)
    return ShardPlan(
        args=args,
        run=run,
        corpus_files=corpus_files,
        corpus_rows=corpus_rows,
        pairs_files=pairs_files,
        tokenizer=info,
        target_bytes=(args.target_shard_mb or 256) * 1_000_000,
        engaged=engaged,
        pair_parts=pair_partitions(corpus_files + pairs_files) if pairs_files else 1,
    )


def rejections(summary: dict) -> tuple[int, int]:
    """(tweets in, tweets rejected): dangling pairs are not the corpus's rejections."""
    rejected = summary["rejected"]
    return summary["tweets_in"], sum(v for k, v in rejected.items() if not k.startswith("pair"))


def progress_total(plan: ShardPlan) -> tuple[int, str]:
    return plan.corpus_rows, "tweets"


def prepare_output(plan: ShardPlan) -> None:
    """Refuses complete shards without --overwrite; clears an incomplete (or --overwrite) previous output."""
    output = plan.output
    if files.exists(files.join(output, "COMPLETED")) and not plan.args.overwrite:
        raise ConfigError(
            f"{output} already holds complete shards (COMPLETED); pass --overwrite to replace them"
        )
    # TMP: left by a failed run, never read again.
    for name in (TMP, *OUTPUT_NAMES, os.path.join("errors", NAME), os.path.join("reports", NAME)):
        files.remove(files.join(output, name))


def parameters(plan: ShardPlan) -> dict:
    """The run's parameters as recorded in the manifest (paths relative to the output when local)."""
    args = plan.args

    def rel(path: str | None) -> str | None:
        return None if path is None else files.relative_to(path, args.output)

    tokenizer = args.tokenizer
    if tokenizer == BUNDLED or os.path.abspath(tokenizer) == os.path.abspath(bundled_path()):
        tokenizer = BUNDLED
    return {
        "corpus": rel(args.corpus),
        "pairs": rel(args.pairs),
        "tokenizer": tokenizer,
        "max_length": args.max_length,
        "pack": args.pack,
        "target_shard_mb": None if args.num_shards else (args.target_shard_mb or 256),
        "num_shards": args.num_shards,
        "valid_fraction": args.valid_fraction,
        "seed": args.seed,
        "engaged": rel(args.engaged),
        "stages": [int(x) for x in args.stages] if args.engaged else None,
        "pair_batch_size": args.pair_batch_size if args.pairs else None,
        "max_pairs_per_tweet": args.max_pairs_per_tweet if args.pairs else None,
    }


def build(p: beam.Pipeline, plan: ShardPlan):
    """Adds the shard stage to `p`."""
    args = plan.args
    # --workers N: N pool processes with ceil(cores / N) Rust tokenizer threads each
    # (inline on Dataflow, where each SDK process tokenizes with its own threads).
    out = args.output
    tables = p | "ReadCorpus" >> ReadTables(
        plan.corpus_files, CORPUS_COLUMNS, args.batch_rows, named=True, optional=OPTIONAL_CORPUS_COLUMNS
    )
    target = plan.target_bytes
    mlm_infos, errors, stats, slices = tables | "ShardCorpus" >> ShardCorpus(
        tokenizer=args.tokenizer,
        max_length=args.max_length,
        valid_fraction=args.valid_fraction,
        seed=args.seed,
        tmp=files.join(out, TMP),
        path=files.join(out, STAGING, "mlm"),
        num_shards=args.num_shards,
        target_bytes=target,
        pack=args.pack,
        workers=plan.run.workers,
        engaged=plan.engaged,
        stages=tuple(int(x) for x in args.stages),
    )
    totals = [stats]
    infos = [mlm_infos]
    all_errors = [errors]
    if plan.pairs_files:
        pair_tables = p | "ReadPairs" >> ReadTables(plan.pairs_files, PAIR_COLUMNS, args.batch_rows, named=True)
        pair_infos, pair_errors, pair_stats = (pair_tables, slices) | "ShardPairs" >> ShardPairs(
            tmp=files.join(out, TMP),
            path=files.join(out, STAGING, "pairs"),
            parts=plan.pair_parts,
            cap=args.max_pairs_per_tweet,
            salt=f"pairs:{args.seed}",
            batch_size=args.pair_batch_size,
            num_shards=args.num_shards,
            target_bytes=target,
            workers=plan.run.workers,
        )
        infos.append(pair_infos)
        totals.append(pair_stats)
        all_errors.append(pair_errors)
    error_files = all_errors | "AllErrors" >> beam.Flatten() | "WriteErrors" >> WriteErrors(out, NAME)
    stats_total = totals | "AllStats" >> beam.Flatten() | "SumStats" >> beam.CombineGlobally(SumDicts())
    shard_infos = infos | "AllShards" >> beam.Flatten()
    # seqio's completion pattern: the side inputs make this step wait for every write above.
    return (
        p
        | "Finalize" >> beam.Create([None])
        | "WriteManifest"
        >> beam.Map(
            write_manifest,
            output=out,
            params=parameters(plan),
            tokenizer=plan.tokenizer.to_dict(),
            shards=beam.pvalue.AsList(shard_infos),
            stats=beam.pvalue.AsSingleton(stats_total),
            error_files=beam.pvalue.AsList(error_files),
        )
    )


def finish(result, plan: ShardPlan, elapsed_s: float) -> dict:
    """Writes reports/shard/stats.json from the manifest; returns a short summary."""
    output = plan.output
    files.remove(files.join(output, TMP))
    manifest = _read_json(files.join(output, "manifest.json"))
    counts = manifest["counts"]
    rejected = {k[len("rejected_") :]: v for k, v in counts.items() if k.startswith("rejected_")}
    tweet_rejects = sum(v for k, v in rejected.items() if not k.startswith("pair_"))
    stats = {
        "stage": NAME,
        "tweets_in": counts.get("tweets_in", 0),
        "tweets_out": counts["tweets_out"],
        "duplicates": counts["duplicates"],
        "rejected": rejected,
        # Language resampling's repeated copies are written on top of the tweets read.
        "repeated_copies": counts.get("mlm_repeated_copies", 0),
        "balanced": counts.get("tweets_in", 0) + counts.get("mlm_repeated_copies", 0)
        == counts["tweets_out"] + tweet_rejects + counts["duplicates"],
        "truncated": counts.get("truncated", 0),
        "tokens": counts.get("tokens", 0),
        "pairs_in": counts.get("pairs_in", 0),
        "pairs_out": counts["pairs_out"],
        "pairs_balanced": counts.get("pairs_in", 0)
        == counts["pairs_out"] + sum(v for k, v in rejected.items() if k.startswith("pair_")),
        "splits": manifest["splits"],
        "languages": manifest["languages"],
        "elapsed_s": round(elapsed_s, 2),
    }
    write_stats(output, NAME, stats, functools.partial(stats_report, "shard report"))
    return {
        "stage": NAME,
        "tweets_in": stats["tweets_in"],
        "tweets_out": stats["tweets_out"],
        "rejected": rejected,
        "duplicates": stats["duplicates"],
        "truncated": stats["truncated"],
        "tokens": stats["tokens"],
        "pairs_out": stats["pairs_out"],
        "shards": {d: {s: e["shards"] for s, e in v.items()} for d, v in manifest["splits"].items()},
        "output": output,
        "report": files.join(output, "reports", NAME, "report.html"),
    }


def _read_json(path: str) -> dict:
    return json.loads(files.read_bytes(path).decode("utf-8"))
