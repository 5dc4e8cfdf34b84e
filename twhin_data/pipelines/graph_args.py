"""`twhin-data graph`'s flags (pipelines/graph.py runs the command)."""

from __future__ import annotations

import argparse

from twhin_data.pipelines import flags as opts
from twhin_data.schemas.graph import ENGAGEMENT_TYPES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--engagements",
        help="Engagement logs: file, directory or glob (comma-separated allowed); CSV, TSV, JSONL "
        "or Parquet with user_id, tweet_id, type, ts (see --column_map). Any Beam filesystem (gs://...).",
    )
    add(
        "--tweets",
        help="Hydrate output (DIR/tweets/*.parquet or DIR/*.parquet): adds reply/quote/retweet "
        "engagements author -> referenced tweet.",
    )
    add(
        "--duplicates",
        help="prepare's duplicates/ folder: engagements with a tweet prepare removed as a copy move to "
        "the kept tweet (counted remapped_to_kept), so no pair points at a removed copy. `run` passes "
        "it when prepare ran.",
    )
    add(
        "--exclude",
        type=opts.csv_list,
        default=None,
        help="Built benchmark folders (comma-separated): engagements with and embeddings of their "
        "validation and test tweets are dropped (filtered.benchmark). `run` passes the benchmarks it built.",
    )
    add(
        "--types",
        type=opts.csv_list,
        default=list(ENGAGEMENT_TYPES),
        help="Engagement types kept (default: all of fav,reply,retweet,quote). Each becomes a PBG relation.",
    )
    add(
        "--start",
        help="Keep engagements at or after this ISO 8601 time (UTC if no zone). Rows without ts are then dropped.",
    )
    add("--end", help="Keep engagements before this ISO 8601 time (exclusive).")
    add(
        "--max_per_user",
        type=opts.non_negative_int,
        default=100,
        help="Per-user edge cap (0 = none). Default 100 (TwitterFaveGraph).",
    )
    add(
        "--min_per_tweet",
        type=opts.positive_int,
        default=5,
        help="Minimum distinct engaging users per tweet. Default 5 (TwitterFaveGraph).",
    )
    add(
        "--filter_iterations",
        type=opts.positive_int,
        default=3,
        help="Rounds of (per-user cap, per-tweet minimum); see docs/graph.md.",
    )
    add(
        "--cap_policy",
        choices=["recent", "hash"],
        default="recent",
        help="Which edges the per-user cap keeps: the most recent, or a deterministic hash sample.",
    )
    add(
        "--pairs",
        type=opts.csv_list,
        default=["cooccurrence"],
        help="Pair methods: cooccurrence, embeddings (both: cooccurrence,embeddings) or none.",
    )
    add(
        "--embeddings",
        help="Tweet embeddings for --pairs embeddings: Parquet (tweet_id|id + embedding|vector) or "
        "PBG's exported TSV (names t<id>); .h5 needs h5py.",
    )
    add(
        "--knn",
        choices=["auto", "single", "distributed"],
        default="auto",
        help="Embedding neighbours: single (one worker holds every vector, FAISS --index_factory), "
        "distributed (IVF lists routed through Beam shuffles and spill files: memory per worker is "
        "bounded, --workers N processes locally; Parquet embeddings), auto (distributed above 1M Parquet vectors).",
    )
    add(
        "--top_k",
        type=opts.positive_int,
        default=10,
        help="Neighbours kept per tweet (a pair is kept if in either tweet's top k).",
    )
    add("--min_score", type=opts.number, default=0.0, help="Minimum pair score (cosine) kept.")
    add(
        "--min_count",
        type=opts.positive_int,
        default=2,
        help="Co-engagement: minimum users who engaged with both tweets.",
    )
    add(
        "--max_fanout_per_user",
        type=opts.non_negative_int,
        default=1000,
        help="Co-engagement: at most this many pairs per user, closest in time first (0 = no cap).",
    )
    add(
        "--pair_time_gap_s",
        type=opts.non_negative_int,
        default=0,
        help="Co-engagement: only pair a user's engagements at most this many seconds apart (0 = no limit).",
    )
    add(
        "--index_factory",
        default="auto",
        help="FAISS index factory for embeddings (auto: exact Flat up to 50k vectors, IVF,Flat up to 5M, "
        "else the paper's OPQ64,IVF65536,PQ64; always scaled to N).",
    )
    add(
        "--nprobe",
        type=opts.positive_int,
        default=2000,
        help="FAISS IVF lists probed (paper: 2000; capped at nlist).",
    )
    add("--column_map", help="Input column names, e.g. user_id=uid,tweet_id=tid,type=action,ts=time.")
    add(
        "--partitions",
        type=opts.non_negative_int,
        default=0,
        help="Range partitions of the graph (0 = auto, one "
        "per 3 MiB of input, at least 16, at most 4096). Memory per task ~ edges / partitions.",
    )
    add("--pbg_dimension", type=opts.positive_int, default=256, help="PBG embedding dimension (paper: 256).")
    add("--pbg_epochs", type=opts.positive_int, default=10, help="PBG training epochs (paper: 10).")
