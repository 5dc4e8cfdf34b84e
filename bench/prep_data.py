"""Synthetic hydrate output for the prepare benchmarks (cached under /tmp by size and seed)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS

CACHE = os.environ.get("TWHIN_BENCH_CACHE", "/tmp/twhin-bench")


def synth_rows(n: int, seed: int = 0) -> list[dict]:
    """`n` hydrate rows from the project's synthetic multilingual generator."""
    from twhin_data.data import synth
    from twhin_data.xapi.parse import tweet_row

    return [tweet_row(tweet, {}, retrieved_at=None) for tweet in synth.generate_tweets(n, seed=seed)]


def tweets_dir(n: int, seed: int = 0, files: int = 4) -> str:
    """A directory DIR/tweets/*.parquet holding `n` synthetic tweets (built once, then reused)."""
    root = os.path.join(CACHE, f"tweets-{n}-{seed}")
    out = os.path.join(root, "tweets")
    if os.path.isdir(out) and len(os.listdir(out)) == files:
        return root
    os.makedirs(out, exist_ok=True)
    rows = synth_rows(n, seed)
    step = -(-n // files)
    for i in range(files):
        part = rows[i * step : (i + 1) * step]
        pq.write_table(
            to_table(part, TWEETS), os.path.join(out, f"part-{i:05d}.parquet"), row_group_size=10_000
        )
    return root


def load_tables(root: str, rows: int = 2000) -> list[tuple[str, pa.Table]]:
    """The same (path, table) elements the prepare reader yields, in memory."""
    from twhin_data.pipelines.prepare import resolve_inputs
    from twhin_data.transforms.prepare.read import read_tables

    return [item for path in resolve_inputs(root) for item in read_tables(path, rows)]
