"""Local scale-up benchmark (issue 9): prepare and shard with --workers N vs a plain process pool.

One self-contained command (the synthetic input is generated once and cached under /tmp; the shard
stage's input is prepare's corpus of it, built once with one worker):

    python bench/bench_scaleup.py --n 400000 --max_workers 16 --repeat 2 --out bench/out/scaleup

For every N in 1, 2, 4, 8, 16 (up to --max_workers), each measurement in a fresh process:

* ``prepare``: the real command (`twhin-data prepare --workers N`, FnApiRunner) end to end;
* ``pool``: the ceiling, a plain ``multiprocessing.Pool(N)`` (forkserver, same preloaded
  modules) doing ALL of prepare's work with the same pure steps (transforms/prepare/steps.py:
  spill per read task, dedup per bucket, resample + write per part), grouping in the parent;
* ``pool_read`` (with --narrow): the issue's narrower ceiling, read + normalize + language ID only;
* ``mp`` (with --candidates): Beam's own ``--direct_running_mode=multi_processing
  --direct_num_workers=N`` with PoolMapFn at 1 worker (the alternative the issue measured);
* ``shard`` / ``shard_pool`` (``--stages``, default both): `twhin-data shard --workers N` end to
  end next to a plain pool running the same pure steps (transforms/shard/steps.py: tokenize +
  spill per table, route per slice, sort + dedupe + pack + Parquet write per shard).

Each ceiling's output files are compared byte for byte with the command's and with one worker's
(the ``same bytes`` column). Reports tweets/s (the fastest of --repeat runs), speed-up over N=1
of the same method, the ratio of the command's speed-up to the pool's (the acceptance bar is
>= 0.8), peak RSS of the whole process tree and the parent's CPU seconds.
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

from rss import PeakRss  # noqa: E402


class TreeRss(PeakRss):
    """PeakRss (bench/rss.py) of this process's own tree, as a context manager; `peak_kb` is the
    peak of the tree's summed RSS (pool children of the fork server are grandchildren, invisible
    to getrusage)."""

    def __init__(self) -> None:
        super().__init__(os.getpid())

    @property
    def peak_kb(self) -> int:
        return self.tree_kb

    def __enter__(self) -> TreeRss:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _usage(tree: TreeRss) -> dict:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "peak_rss_total_mb": round(tree.peak_kb / 1024, 1),
        "peak_rss_parent_mb": round(own.ru_maxrss / 1024, 1),
        "parent_cpu_s": round(own.ru_utime + own.ru_stime, 2),
    }


def _sha256s(folder: str, suffix: str = ".parquet") -> dict[str, str]:
    import hashlib

    return {
        name: hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
        for name in sorted(os.listdir(folder))
        if name.endswith(suffix)
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
        digests = _sha256s(os.path.join(out, "corpus"))
    return {
        "tweets": stats["in"],
        "out": stats["out"],
        "wall_s": round(wall, 3),
        "corpus_sha256": digests,
        **_usage(tree),
    }


def _prepare_layout(paths: list[str]) -> tuple[int, int, int]:
    """(input rows, dedup buckets, output parts): prepare's defaults (pipelines/prepare.validate)."""
    import pyarrow.parquet as pq

    total = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    return total, max(1, min(4096, -(-total // 25_000))), max(1, min(256, -(-total // 200_000)))


def child_pool(root: str, workers: int) -> dict:
    """The ceiling: a plain multiprocessing.Pool doing ALL of prepare's work, no Beam.

    The same pure steps as the pipeline (transforms/prepare/steps.py) in the same order: read +
    normalize + language ID + filters + spill per read task, dedup per text bucket, resampling
    and the Parquet write per output part, with the grouping between them done in this process.
    Its corpus is compared byte for byte with the pipeline's, so both did the same work.
    """
    import collections
    import functools
    import multiprocessing

    from twhin_data.core import tags
    from twhin_data.core.pool import Tagged
    from twhin_data.pipelines.prepare import resolve_inputs
    from twhin_data.transforms.prepare import stats as st
    from twhin_data.transforms.prepare import steps
    from twhin_data.transforms.prepare import table as prep
    from twhin_data.transforms.prepare.read import keyed_file_tasks
    from twhin_data.transforms.prepare.resample import resample_rates

    started = time.perf_counter()
    paths = resolve_inputs(root)
    total, buckets, parts = _prepare_layout(paths)
    config = prep.PrepareConfig(buckets=buckets)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["twhin_data.transforms.prepare.steps"])
    rows = 0
    with (
        tempfile.TemporaryDirectory(prefix="scaleup-pool-") as out,
        TreeRss() as tree,
        context.Pool(workers, initializer=prep.warm, initargs=(config,)) as pool,
    ):
        tmp, corpus = os.path.join(out, "_tmp"), os.path.join(out, "corpus")
        tasks = [kt for item in enumerate(paths) for kt in keyed_file_tasks(item)]
        by_bucket = collections.defaultdict(list)
        for outputs in pool.imap(functools.partial(steps.spill_task, config=config, tmp=tmp), tasks):
            for o in outputs:
                if isinstance(o, Tagged):
                    rows += o.value.get("in", 0) if o.tag == tags.STATS else 0
                else:
                    by_bucket[o[0]].append(o[1])
        counts: dict = {}
        by_part = collections.defaultdict(list)
        dedup = functools.partial(steps.dedup_bucket, exact=True, num_parts=parts, tmp=tmp)
        for outputs in pool.imap(dedup, sorted(by_bucket.items())):
            for o in outputs:
                if isinstance(o, Tagged):
                    counts = st.merge([counts, o.value]) if o.tag == tags.COUNTS else counts
                else:
                    by_part[o[0]].append(o[1])
        rates = resample_rates(counts, alpha=1.0, min_count=100)
        items = [(part, sorted(refs), rates) for part, refs in sorted(by_part.items())]
        write = functools.partial(steps.write_part, path=corpus, num_parts=parts)
        for _ in pool.imap(write, items):
            pass
        wall = time.perf_counter() - started
        digests = _sha256s(corpus)
    return {"tweets": rows, "wall_s": round(wall, 3), "corpus_sha256": digests, **_usage(tree)}


def child_pool_read(root: str, workers: int) -> dict:
    """The issue's narrower ceiling: the pool only reads, normalizes and detects (no dedup, no write)."""
    import functools
    import multiprocessing

    from twhin_data.core import tags
    from twhin_data.core.pool import Tagged
    from twhin_data.pipelines.prepare import resolve_inputs
    from twhin_data.transforms.prepare import table as prep
    from twhin_data.transforms.prepare.read import plan_tasks

    started = time.perf_counter()
    paths = resolve_inputs(root)
    config = prep.PrepareConfig(buckets=_prepare_layout(paths)[1])
    fn = functools.partial(prep.prepare_task, config=config)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["twhin_data.transforms.prepare.table"])
    rows = 0
    with TreeRss() as tree, context.Pool(workers, initializer=prep.warm, initargs=(config,)) as pool:
        for outputs in pool.imap(fn, plan_tasks(paths), chunksize=1):
            rows += sum(
                o.value.get("in", 0) for o in outputs if isinstance(o, Tagged) and o.tag == tags.STATS
            )
    wall = time.perf_counter() - started
    return {"tweets": rows, "wall_s": round(wall, 3), **_usage(tree)}


def corpus_dir(root: str) -> str:
    """prepare's corpus/ of `root`, built once with one worker (the shard benchmark's input)."""
    out = root.rstrip("/") + "-prepared"
    if not os.path.isdir(os.path.join(out, "corpus")):
        import contextlib
        import io

        from twhin_data.runners import cli

        flags = [
            "prepare",
            f"--tweets={root}",
            f"--output={out}",
            "--workers=1",
            "--overwrite",
            "--log_level=WARNING",
        ]
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(flags)
        if code:
            raise SystemExit(f"prepare for the shard benchmark failed ({code})")
    return os.path.join(out, "corpus")


def child_shard(corpus: str, workers: int) -> dict:
    import contextlib
    import io

    import pyarrow.parquet as pq

    from twhin_data.runners import cli

    with tempfile.TemporaryDirectory(prefix="scaleup-shard-") as out:
        flags = [
            "shard",
            f"--corpus={corpus}",
            f"--output={out}",
            f"--workers={workers}",
            "--log_level=WARNING",
        ]
        with TreeRss() as tree, contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            code = cli.main(flags)
            wall = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"shard failed with exit code {code}")
        manifest = json.load(open(os.path.join(out, "manifest.json")))
    digests = {os.path.basename(f["file"]): f["sha256"] for f in manifest["shards"] if f["dataset"] == "mlm"}
    rows = pq.ParquetDataset(corpus).read(columns=["tweet_id"]).num_rows
    return {"tweets": rows, "wall_s": round(wall, 3), "mlm_sha256": digests, **_usage(tree)}


