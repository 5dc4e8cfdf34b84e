"""graph throughput and memory: `twhin-data graph` on power-law engagements vs the same work in numpy.

  python bench/bench_graph.py [--n 1000000] [--heavy 50000] [--skip_baseline]

Input (cached under $TWHIN_BENCH_CACHE or /tmp/twhin-bench): --n engagements in 8 CSV files,
users and tweets drawn from Zipf-like (power-law) distributions (users ~ 1/r^1.1 over n/10 users,
tweets ~ 1/r over n/5 tweets), 4 types, timestamps over 30 days, ~3% exact duplicates.
With --heavy H a second input adds one user with H engagements (a bot), run with
--max_per_user 0 so only the fan-out cap protects the pair step: its memory must not grow
with H^2 (H=50,000 alone would give 1.25e9 candidate pairs).

Contenders, each in its own process, measured in the same run (wall seconds, peak RSS):
- baseline: the same cleaning, dedupe, cap/min rounds and co-engagement pair counting with the
  package's numpy helpers over the whole table in one process (no Beam, no partitioning, no
  output files): the in-memory lower bound;
- graph: `twhin-data graph` end to end on FnApiRunner (read, graph, indices, PBG TSV, pairs,
  Parquet outputs, stats), default flags except --min_per_tweet 2 and --workers (default 1).
Figures: input edges/s (rows read per second) and pairs/s (co-engaged pairs generated per second).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("TWHIN_BENCH_CACHE", "/tmp/twhin-bench"))
TYPES = np.array(["fav", "fav", "fav", "retweet", "reply", "quote"])
T0 = 1_640_995_200_000


def generate(n: int, seed: int, heavy: int, out: Path) -> Path:
    """Writes the power-law engagements as 8 CSV parts (cached by parameters)."""
    folder = out / f"graph-n{n}-s{seed}-h{heavy}"
    if (folder / "DONE").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_users, n_tweets = max(10, n // 10), max(10, n // 5)
    pu = 1.0 / np.arange(1, n_users + 1) ** 1.1
    pt = 1.0 / np.arange(1, n_tweets + 1) ** 1.0
    users = rng.choice(n_users, size=n, p=pu / pu.sum()) * 7919 + 1_000_000
    tweets = rng.choice(n_tweets, size=n, p=pt / pt.sum()) * 104_729 + 1_400_000_000_000_000_000
    ts = T0 + rng.integers(0, 30 * 86_400_000, size=n)
    dup = rng.random(n) < 0.03  # re-logged engagements
    users[dup], tweets[dup] = np.roll(users, 1)[dup], np.roll(tweets, 1)[dup]
    kinds = TYPES[rng.integers(0, len(TYPES), size=n)]
    kinds[dup] = np.roll(kinds, 1)[dup]
    if heavy:
        users[:heavy] = 42
        tweets[:heavy] = (
            rng.permutation(n_tweets)[: min(heavy, n_tweets)] * 104_729 + 1_400_000_000_000_000_000
        )
    for part, idx in enumerate(np.array_split(np.arange(n), 8)):
        lines = ["user_id,tweet_id,type,ts"]
        lines += [
            f"{u},{t},{k},{s}"
            for u, t, k, s in zip(users[idx], tweets[idx], kinds[idx], ts[idx], strict=True)
        ]
        (folder / f"engagements-{part:05d}.csv").write_text("\n".join(lines) + "\n")
    (folder / "DONE").write_text("ok\n")
    return folder


def baseline(folder: str) -> dict:
    """The same work in one process with the package's numpy helpers (runs inside a child)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from twhin_data.transforms.graph import edges as gc
    from twhin_data.transforms.graph import pair_scoring as pcore
    from twhin_data.transforms.graph.read_steps import WindowSpec, clean_rows

    start = time.perf_counter()
    paths = sorted(Path(folder).glob("*.csv"))
    raw = pa.concat_tables(
        [
            pacsv.read_csv(
                p,
                convert_options=pacsv.ConvertOptions(
                    column_types={
                        "user_id": pa.string(),
                        "tweet_id": pa.string(),
                        "type": pa.string(),
                        "ts": pa.string(),
                    }
                ),
            )
            for p in paths
        ]  # fmt: skip
    )
    spec = WindowSpec(types=["fav", "reply", "retweet", "quote"])
    edges, _, counts = clean_rows(raw, source=0, spec=spec)
    edges, _ = gc.dedupe(edges)
    alive = np.ones(edges.num_rows, dtype=bool)
    user, tweet = edges.column("user").to_numpy(), edges.column("tweet").to_numpy()
    for _ in range(3):
        sel = gc.cap_per_user(edges, alive, 100, "recent")
        keys, eng = gc.distinct_users_per_tweet(tweet[alive & sel], user[alive & sel])
        alive &= gc.lookup(keys, eng, tweet, 0) >= 2
    final = edges.filter(pa.array(alive & sel))
    left, right, pair_counts = pcore.user_pairs(final, gap_ms=0, fanout_cap=1000)
    focal, other, count = pcore.aggregate_directed(left, right, np.ones(len(left), np.int64))
    elapsed = time.perf_counter() - start
    return {"rows": counts["rows_in"], "edges": final.num_rows, "pairs_generated": len(left),
            "distinct_pairs": len(focal), "seconds": elapsed}  # fmt: skip


