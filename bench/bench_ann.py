"""Distributed nearest-neighbour pairs (graph --knn distributed) vs exact search, same run.

    python bench/bench_ann.py [--n 200000] [--dim 64] [--small 50000]

Clustered vectors (Gaussian clusters, as tweet embeddings of topical communities) in 8 Parquet
files; `twhin-data graph --pairs embeddings --top_k 10` runs in a subprocess with `--knn single
--index_factory Flat` (exact, one worker) and with `--knn distributed`. Reports wall time,
vectors/s, peak RSS of each, recall@10 (share of the exact pairs the distributed search finds),
and, from the plan, the vectors a worker holds for one list (N / nlist) and the queries it streams
past them, at --small and --n vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from twhin_data.transforms.graph import ann  # noqa: E402


def vectors(n: int, dim: int, root: str) -> str:
    rng = np.random.default_rng(3)
    centers = rng.normal(size=(max(10, n // 500), dim))
    x = (centers[rng.integers(0, len(centers), n)] + 0.6 * rng.normal(size=(n, dim))).astype(np.float32)
    folder = os.path.join(root, f"emb-{n}")
    os.makedirs(folder)
    for i, part in enumerate(np.array_split(np.arange(n), 8)):
        ids = [str(10**12 + j) for j in part]
        pq.write_table(pa.table({"tweet_id": ids, "embedding": list(x[part])}), os.path.join(folder, f"part-{i}.parquet"))
    log = os.path.join(root, "e.csv")
    with open(log, "w") as fh:
        fh.write("user_id,tweet_id,type,ts\n1,1,fav,1\n")
    return folder


def run(folder: str, root: str, name: str, *extra: str) -> dict:
    out = os.path.join(root, name)
    child = (
        "import resource, sys; from twhin_data.runners import cli; code = cli.main(sys.argv[1:]); "
        "sys.stderr.write('PEAK_RSS_KB %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)"
    )
    argv = [sys.executable, "-c", child, "graph", f"--engagements={root}/e.csv", f"--output={out}"]
    argv += ["--pairs=embeddings", f"--embeddings={folder}", "--top_k=10", "--min_per_tweet=1", "--log_level=WARNING", *extra]
    wall0 = time.perf_counter()
    done = subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - wall0
    peak = int(done.stderr.rsplit("PEAK_RSS_KB ", 1)[1].split()[0])
    table = pq.read_table(os.path.join(out, "pairs"), columns=["tweet_id_a", "tweet_id_b"])
    pairs = set(zip(table.column(0).to_pylist(), table.column(1).to_pylist(), strict=True))
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak / 1024), "pairs": pairs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()
    result: dict = {"n": args.n, "dim": args.dim}
    with tempfile.TemporaryDirectory(prefix="bench-ann-") as root:
        folder = vectors(args.n, args.dim, root)
        exact = run(folder, root, "exact", "--knn=single", "--index_factory=Flat")
        dist = run(folder, root, "dist", "--knn=distributed")
    recall = len(dist["pairs"] & exact["pairs"]) / max(1, len(exact["pairs"]))
    for name, r in (("exact_single_worker", exact), ("distributed", dist)):
        result[name] = {"wall_s": r["wall_s"], "vectors_per_s": round(args.n / r["wall_s"]), "peak_rss_mb": r["peak_rss_mb"], "pairs": len(r["pairs"])}
    result["recall_at_10"] = round(recall, 4)
    for n in (args.small, args.n):
        nlist, nprobe = ann.ivf_plan(n, 2000)
        result[f"per_list_{n}"] = {
            "nlist": nlist,
            "nprobe": nprobe,
            "vectors_held_per_worker": round(n / nlist),  # the list's own vectors
            "queries_streamed_per_list": round(n * nprobe / nlist),
        }
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
