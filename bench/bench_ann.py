"""Distributed nearest-neighbour pairs (graph --knn distributed) vs exact search, same run.

    python bench/bench_ann.py [--n 200000] [--small 50000] [--dim 64] [--workers 2]

Clustered vectors (Gaussian clusters, as tweet embeddings of topical communities) in Parquet
files of `ROWS_PER_FILE` vectors each (so a file, the unit a route task reads, is the same size at
every N); `twhin-data graph --pairs embeddings --top_k 10` runs in a subprocess with `--knn
single --index_factory Flat` (exact, one worker) at --n, and with `--knn distributed --workers W`
at --small and at --n. Reports wall time, vectors/s, recall@10 at --n (share of the exact pairs
the distributed search finds), and the peak RSS (VmHWM, read from /proc every 0.1 s) of the
runner's own process and of the largest pool worker, so growth with N is visible side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from rss import run_measured  # noqa: E402

from twhin_data.transforms.graph import ann_steps  # noqa: E402

ROWS_PER_FILE = 25_000


def vectors(n: int, dim: int, root: str) -> str:
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(max(10, n // 500), dim))
    x = (centers[rng.integers(0, len(centers), n)] + 0.6 * rng.normal(size=(n, dim))).astype(np.float32)
    folder = os.path.join(root, f"emb-{n}")
    os.makedirs(folder)
    for i, part in enumerate(np.array_split(np.arange(n), max(1, n // ROWS_PER_FILE))):
        ids = [str(10**12 + j) for j in part]
        pq.write_table(pa.table({"tweet_id": ids, "embedding": list(x[part])}), os.path.join(folder, f"part-{i:04d}.parquet"))
    log = os.path.join(root, "e.csv")
    with open(log, "w") as fh:
        fh.write("user_id,tweet_id,type,ts\n1,1,fav,1\n")
    return folder


def run(folder: str, root: str, name: str, *extra: str) -> dict:
    out = os.path.join(root, name)
    argv = [sys.executable, "-m", "twhin_data.runners.cli", "graph", f"--engagements={root}/e.csv", f"--output={out}"]
    argv += ["--pairs=embeddings", f"--embeddings={folder}", "--top_k=10", "--min_per_tweet=1", "--log_level=WARNING", *extra]
    measured = run_measured(argv, name)
    table = pq.read_table(os.path.join(out, "pairs"), columns=["tweet_id_a", "tweet_id_b"])
    pairs = set(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
    return {**measured, "pairs": pairs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result: dict = {"n": args.n, "small": args.small, "dim": args.dim, "workers": args.workers, "rows_per_file": ROWS_PER_FILE}
    with tempfile.TemporaryDirectory(prefix="bench-ann-") as root:
        small = run(vectors(args.small, args.dim, root), root, "dist-small", "--knn=distributed", f"--workers={args.workers}")
        folder = vectors(args.n, args.dim, root)
        dist = run(folder, root, "dist", "--knn=distributed", f"--workers={args.workers}")
        exact = run(folder, root, "exact", "--knn=single", "--index_factory=Flat")
    for name, n, r in (("distributed_small", args.small, small), ("distributed", args.n, dist), ("exact_single_worker", args.n, exact)):
        plan = ann_steps.ann_plan(n, k=10, nprobe=2000, min_score=-1.0)
        result[name] = {
            "n": n,
            "wall_s": r["wall_s"],
            "vectors_per_s": round(n / r["wall_s"]),
            "runner_peak_rss_mb": r["runner_peak_rss_mb"],
            "largest_worker_peak_rss_mb": r["largest_worker_peak_rss_mb"],
            "pairs": len(r["pairs"]),
            **({"nlist": plan.nlist, "nprobe": plan.nprobe, "list_vectors": round(n / plan.nlist), "homes": plan.homes} if name != "exact_single_worker" else {}),
        }
    result["recall_at_10"] = round(len(dist["pairs"] & exact["pairs"]) / max(1, len(exact["pairs"])), 4)
    grow = args.n / args.small
    result["growth"] = {
        "input": round(grow, 2),
        "largest_worker_rss": round(dist["largest_worker_peak_rss_mb"] / max(1, small["largest_worker_peak_rss_mb"]), 2),
        "runner_rss": round(dist["runner_peak_rss_mb"] / max(1, small["runner_peak_rss_mb"]), 2),
    }
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