def child_shard_pool(corpus: str, workers: int) -> dict:
    """The ceiling for shard: a plain pool running the same pure steps as the command
    (transforms/shard/steps.py: tokenize + spill per table, route per slice, sort + dedupe + pack +
    write per shard), the parent reading the tables and grouping the references, no Beam.
    Its MLM files are compared byte for byte with the command's."""
    import collections
    import functools
    import multiprocessing

    import pyarrow as pa
    import pyarrow.parquet as pq

    from twhin_data.core import tags
    from twhin_data.core.pool import Tagged
    from twhin_data.text.tokenize import bundled_path
    from twhin_data.transforms.shard import steps as sh
    from twhin_data.transforms.shard import tokenize as tk

    started = time.perf_counter()
    paths = sorted(os.path.join(corpus, f) for f in os.listdir(corpus) if f.endswith(".parquet"))

    def tables():  # named as ReadTables(named=True) names them: same order, same bytes
        for index, path in enumerate(paths):
            reader = pq.ParquetFile(path)
            for group in range(reader.metadata.num_row_groups):
                batches = reader.iter_batches(
                    batch_size=4096, columns=list(tk.CORPUS_COLUMNS), row_groups=[group]
                )
                for number, batch in enumerate(batches):
                    table = pa.Table.from_batches([batch]).append_column(
                        "source", pa.array([path] * batch.num_rows)
                    )
                    yield f"{index:06d}-{group:06d}-{number:06d}", table

    totals, refs = collections.Counter(), []
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["twhin_data.transforms.shard.steps"])
    threads = -(-(os.cpu_count() or 1) // workers)
    with (
        tempfile.TemporaryDirectory(prefix="scaleup-shard-pool-") as out,
        TreeRss() as tree,
        context.Pool(workers, initializer=tk.limit_tokenizer_threads, initargs=(threads,)) as pool,
    ):
        spill = functools.partial(
            sh.spill_tokens,
            tmp=os.path.join(out, "tmp"),
            tokenizer=bundled_path(),
            max_length=128,
            valid_fraction=0.01,
            seed=0,
        )
        for outputs in pool.imap(spill, tables(), chunksize=1):
            for o in outputs:
                if not isinstance(o, Tagged):
                    refs.append(o)
                elif o.tag == tags.STATS:
                    totals.update(o.value)
        plan = sh.plan_shards(dict(totals), prefix="mlm_", num_shards=None, target_bytes=256_000_000)
        groups = collections.defaultdict(list)
        for routed in pool.imap(sh.route_slice, [(split, ref, plan[split]) for split, ref in refs]):
            for key, piece in routed:
                groups[key].append(piece)
        items = [((key[0], *sh.renumber(key, groups)), groups[key]) for key in sorted(groups)]
        write = functools.partial(
            sh.write_mlm_shard, path=os.path.join(out, "mlm"), max_length=128, pack=True, tmp=os.path.join(out, "tmp")
        )
        infos = [info for written in pool.imap(write, items) for info in written]
        digests = {os.path.basename(info["file"]): info["sha256"] for info in infos}
        wall = time.perf_counter() - started
    return {"tweets": totals["tweets_in"], "wall_s": round(wall, 3), "mlm_sha256": digests, **_usage(tree)}


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
    lines = [f"Scale-up, {report['n']:,} synthetic tweets, {report['machine']}, {report['date']}", ""]
    for stage, ceiling in (("prepare", "pool"), ("shard", "shard_pool")):
        if stage not in report["rows"][0]:
            continue
        narrow = stage == "prepare" and "pool_read" in report["rows"][0]
        mp = stage == "prepare" and report["mp"]
        lines += [
            f"{stage} (ceiling: a plain pool doing the whole job; `same bytes`: its output equals the command's):",
            "",
            f"| workers | {stage} tweets/s | speed-up | pool tweets/s | pool speed-up | "
            f"{stage}/pool speed-up | same bytes | peak RSS, all processes (MB) | parent CPU s |"
            + (" pool, read+normalize+langid only: tweets/s (speed-up) |" if narrow else "")
            + (" Beam multi_processing tweets/s (speed-up) |" if mp else ""),
            "|---|---|---|---|---|---|---|---|---|" + ("---|" if narrow else "") + ("---|" if mp else ""),
        ]
        for row in report["rows"]:
            r, c = row[stage], row[ceiling]
            line = (
                f"| {row['workers']} | {r['tweets_per_s']:,.0f} | x{row[f'{stage}_speedup']:.2f} | "
                f"{c['tweets_per_s']:,.0f} | x{row[f'{ceiling}_speedup']:.2f} | **{row[f'{stage}_ratio']:.2f}** | "
                f"{'yes' if row[f'{stage}_same_bytes'] else 'NO'} | "
                f"{r['peak_rss_total_mb']:.0f} | {r['parent_cpu_s']:.1f} |"
            )
            if narrow:
                line += f" {row['pool_read']['tweets_per_s']:,.0f} (x{row['pool_read_speedup']:.2f}) |"
            if mp:
                line += (
                    f" {row['mp']['tweets_per_s']:,.0f} (x{row['mp_speedup']:.2f}) |" if "mp" in row else " |"
                )
            lines.append(line)
        lines.append("")
    return "\n".join(lines)


def best_of(kinds: list[str], root: str, workers: int, repeat: int) -> dict[str, dict]:
    """The fastest of `repeat` runs of each kind, each run in a fresh process. The kinds take
    turns (command, pool, command, pool, ...), so a slow minute of a noisy machine hits both."""
    runs: dict[str, list] = {kind: [] for kind in kinds}
    for _ in range(repeat):
        for kind in kinds:
            runs[kind].append(run_child(kind, root, workers))
    best = {}
    for kind, results in runs.items():
        best[kind] = min(results, key=lambda r: r["wall_s"])
        best[kind]["walls_s"] = [r["wall_s"] for r in results]
    return best


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
    parser.add_argument(
        "--narrow", action="store_true", help="Also measure the read+normalize+langid-only pool."
    )
    parser.add_argument("--repeat", type=int, default=1, help="Runs per measurement (the fastest counts).")
    parser.add_argument(
        "--shard_repeat", type=int, default=None, help="Runs per shard measurement (default --repeat)."
    )
    parser.add_argument("--stages", default="prepare,shard", help="Comma-separated: prepare, shard.")
    parser.add_argument(
        "--child",
        choices=["prepare", "pool", "pool_read", "mp", "shard", "shard_pool"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        children = {
            "pool": child_pool,
            "pool_read": child_pool_read,
            "shard": child_shard,
            "shard_pool": child_shard_pool,
        }
        if args.child in children:
            result = children[args.child](args.root, args.workers)
        else:
            result = child_prepare(args.root, args.workers, args.child)
        print(json.dumps(result))
        return 0
    import prep_data

    root = prep_data.tweets_dir(args.n)
    stages = [x.strip() for x in args.stages.split(",") if x.strip()]
    corpus = corpus_dir(root) if "shard" in stages else None
    counts = [w for w in (1, 2, 4, 8, 16, 32, 64) if w <= args.max_workers]
    rows = []
    for workers in counts:
        row: dict = {"workers": workers}
        if "prepare" in stages:
            kinds = ["prepare", "pool"] + (["pool_read"] if args.narrow else [])
            row.update(best_of(kinds, root, workers, args.repeat))
            if args.candidates and workers > 1:
                row["mp"] = run_child("mp", root, workers)
        if corpus:
            row.update(best_of(["shard", "shard_pool"], corpus, workers, args.shard_repeat or args.repeat))
        print(json.dumps(row), flush=True)
        rows.append(row)
    reference = {}
    for stage, ceiling, digest in (
        ("prepare", "pool", "corpus_sha256"),
        ("shard", "shard_pool", "mlm_sha256"),
    ):
        if stage not in rows[0]:
            continue
        base, base_pool = rows[0][stage]["tweets_per_s"], rows[0][ceiling]["tweets_per_s"]
        reference[stage] = rows[0][stage][digest]
        for row in rows:
            row[f"{stage}_speedup"] = row[stage]["tweets_per_s"] / base
            row[f"{ceiling}_speedup"] = row[ceiling]["tweets_per_s"] / base_pool
            row[f"{stage}_ratio"] = row[f"{stage}_speedup"] / row[f"{ceiling}_speedup"]
            # Same bytes as the 1-worker command, for both the command and the pool.
            row[f"{stage}_same_bytes"] = row[stage][digest] == row[ceiling][digest] == reference[stage]
            if stage == "prepare" and "pool_read" in row:
                row["pool_read_speedup"] = (
                    row["pool_read"]["tweets_per_s"] / rows[0]["pool_read"]["tweets_per_s"]
                )
            if stage == "prepare" and "mp" in row:
                row["mp_speedup"] = row["mp"]["tweets_per_s"] / base
    report = {
        "n": args.n,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores ({platform.python_version()})",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mp": args.candidates,
        "repeat": args.repeat,
        "shard_repeat": args.shard_repeat or args.repeat,
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
