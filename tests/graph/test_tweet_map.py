"""graph --duplicates (prepare's map: copies' engagements move to the kept tweet) and --exclude
(benchmark validation/test tweets stay out of the graph and the pairs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.graph.test_pairs import write_csv
from tests.prepare.test_contamination import _bench
from twhin_data.runners.cli import main
from twhin_data.schemas import to_table
from twhin_data.schemas.corpus import DUPLICATES
from twhin_data.transforms.graph.tweet_map import TweetMap, apply_to_edges, load_tweet_map


def _edges(tweets: list[int]) -> pa.Table:
    n = len(tweets)
    return pa.table(
        {
            "user": pa.array(range(n), pa.uint64()),
            "tweet": pa.array(tweets, pa.uint64()),
            "rel": pa.array([0] * n, pa.int8()),
            "ts": pa.array([0] * n, pa.int64()),
            "source": pa.array([0] * n, pa.int8()),
        }
    )


def test_apply_to_edges_moves_copies_and_drops_benchmark_tweets():
    tweet_map = TweetMap(
        removed=np.array([11, 12], np.uint64), kept=np.array([10, 10], np.uint64), excluded=np.array([30], np.uint64)
    )
    out, counts = apply_to_edges(_edges([10, 11, 12, 20, 30]), tweet_map)
    assert out.column("tweet").to_pylist() == [10, 10, 10, 20]
    assert counts == {"filtered_benchmark": 1, "remapped_to_kept": 2}
    unchanged, counts = apply_to_edges(_edges([1, 2]), TweetMap())
    assert unchanged.column("tweet").to_pylist() == [1, 2] and counts == {"filtered_benchmark": 0, "remapped_to_kept": 0}


def _write_map(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.mkdir(parents=True)
    table = to_table([{"tweet_id": a, "kept_tweet_id": b, "reason": "minhash_duplicate", "lang": "en"} for a, b in rows], DUPLICATES)
    pq.write_table(table, path / "part-00000-of-00001.parquet")
    return path


@pytest.mark.slow
def test_graph_pairs_point_at_kept_tweets_and_never_at_benchmark_tweets(tmp_path):
    # Six users like 100 and 200; its copy 101 is liked by six others with 200; 900 is a benchmark
    # test tweet liked with 200 by everyone.
    rows = []
    for user in range(12):
        rows.append({"user_id": str(user), "tweet_id": "100" if user < 6 else "101", "type": "fav", "ts": str(user)})
        rows.append({"user_id": str(user), "tweet_id": "200", "type": "fav", "ts": str(user + 100)})
        rows.append({"user_id": str(user), "tweet_id": "900", "type": "fav", "ts": str(user + 200)})
    log = write_csv(tmp_path / "log.csv", rows)
    dups = _write_map(tmp_path / "duplicates", [("101", "100")])
    bench = _bench(tmp_path)
    out = tmp_path / "out"
    argv = ["graph", f"--engagements={log}", f"--output={out}", f"--duplicates={dups}", f"--exclude={bench}"]
    assert main([*argv, "--min_per_tweet=2", "--log_level=WARNING"]) == 0
    tweets = set(pq.read_table(out / "graph" / "tweets").column("tweet_id").to_pylist())
    assert tweets == {"100", "200"}
    pairs = pq.read_table(out / "pairs").to_pylist()
    assert [(p["tweet_id_a"], p["tweet_id_b"], p["count"]) for p in pairs] == [("100", "200", 12)]
    stats = json.loads((out / "reports" / "graph" / "stats.json").read_text())
    assert stats["filtered"]["benchmark"] == 12 and stats["input"]["remapped_to_kept"] == 6
    assert stats["accounting"]["balanced"]
    assert main(["graph", f"--engagements={log}", f"--output={tmp_path / 'o2'}", f"--duplicates={tmp_path}/nothing"]) == 2


def test_load_tweet_map_reads_prepare_map_and_benchmark_ids(tmp_path):
    dups = _write_map(tmp_path / "duplicates", [("7", "3"), ("5", "3")])
    tweet_map = load_tweet_map(str(dups), (str(_bench(tmp_path)),))
    assert tweet_map.removed.tolist() == [5, 7] and tweet_map.kept.tolist() == [3, 3]
    assert tweet_map.excluded.tolist() == [900, 901]
