"""comply: propagation time against the number of files it rewrites (a handful of IDs, 1%, 10%).

Builds one output (synthetic tweets -> `twhin-data prepare` -> `twhin-data shard`), then for each
removal set runs `twhin-data comply` on a fresh copy and reports wall time, files rewritten, rows
removed and peak RSS of the comply process. The baseline in the same run is the cost of rebuilding
what comply rewrites without it (prepare + shard again on the same input), the only alternative a
user had.

  python bench/bench_comply.py [--n 200000] [--parts 8] [--shards 16] [--workdir DIR]

"none" removes IDs that are in no file: its time is the fixed cost (process, Beam, reading every
file's ID columns); what the other cases add on top is the cost of the files they rewrite.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]


def _twhin(*argv: str) -> tuple[float, float]:
    """Runs `twhin-data argv` in a child process; returns (wall s, peak RSS MB of the child)."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-m", "twhin_data", *argv, "--progress=none", "--log_level=WARNING"], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"twhin-data {' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return time.perf_counter() - start, max(peak, before) / 1024


def build(base: Path, n: int, parts: int, shards: int) -> tuple[Path, float]:
    from twhin_data.data import synth
    from twhin_data.schemas import to_table
    from twhin_data.schemas.tweets import TWEETS

    out = base / "out"
    (out / "tweets").mkdir(parents=True)
    rows = [{"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang"), "author_id": t.get("author_id")} for t in synth.generate_tweets(n, seed=3)]
    for i in range(parts):
        pq.write_table(to_table(rows[i::parts], TWEETS), out / "tweets" / f"part-{i:05d}-of-{parts:05d}.parquet")
    prepare_s, _ = _twhin("prepare", f"--tweets={out}", f"--output={out}", f"--num_output_shards={parts}", "--workers=2")
    shard_s, _ = _twhin("shard", f"--corpus={out / 'corpus'}", f"--output={out / 'shards'}", f"--num_shards={shards}", "--workers=2")
    return out, prepare_s + shard_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    base = Path(args.workdir or tempfile.mkdtemp(prefix="bench-comply-"))
    out, rebuild_s = build(base, args.n, args.parts, args.shards)
    ids = pq.read_table(out / "corpus", columns=["tweet_id"]).column("tweet_id").to_pylist()
    first_shard = pq.read_table(sorted((out / "shards" / "mlm").glob("train-*.parquet"))[0], columns=["tweet_ids"])
    few = [t for row in first_shard.column("tweet_ids").to_pylist()[:3] for t in row][:5]
    rng = random.Random(7)
    absent = [str(int(max(ids, key=int)) + 1 + i) for i in range(5)]  # in no file: the scan alone
    cases = {"none": absent, "5 IDs": few, "1%": rng.sample(ids, len(ids) // 100), "10%": rng.sample(ids, len(ids) // 10)}
    total_files = len(list(out.rglob("*.parquet")))
    results = {"n": args.n, "files": total_files, "rebuild_prepare_shard_s": round(rebuild_s, 1), "cases": {}}
    print(f"output: {args.n:,} tweets, {total_files} Parquet files; rebuilding corpus + shards took {rebuild_s:.1f} s")
    for name, removal in cases.items():
        copy = base / f"copy-{name.replace('%', 'pct').replace(' ', '')}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(out, copy)
        ids_file = base / "remove.txt"
        ids_file.write_text("\n".join(removal) + "\n")
        wall, peak = _twhin("comply", f"--output={copy}", f"--remove_ids={ids_file}")
        report = copy / "reports" / "comply" / "stats.json"
        stats = json.loads(report.read_text()) if report.exists() else {"files_rewritten": 0, "rows_removed": 0}
        row = {"ids": len(removal), "wall_s": round(wall, 2), "files_rewritten": stats["files_rewritten"], "rows_removed": stats["rows_removed"], "peak_rss_mb": round(peak)}
        results["cases"][name] = row
        print(f"{name:>6}: {row['ids']:>7,} IDs, {row['files_rewritten']:>3}/{total_files} files rewritten, {row['wall_s']:6.2f} s wall, ratio to rebuilding {wall / rebuild_s:.2f}")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
