"""Distributed nearest-neighbour pairs (graph --knn distributed): recall against exact search,
the same pairs on every runner, and the pure steps."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.graph.test_pairs import write_csv
from twhin_data.core.spill import read_slices, write_slices
from twhin_data.runners.cli import main
from twhin_data.transforms.graph import ann_steps as steps


def _clustered(n: int, dim: int = 32, clusters: int = 40, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim))
    x = centers[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, dim))
    ids = np.arange(10**12, 10**12 + n, dtype=np.uint64)
    return ids, x.astype(np.float32)


def test_ivf_plan_scales_with_n():
    assert steps.ivf_plan(200_000, 2000) == (1024, 32)
    nlist, nprobe = steps.ivf_plan(1000, 2000)
    assert nlist <= 1000 // 39 and 1 <= nprobe <= nlist
    small, large = steps.ann_plan(200_000, k=10, nprobe=2000, min_score=0), steps.ann_plan(10**9, k=10, nprobe=2000, min_score=0)
    assert large.homes > small.homes and large.pair_homes > small.pair_homes  # buckets grow, not their size
    assert small.sample_rate * small.n <= steps.TRAIN_MAX and large.sample_rate * large.n <= steps.TRAIN_MAX


def _candidates(tmp_path, parts) -> list:
    refs = []
    for i, (query, other, score) in enumerate(parts):
        table = pa.table({"query": query, "other": other, "score": score}, schema=steps.CANDIDATES)
        refs += [ref for _, ref in write_slices(str(tmp_path / f"c{i}.arrow"), steps.CANDIDATES, [(0, table)])]
    return refs


def test_merge_home_ranks_each_querys_best_and_canonical_keeps_the_best_rank(tmp_path):
    parts = [
        (np.array([9, 9], np.uint64), np.array([5, 7], np.uint64), np.array([0.9, 0.5], np.float32)),
        (np.array([9, 9, 5], np.uint64), np.array([7, 12, 9], np.uint64), np.array([0.5, 0.8, 0.9], np.float32)),
    ]
    plan = steps.AnnPlan(n=3, k=2, min_score=0.6, nlist=1, nprobe=1, homes=1, pair_homes=1)
    edges = steps.merge_home((0, _candidates(tmp_path, parts)), plan=plan, tmp=str(tmp_path))
    got = read_slices([ref for _, ref in edges], steps.PAIR_EDGES)
    rows = sorted(zip(got.column("a").to_pylist(), got.column("b").to_pylist(), got.column("rank").to_pylist(), strict=True))
    assert rows == [(5, 9, 1), (5, 9, 1), (9, 12, 2)]  # 9 -> 5 (0.9), 9 -> 12 (0.8); 5 -> 9; 7 under 0.6
    (table,) = steps.canonical_pairs((0, [ref for _, ref in edges]))
    assert sorted(zip(table.column("a").to_pylist(), table.column("b").to_pylist(), table.column("rank").to_pylist(), strict=True)) == [(5, 9, 1), (9, 12, 2)]


def test_route_and_search_find_each_vectors_nearest_neighbours(tmp_path):
    ids, x = _clustered(600, clusters=6)
    folder = _write(tmp_path, ids, x, files=2)
    paths = sorted(str(p) for p in folder.iterdir())
    plan = steps.ann_plan(600, k=3, nprobe=2000, min_score=-1.0)
    blocks = [b for i, p in enumerate(paths) for b in steps.sample_file((i, p), rate=1.0)]
    centroids = steps.train_centroids(blocks, nlist=plan.nlist, path=str(tmp_path / "c.npy"))
    routed: dict[int, list] = {}
    for i, p in enumerate(paths):
        for out in steps.route_file((i, p, centroids), plan=plan, tmp=str(tmp_path)):
            if isinstance(out, tuple):
                routed.setdefault(out[0], []).append(out[1])
    homes: dict[int, list] = {}
    for item in sorted(routed.items()):
        for home, ref in steps.search_list(item, plan=plan, tmp=str(tmp_path)):
            homes.setdefault(home, []).append(ref)
    pair_homes: dict[int, list] = {}
    for item in sorted(homes.items()):
        for home, ref in steps.merge_home(item, plan=plan, tmp=str(tmp_path)):
            pair_homes.setdefault(home, []).append(ref)
    found = {(a, b) for item in pair_homes.items() for t in steps.canonical_pairs(item) for a, b in zip(t.column("a").to_pylist(), t.column("b").to_pylist(), strict=True)}
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    scores = xn @ xn.T
    np.fill_diagonal(scores, -np.inf)
    exact = {(int(min(ids[i], ids[j])), int(max(ids[i], ids[j]))) for i in range(600) for j in np.argsort(-scores[i])[:3]}
    assert len(found & exact) / len(exact) >= 0.95


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
    pooled_table, _ = _pairs(tmp_path, folder, "pooled", "--knn=distributed", "--workers=2")
    assert pooled_table.equals(dist_table)  # two pool processes: the same bytes as one
    assert not (tmp_path / "dist" / "_tmp_graph").exists()  # the spill files are gone
    assert dist_table.column("method").to_pylist()[0] == "embeddings"
    assert max(dist_table.column("rank").to_pylist()) <= 10


def test_distributed_vectors_of_another_length_are_dead_letters(tmp_path):
    ids, x = _clustered(400, dim=16, clusters=4)
    folder = _write(tmp_path, ids, x, files=2)
    odd = pa.table({"tweet_id": ["900", "901"], "embedding": [[0.5] * 8, [0.25] * 8]})
    pq.write_table(odd, folder / "part-9.parquet")  # a file of 8-dimensional vectors among 16s
    table, found = _pairs(tmp_path, folder, "dist", "--knn=distributed")
    assert found and not any("900" in pair or "901" in pair for pair in found)
    errors = pq.read_table(tmp_path / "dist" / "errors" / "graph").to_pylist()
    assert sorted(e["error_type"] for e in errors) == ["bad_vector", "bad_vector"]
