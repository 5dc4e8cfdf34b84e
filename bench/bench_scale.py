"""Scale benchmark: each stage at 1x and Fx input, throughput and peak memory side by side.

    python bench/bench_scale.py [--tweets 400000] [--factor 5] [--engagements 1000000]
                                [--graph_factor 3] [--workers 1]
                                [--stages prepare,shard,shard_pairs,graph] [--repeat 1]

prepare runs on synthetic hydrated tweets (bench/prep_data.py), shard on a synthetic corpus of
the same size (bench/bench_shard.py, bundled tokenizer), shard_pairs on that corpus with two pairs
per tweet (hub tweets, 1% dangling: bench_shard.pairs_dir), graph on power-law engagement logs (bench/bench_graph.py: `--min_per_tweet
2`, co-engagement pairs). Each run is the `twhin-data` command in a subprocess; its peak memory is
read from /proc (bench/rss.py): the command's own process, the largest pool worker, and the whole
tree. With `--repeat R`, each size runs R times (the sizes interleaved) and each figure is the
median of its runs (a 2-core VM's peak RSS varies by ~20 MB from run to run). The growth
columns divide the Fx run's figure by the 1x run's: flat memory reads ~1.0, a
stage that holds its input grows with the factor. Prints JSON and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from bench_graph import generate  # noqa: E402
from bench_shard import corpus_dir, pairs_dir  # noqa: E402
from prep_data import CACHE, tweets_dir  # noqa: E402
from rss import run_measured  # noqa: E402


def run_command(argv: list[str]) -> dict:
    return run_measured([sys.executable, "-m", "twhin_data.runners.cli", *argv], f"twhin-data {argv[0]}")


def stage_runs(stage: str, n: int, root: Path, workers: int) -> dict:
    out = root / f"{stage}-{n}"
    common = ["--log_level=WARNING", f"--workers={workers}"]
    if stage == "prepare":
        return run_command(["prepare", f"--tweets={tweets_dir(n)}", f"--output={root / f'prep-{n}'}", *common])
    if stage == "shard":  # n synthetic corpus rows (prepare's output on synthetic tweets is mostly near-copies)
        return run_command(["shard", f"--corpus={corpus_dir(n, 0)}", f"--output={out}", *common])
    if stage == "shard_pairs":  # the same corpus and 2 pairs per tweet (bench_shard.pairs_dir)
        inputs = pairs_dir(n, 0)
        return run_command(["shard", f"--corpus={inputs}", f"--pairs={inputs}", f"--output={out}", *common])
    logs = generate(n, seed=7, heavy=0, out=Path(CACHE))
    return run_command(["graph", f"--engagements={logs}", f"--output={out}", "--min_per_tweet=2", *common])


def _median_run(results: list[dict]) -> dict:
    """Each figure's median over the runs of one size (the lower middle of an even count), with
    every run's peaks kept under "tries"."""
    out: dict = {}
    for key in results[0]:
        values = sorted(r[key] for r in results if r[key] is not None)
        out[key] = values[(len(values) - 1) // 2] if values else None
    out["tries"] = [{k: r[k] for k in ("wall_s", "tree_peak_rss_mb", "runner_peak_rss_mb")} for r in results]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=400_000)
    parser.add_argument("--factor", type=int, default=5)
    parser.add_argument("--engagements", type=int, default=1_000_000)
    parser.add_argument("--graph_factor", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--stages", default="prepare,shard,graph")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each size, 1x and Fx interleaved; the figures are their medians"
    )
    args = parser.parse_args(argv)
    report: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "workers": args.workers,
        "repeat": args.repeat,
        "stages": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        for stage in args.stages.split(","):
            base, factor = (args.engagements, args.graph_factor) if stage == "graph" else (args.tweets, args.factor)
            tries: dict[str, list[dict]] = {str(base): [], str(base * factor): []}
            for i in range(args.repeat):  # interleaved, so a drift of the machine's load hits both sizes
                for n in (base, base * factor):
                    result = stage_runs(stage, n, root / f"run-{i}", args.workers)
                    shutil.rmtree(root / f"run-{i}", ignore_errors=True)  # each run writes a fresh output
                    tries[str(n)].append({**result, "rows_per_s": round(n / result["wall_s"])})
                    print(f"{stage} {n}: {tries[str(n)][-1]}", file=sys.stderr, flush=True)
            runs = {n: _median_run(results) for n, results in tries.items()}
            small, big = runs[str(base)], runs[str(base * factor)]
            growth = {k: round(big[k] / small[k], 2) if small[k] else None for k in ("tree_peak_rss_mb", "runner_peak_rss_mb", "largest_worker_peak_rss_mb")}
            report["stages"][stage] = {"runs": runs, "input_factor": factor, "memory_growth": growth, "throughput_ratio": round(big["rows_per_s"] / small["rows_per_s"], 2)}
    print(json.dumps(report, indent=1))
    print("\n| stage | rows in | wall s | rows/s | tree peak RSS MB | command's process MB | largest worker MB |\n|---|---|---|---|---|---|---|")
    for stage, entry in report["stages"].items():
        for n, r in entry["runs"].items():
            print(f"| {stage} | {int(n):,} | {r['wall_s']} | {r['rows_per_s']:,} | {r['tree_peak_rss_mb']} | {r['runner_peak_rss_mb']} | {r['largest_worker_peak_rss_mb']} |")
        g = entry["memory_growth"]
        print(f"| {stage}: growth at {entry['input_factor']}x input | | | {entry['throughput_ratio']}x | {g['tree_peak_rss_mb']}x | {g['runner_peak_rss_mb']}x | {g['largest_worker_peak_rss_mb'] or '-'}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
