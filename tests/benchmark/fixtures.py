"""Helpers shared by the benchmark tests: hydrated-tweet fixtures and output comparison."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "twhin_data" / "data"


def write_tweets(directory: Path, tweets: list[dict]) -> Path:
    """Writes hydrate-style output ``directory/tweets/part-*.parquet`` (two files, to exercise globbing)."""
    (directory / "tweets").mkdir(parents=True, exist_ok=True)
    half = len(tweets) // 2
    for i, part in enumerate((tweets[:half], tweets[half:])):
        pq.write_table(to_table(part, TWEETS), directory / "tweets" / f"part-{i:05d}-of-00002.parquet")
    return directory


def hydrate_sample(directory: Path) -> Path:
    """The bundled sample tweets as hydrate output (parsed with the hydrate parser)."""
    from twhin_data.xapi.parse import tweet_row

    lines = (SAMPLE / "sample_tweets.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [tweet_row(json.loads(line), {}, retrieved_at=None) for line in lines if line.strip()]
    return write_tweets(directory, rows)


def run_cli(argv: list[str]) -> int:
    return cli.main(argv)


def data_digests(directory: Path) -> dict[str, str]:
    """sha256 of every data file under `directory` (reports hold timings, so they are left out)."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "reports" not in path.relative_to(directory).parts:
            out[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def read_rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def stats(directory: Path, stage: str) -> dict:
    return json.loads((directory / "reports" / stage / "stats.json").read_text())


def errors(directory: Path, stage: str) -> list[dict]:
    parts = sorted((directory / "errors" / stage).glob("*.parquet"))
    return [row for p in parts for row in pq.read_table(p).to_pylist()]


def tweet(tweet_id: str, text: str | None, lang: str | None) -> dict:
    return {"tweet_id": tweet_id, "text": text, "lang": lang}


def emb_table(rows: list[tuple[str, list[float]]]) -> pa.Table:
    return pa.table(
        {"user_id": [r[0] for r in rows], "embedding": pa.array([r[1] for r in rows], pa.list_(pa.float32()))}
    )
