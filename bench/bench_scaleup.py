"""Local scale-up benchmark (issue 9): prepare with --workers N vs a plain process pool doing the same work.

One self-contained command (the synthetic input is generated once and cached under /tmp):

    python bench/bench_scaleup.py --n 400000 --max_workers 16 --out bench/out/scaleup

For every N in 1, 2, 4, 8, 16 (up to --max_workers), each in a fresh process:

* ``prepare``: the real command (`twhin-data prepare --workers N`, FnApiRunner) end to end:
  read, normalize + fastText language ID in PoolMapFn, dedup shuffle, resampling, write;
* ``pool``: the ceiling: a plain ``multiprocessing.Pool(N)`` running the same batch function
  (`transforms.prepare.prepare_task`: read, decode, normalize, language ID, filters, bucket split)
  over the same read tasks, results back in the parent;
* ``mp`` (with --candidates): Beam's own ``--direct_running_mode=multi_processing
  --direct_num_workers=N`` with PoolMapFn at 1 worker (the alternative the issue measured).

Reports tweets/s, speed-up over N=1 of the same method, the ratio of prepare's speed-up to the
pool's (the acceptance bar is >= 0.8), and peak RSS (parent, and the largest child).
Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))


class TreeRss:
    """Samples the RSS of this process and all its descendants (pool children of the fork
    server are grandchildren, invisible to getrusage) every 0.1 s; keeps the peak of the sum."""

    def __init__(self) -> None:
        import threading

        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _tree_kb(root: int) -> int:
        parents, rss = {}, {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/status") as handle:
                    fields = dict(line.split(":", 1) for line in handle if ":" in line)
            except OSError:
                continue
            parents[int(name)] = int(fields.get("PPid", "0").strip())
            rss[int(name)] = int(fields.get("VmRSS", "0 kB").split()[0])
        total = 0
        for pid in rss:
            cur = pid
            while cur and cur != root:
                cur = parents.get(cur, 0)
            if cur == root:
                total += rss[pid]
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak_kb = max(self.peak_kb, self._tree_kb(os.getpid()))

    def __enter__(self) -> TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _usage(tree: TreeRss) -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "peak_rss_total_mb": round(tree.peak_kb / 1024, 1),
        "peak_rss_parent_mb": round(own.ru_maxrss / 1024, 1),
        "parent_cpu_s": round(own.ru_utime + own.ru_stime, 2),
    }


def child_prepare(root: str, workers: int, mode: str) -> dict:
    from twhin_data.runners import cli

    with tempfile.TemporaryDirectory(prefix="scaleup-") as out:
        flags = ["prepare", f"--tweets={root}", f"--output={out}", "--log_level=WARNING"]
        if mode == "mp":
            flags += [
                "--workers=1",
                "--direct_running_mode=multi_processing",
                f"--direct_num_workers={workers}",
            ]
        else:
            flags += [f"--workers={workers}"]
        import contextlib
        import io

        with TreeRss() as tree, contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            code = cli.main(flags)
            wall = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"prepare failed with exit code {code}")
        stats = json.load(open(os.path.join(out, "reports", "prepare", "stats.json")))
    return {"tweets": stats["in"], "out": stats["out"], "wall_s": round(wall, 3), **_usage(tree)}


def child_pool(root: str, workers: int) -> dict:
    import functools
    import multiprocessing

    import pyarrow.parquet as pq

    from twhin_data.pipelines.prepare import resolve_inputs
    from twhin_data.transforms import prepare as prep
    from twhin_data.transforms.prepare_read import plan_tasks

    started = time.perf_counter()
    paths = resolve_inputs(root)
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    # The same bucket count prepare picks by default (1 per 100k rows).
    config = prep.PrepareConfig(buckets=max(1, min(4096, -(-total // 100_000))))
    fn = functools.partial(prep.prepare_task, config=config)
    context = multiprocessing.get_context("forkserver")
    rows = 0
    with TreeRss() as tree, context.Pool(workers, initializer=prep.warm, initargs=(config,)) as pool:
        # The same read tasks prepare plans: the pool processes read, decode, normalize, detect.
        for outputs in pool.imap(fn, plan_tasks(paths), chunksize=1):
            rows += sum(o.value.get("in", 0) for o in outputs if getattr(o, "tag", None) == prep.STATS_TAG)
    wall = time.perf_counter() - started
    return {"tweets": rows, "wall_s": round(wall, 3), **_usage(tree)}


def run_child(kind: str, root: str, workers: int) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        kind,
        "--root",
        root,
        "--workers",
        str(workers),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} with {workers} workers failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["tweets_per_s"] = round(result["tweets"] / result["wall_s"], 1)
    return result


def markdown(report: dict) -> str:
    lines = [
        f"Scale-up, prepare, {report['n']:,} synthetic tweets, {report['machine']}, {report['date']}",
        "",
        "| workers | prepare tweets/s | speed-up | pool tweets/s | pool speed-up | prepare/pool speed-up | "
        "peak RSS, all processes (MB) | parent CPU s |"
        + (" Beam multi_processing tweets/s (speed-up) |" if report["mp"] else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if report["mp"] else ""),
    ]
    for row in report["rows"]:
        line = (
            f"| {row['workers']} | {row['prepare']['tweets_per_s']:,.0f} | x{row['prepare_speedup']:.2f} | "
            f"{row['pool']['tweets_per_s']:,.0f} | x{row['pool_speedup']:.2f} | {row['ratio']:.2f} | "
            f"{row['prepare']['peak_rss_total_mb']:.0f} | {row['prepare']['parent_cpu_s']:.1f} |"
        )
        if report["mp"]:
            mp = row.get("mp")
            line += f" {mp['tweets_per_s']:,.0f} (x{row['mp_speedup']:.2f}) |" if mp else " |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400_000, help="Synthetic tweets (cached under /tmp).")
    parser.add_argument("--max_workers", type=int, default=os.cpu_count() or 1, help="Largest N measured.")
    parser.add_argument(
        "--out", default=os.path.join(HERE, "out", "scaleup"), help="Output prefix (.json, .md)."
    )
    parser.add_argument(
        "--candidates", action="store_true", help="Also measure Beam's multi_processing mode."
    )
    parser.add_argument("--child", choices=["prepare", "pool", "mp"], help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = (
            child_pool(args.root, args.workers)
            if args.child == "pool"
            else child_prepare(args.root, args.workers, args.child)
        )
        print(json.dumps(result))
        return 0
    import prep_data

    root = prep_data.tweets_dir(args.n)
    counts = [w for w in (1, 2, 4, 8, 16, 32, 64) if w <= args.max_workers]
    rows = []
    for workers in counts:
        row = {
            "workers": workers,
            "prepare": run_child("prepare", root, workers),
            "pool": run_child("pool", root, workers),
        }
        if args.candidates and workers > 1:
            row["mp"] = run_child("mp", root, workers)
        print(json.dumps(row), flush=True)
        rows.append(row)
    base_prepare, base_pool = rows[0]["prepare"]["tweets_per_s"], rows[0]["pool"]["tweets_per_s"]
    for row in rows:
        row["prepare_speedup"] = row["prepare"]["tweets_per_s"] / base_prepare
        row["pool_speedup"] = row["pool"]["tweets_per_s"] / base_pool
        row["ratio"] = row["prepare_speedup"] / row["pool_speedup"]
        if "mp" in row:
            row["mp_speedup"] = row["mp"]["tweets_per_s"] / base_prepare
    report = {
        "n": args.n,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({platform.python_version()})",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mp": args.candidates,
        "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".json", "w") as handle:
        json.dump(report, handle, indent=2)
    text = markdown(report)
    with open(args.out + ".md", "w") as handle:
        handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
