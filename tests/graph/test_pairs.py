"""Planted-community tests: co-engagement and embedding pairs recover the communities (precision >= 0.9)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from twhin_data.core.spill import write_slices
from twhin_data.runners.cli import main
from twhin_data.transforms.graph.pairs import CoEngagementPairs

COMMUNITIES, TWEETS_PER, USERS_PER, PER_USER, NOISE = 6, 30, 40, 12, 0.1
BASE_TWEET, BASE_USER, T0 = 1_500_000_000_000_000_000, 10_000, 1_640_995_200_000


def planted(seed: int = 7, heavy_user: bool = False) -> tuple[list[dict], dict[str, int]]:
    """Engagements where users engage mostly (1 - NOISE) inside their community; tweet -> community."""
    rng = np.random.default_rng(seed)
    community = {}
    for c in range(COMMUNITIES):
        for t in range(TWEETS_PER):
            community[str(BASE_TWEET + c * 1000 + t)] = c
    tweets = np.array(sorted(community, key=int))
    rows = []
    for c in range(COMMUNITIES):
        own = [t for t in tweets if community[t] == c]
        for u in range(USERS_PER):
            user = str(BASE_USER + c * 1000 + u)
            for _ in range(PER_USER):
                tweet = rng.choice(tweets) if rng.random() < NOISE else rng.choice(own)
                kind = ["fav", "fav", "retweet", "reply"][int(rng.integers(4))]
                ts = T0 + int(rng.integers(0, 7 * 86_400_000))
                rows.append({"user_id": user, "tweet_id": str(tweet), "type": kind, "ts": str(ts)})
    if heavy_user:  # one bot-like user engaging with every tweet
        for i, tweet in enumerate(tweets):
            rows.append({"user_id": "99", "tweet_id": str(tweet), "type": "fav", "ts": str(T0 + i)})
    return rows, community


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["user_id", "tweet_id", "type", "ts"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def community_vectors(
    community: dict[str, int], dim: int = 32, seed: int = 3
) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(COMMUNITIES, dim))
    ids = sorted(community, key=int)
    vecs = np.stack([centers[community[t]] + 0.35 * rng.normal(size=dim) for t in ids]).astype(np.float32)
    return ids, vecs


def precision(pairs: pa.Table, community: dict[str, int], method: str) -> tuple[float, int]:
    rows = pairs.filter(pa.compute.equal(pairs.column("method"), method)).to_pylist()
    same = sum(community[r["tweet_id_a"]] == community[r["tweet_id_b"]] for r in rows)
    return same / max(1, len(rows)), len(rows)


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory) -> tuple[Path, dict[str, int], dict]:
    tmp = tmp_path_factory.mktemp("planted")
    rows, community = planted(heavy_user=True)
    ids, vecs = community_vectors(community)
    pq.write_table(
        pa.table({"tweet_id": ids, "embedding": pa.array(list(vecs), pa.list_(pa.float32()))}),
        tmp / "emb.parquet",
    )
    out = tmp / "out"
    argv = ["graph", "--engagements", str(write_csv(tmp / "eng.csv", rows)), "--output", str(out)]
    argv += ["--pairs", "cooccurrence,embeddings", "--embeddings", str(tmp / "emb.parquet"), "--top_k", "5"]
    argv += [
        "--min_per_tweet",
        "3",
        "--max_per_user",
        "0",
        "--max_fanout_per_user",
        "200",
        "--log_level",
        "WARNING",
    ]
    assert main(argv) == 0
    stats = json.loads((out / "reports" / "graph" / "stats.json").read_text())
    return out, community, stats


@pytest.mark.slow
def test_cooccurrence_pairs_recover_planted_communities(planted_run):
    out, community, _ = planted_run
    value, n = precision(pq.read_table(out / "pairs"), community, "cooccurrence")
    assert n >= 200, n
    assert value >= 0.9, value


@pytest.mark.slow
def test_embedding_pairs_recover_planted_communities(planted_run):
    out, community, stats = planted_run
    value, n = precision(pq.read_table(out / "pairs"), community, "embeddings")
    assert n >= COMMUNITIES * TWEETS_PER * 2, n
    assert value >= 0.9, value
    assert stats["embeddings_index"]["factory"] == "Flat"


@pytest.mark.slow
def test_pairs_are_canonical_ranked_and_unique(planted_run):
    out, _, stats = planted_run
    table = pq.read_table(out / "pairs")
    rows = table.to_pylist()
    assert all(int(r["tweet_id_a"]) < int(r["tweet_id_b"]) for r in rows)
    keys = [(r["tweet_id_a"], r["tweet_id_b"], r["method"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert all(1 <= r["rank"] <= 5 for r in rows)
    co = [r for r in rows if r["method"] == "cooccurrence"]
    assert all(r["count"] >= 2 and 0 < r["score"] <= 1.0 for r in co)
    assert stats["pairs"]["cooccurrence"] == len(co)


@pytest.mark.slow
def test_heavy_user_fanout_is_capped_and_reported(planted_run):
    _, _, stats = planted_run
    pairs = stats["pairs"]
    n = COMMUNITIES * TWEETS_PER
    assert pairs["users_fanout_capped"] >= 1
    # The heavy user alone has n(n-1)/2 candidate pairs; at most 200 of them survive.
    assert pairs["dropped_by_fanout_cap"] >= n * (n - 1) // 2 - 200
    assert (
        pairs["cooccurrence_generated"] == pairs["cooccurrence_candidates"] - pairs["dropped_by_fanout_cap"]
    )


@pytest.mark.slow
def test_embedding_pairs_from_pbg_tsv_export(tmp_path):
    rows, community = planted(seed=11)
    ids, vecs = community_vectors(community, dim=16, seed=5)
    lines = [f"t{t}\t" + "\t".join(f"{x:.6f}" for x in v) for t, v in zip(ids, vecs, strict=True)]
    lines += ["u123\t" + "\t".join(["0.5"] * 16), "t77\t1.0\tnot-a-number"]
    (tmp_path / "embeddings.tsv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    argv = ["graph", "--engagements", str(write_csv(tmp_path / "e.csv", rows[:50])), "--output", str(out)]
    argv += [
        "--pairs",
        "embeddings",
        "--embeddings",
        str(tmp_path / "embeddings.tsv"),
        "--min_per_tweet",
        "1",
    ]
    assert main(argv + ["--log_level", "WARNING"]) == 0
    value, n = precision(pq.read_table(out / "pairs"), community, "embeddings")
    assert n > 0 and value >= 0.9
    errors = pq.read_table(out / "errors" / "graph").to_pylist()
    assert [e["error_type"] for e in errors] == ["bad_vector"]


def test_coengagement_transform_counts_scores_and_ranks(tmp_path):
    # users 1-3 engage with tweets 10 and 20; user 1 also with 30 (10 and 20 have 3 engagers each).
    rows = [(1, 10), (1, 20), (1, 30), (2, 10), (2, 20), (3, 10), (3, 20)]
    engagers = {10: 3, 20: 3, 30: 1}
    table = pa.table(
        {
            "user": pa.array([u for u, _ in rows], pa.uint64()),
            "tweet": pa.array([t for _, t in rows], pa.uint64()),
            "rel": pa.array([0] * len(rows), pa.int8()),
            "ts": pa.array(range(len(rows)), pa.int64()),
            "source": pa.array([0] * len(rows), pa.int8()),
            "engagers": pa.array([engagers[t] for _, t in rows], pa.int64()),
        }
    )
    splits = {"user": np.zeros(0, np.uint64), "tweet": np.array([15], np.uint64)}
    refs = write_slices(str(tmp_path / "edges.arrow"), table.schema, [(0, table)])
    with TestPipeline(runner="FnApiRunner") as p:
        split_points = p | "Splits" >> beam.Create([splits])
        pairs = (
            p
            | beam.Create(refs)
            | CoEngagementPairs(
                split_points, top_k=2, min_score=0.0, min_count=1, gap_s=0, fanout_cap=0, tmp=str(tmp_path / "spill")
            )
            | beam.FlatMap(lambda t: t.to_pylist())
            | beam.Map(
                lambda r: (r["tweet_id_a"], r["tweet_id_b"], round(r["score"], 4), r["count"], r["rank"])
            )
        )
        assert_that(
            pairs,
            equal_to([("10", "20", 1.0, 3, 1), ("10", "30", 0.5774, 1, 1), ("20", "30", 0.5774, 1, 2)]),
        )