def _measure(cmd: list[str]) -> tuple[float, float, str]:
    """Runs cmd in a child of a child: wall seconds, peak RSS (MiB) of that process tree, stdout
    (which ends with a `__CPU__ seconds` line: user + sys CPU of the tree, robust to a busy machine)."""
    wrapper = (
        "import resource,subprocess,sys,time;t=time.perf_counter();"
        "r=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
        "sys.stderr.write(r.stderr[-2000:]);"
        "print(r.stdout);print('__WALL__',time.perf_counter()-t);"
        "u=resource.getrusage(resource.RUSAGE_CHILDREN);print('__CPU__',u.ru_utime+u.ru_stime);"
        "print('__RSS__',u.ru_maxrss);sys.exit(r.returncode)"
    )
    done = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    wall = float(done.stdout.split("__WALL__")[1].split()[0])
    rss = float(done.stdout.split("__RSS__")[1].split()[0]) / 1024
    cpu = done.stdout.split("__CPU__")[1].split()[0]
    return wall, rss, done.stdout.split("__WALL__")[0] + f"\n__CPU__ {cpu}"


def run_graph(folder: Path, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "twhin_data", "graph", "--engagements", str(folder), "--output", str(out)]
    cmd += ["--overwrite", "--min_per_tweet", "2", "--log_level", "WARNING", *extra]
    wall, rss, text = _measure(cmd)
    stats = json.loads((out / "reports" / "graph" / "stats.json").read_text())
    return {
        "seconds": round(wall, 1),
        "cpu_seconds": round(float(text.split("__CPU__")[1].split()[0]), 1),
        "peak_rss_mib": round(rss),
        "rows": stats["accounting"]["in"],
        "edges": stats["edges"],
        "pairs_generated": stats["pairs"]["cooccurrence_generated"],
        "pairs_written": stats["pairs"]["cooccurrence"],
        "dropped_by_fanout_cap": stats["pairs"]["dropped_by_fanout_cap"],
        "rows_per_s": round(stats["accounting"]["in"] / wall),
        "pairs_per_s": round(stats["pairs"]["cooccurrence_generated"] / wall),
        "balanced": stats["accounting"]["balanced"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="Engagements (default 1M).")
    parser.add_argument(
        "--heavy", type=int, default=50_000, help="Heavy user's engagements (0 = skip that run)."
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip_baseline", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=1, help="Alternate the contenders this many times; keep the fastest."
    )
    parser.add_argument("--workers", type=int, default=1, help="graph's --workers (default 1: one process).")
    parser.add_argument("--baseline_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.baseline_child:
        print(json.dumps(baseline(args.baseline_child)))
        return 0
    results: dict = {"n": args.n, "cpus": os.cpu_count(), "workers": args.workers}
    folder = generate(args.n, args.seed, 0, CACHE)
    for _ in range(max(1, args.repeat)):  # alternate, so both see the same (noisy, shared) machine
        run = run_graph(folder, CACHE / "graph-out", [f"--workers={args.workers}"])
        if "graph" not in results or run["seconds"] < results["graph"]["seconds"]:
            results["graph"] = run
        print(json.dumps({"graph": run}), flush=True)
        if args.skip_baseline:
            continue
        wall, rss, out = _measure([sys.executable, __file__, "--baseline_child", str(folder)])
        base = json.loads(out.split("__CPU__")[0].strip().splitlines()[-1])
        cpu = round(float(out.split("__CPU__")[1].split()[0]), 1)
        base.update(peak_rss_mib=round(rss), process_seconds=round(wall, 1), cpu_seconds=cpu)
        base["rows_per_s"] = round(base["rows"] / wall)
        base["pairs_per_s"] = round(base["pairs_generated"] / wall)
        print(json.dumps({"baseline": base}), flush=True)
        if "baseline" not in results or base["process_seconds"] < results["baseline"]["process_seconds"]:
            results["baseline"] = base
    if "baseline" in results:
        base = results["baseline"]
        results["graph_vs_baseline_speed"] = round(base["process_seconds"] / results["graph"]["seconds"], 3)
        results["graph_vs_baseline_cpu"] = round(base["cpu_seconds"] / results["graph"]["cpu_seconds"], 3)
        results["same_edges_and_pairs"] = (base["edges"], base["pairs_generated"]) == (
            results["graph"]["edges"],
            results["graph"]["pairs_generated"],
        )
    if args.heavy:
        heavy = generate(args.n, args.seed, args.heavy, CACHE)
        results["graph_heavy_user"] = run_graph(
            heavy, CACHE / "graph-out-heavy", ["--max_per_user", "0", f"--workers={args.workers}"]
        )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
