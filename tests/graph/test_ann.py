"""Distributed nearest-neighbour pairs (graph --knn distributed): recall against exact search,
the same pairs on every runner, and the pure steps."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.graph.test_pairs import write_csv
from twhin_data.runners.cli import main
from twhin_data.transforms.graph import ann


def _clustered(n: int, dim: int = 32, clusters: int = 40, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    x = centers[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, dim))
    ids = np.arange(10**12, 10**12 + n, dtype=np.uint64)
    return ids, x.astype(np.float32)


def test_ivf_plan_scales_with_n():
    assert ann.ivf_plan(200_000, 2000) == (1024, 32)
    nlist, nprobe = ann.ivf_plan(1000, 2000)
    assert nlist <= 1000 // 39 and 1 <= nprobe <= nlist


def test_merge_home_ranks_each_querys_best_and_canonical_keeps_the_best_rank():
    parts = [
        (np.array([9, 9], np.uint64), np.array([5, 7], np.uint64), np.array([0.9, 0.5], np.float32)),
        (np.array([9, 9, 5], np.uint64), np.array([7, 12, 9], np.uint64), np.array([0.5, 0.8, 0.9], np.float32)),
    ]
    edges = [e for _, e in ann.merge_home((0, parts), k=2, min_score=0.6, homes=1)]
    a, b, rank, score = (np.concatenate(c) for c in zip(*edges, strict=True))
    got = sorted(zip(a.tolist(), b.tolist(), rank.tolist(), strict=True))
    assert got == [(5, 9, 1), (5, 9, 1), (9, 12, 2)]  # 9 -> 5 (0.9), 9 -> 12 (0.8); 5 -> 9; 7 under 0.6
    table = ann.canonical_pairs((0, edges))
    assert sorted(zip(table.column("a").to_pylist(), table.column("b").to_pylist(), table.column("rank").to_pylist(), strict=True)) == [(5, 9, 1), (9, 12, 2)]


def _write(tmp_path, ids, x, files: int = 3):
    folder = tmp_path / "emb"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(ids)), files)):
        table = pa.table({"tweet_id": [str(v) for v in ids[part]], "embedding": list(x[part])})
        pq.write_table(table, folder / f"part-{i}.parquet")
    return folder


def _pairs(tmp_path, folder, name, *extra) -> set[tuple[str, str]]:
    out = tmp_path / name
    log = write_csv(tmp_path / "e.csv", [{"user_id": "1", "tweet_id": "1", "type": "fav", "ts": "1"}])
    argv = ["graph", f"--engagements={log}", f"--output={out}", "--pairs=embeddings", f"--embeddings={folder}"]
    assert main([*argv, "--top_k=10", "--min_per_tweet=1", "--log_level=WARNING", *extra]) == 0
    table = pq.read_table(out / "pairs")
    return table, {(a, b) for a, b in zip(table.column("tweet_id_a").to_pylist(), table.column("tweet_id_b").to_pylist(), strict=True)}


@pytest.mark.slow
def test_distributed_pairs_recall_exact_search_and_match_on_every_runner(tmp_path):
    ids, x = _clustered(6000)
    folder = _write(tmp_path, ids, x)
    exact_table, exact = _pairs(tmp_path, folder, "exact", "--knn=single", "--index_factory=Flat")
    dist_table, dist = _pairs(tmp_path, folder, "dist", "--knn=distributed")
    assert len(dist & exact) / len(exact) >= 0.9  # recall@10 of the pairs exact search finds
    multi_table, multi = _pairs(tmp_path, folder, "multi", "--knn=distributed", "--direct_running_mode=multi_processing", "--direct_num_workers=2")
    assert multi == dist and multi_table.equals(dist_table)  # scores and ranks too
    assert dist_table.column("method").to_pylist()[0] == "embeddings"
    assert max(dist_table.column("rank").to_pylist()) <= 10
