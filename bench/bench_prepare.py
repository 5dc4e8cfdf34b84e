"""prepare end to end on FnApiRunner, one worker: tweets/s per core, fasttext vs langdetect.

    python bench/bench_prepare.py --n 200000 --langdetect_n 10000 --out bench/out/prepare

Runs `twhin-data prepare --workers 1` (read, normalize_v1, language ID, filters, dedup shuffle,
resampling at alpha 0.7, write, report) on synthetic hydrate output (twhin_data.data.synth,
cached under /tmp), and reports tweets per wall-second and per CPU-second of the process (the
latter is what "per core" means on a shared machine). langdetect runs the same command on the
first `--langdetect_n` tweets (it is ~50x slower). A baseline is measured in the same run:
reading the same Parquet files into Arrow tables and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import io
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


def child(root: str, detector: str) -> dict:
    from twhin_data.runners import cli

    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as out:
        flags = [
            "prepare",
            f"--tweets={root}",
            f"--output={out}",
            "--workers=1",
            "--log_level=WARNING",
            f"--lang_detector={detector}",
            "--resample_alpha=0.7",
        ]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(flags)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if code:
            raise SystemExit(f"prepare failed ({code})")
        stats = json.load(open(os.path.join(out, "reports", "prepare", "stats.json")))
    n = stats["in"]
    return {
        "detector": detector,
        "tweets": n,
        "out": stats["out"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "tweets_per_s": round(n / wall),
        "tweets_per_cpu_s": round(n / cpu),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def read_only(root: str) -> dict:
    from twhin_data.pipelines.prepare import resolve_inputs
    from twhin_data.transforms.prepare.read import read_tables

    cpu0 = time.process_time()
    n = sum(t.num_rows for p in resolve_inputs(root) for _, t in read_tables(p))
    cpu = time.process_time() - cpu0
    return {"tweets": n, "tweets_per_cpu_s": round(n / cpu)}


def run(kind: str, root: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", kind, "--root", root]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--langdetect_n", type=int, default=10_000)
    parser.add_argument("--out", default=os.path.join(HERE, "out", "prepare"))
    parser.add_argument("--child", choices=["fasttext", "langdetect", "read"], help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(read_only(args.root) if args.child == "read" else child(args.root, args.child)))
        return 0
    import prep_data

    big, small = prep_data.tweets_dir(args.n), prep_data.tweets_dir(args.langdetect_n)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared; load {os.getloadavg()[0]:.1f}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "baseline_read_only": run("read", big),
        "fasttext": run("fasttext", big),
        "fasttext_small": run("fasttext", small),
        "langdetect_small": run("langdetect", small),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".json", "w") as handle:
        json.dump(result, handle, indent=2)
    f, fs, ls = result["fasttext"], result["fasttext_small"], result["langdetect_small"]
    md = (
        "\n".join(
            [
                f"prepare end to end, FnApiRunner, --workers 1, {result['machine']}, {result['date']}",
                "",
                "| run | tweets | wall s | tweets/s (wall) | tweets per CPU-second | peak RSS MB |",
                "|---|---|---|---|---|---|",
                *[
                    f"| {name} | {r['tweets']:,} | {r['wall_s']} | {r['tweets_per_s']:,} | {r['tweets_per_cpu_s']:,} | "
                    f"{r['peak_rss_mb']} |"
                    for name, r in (("fasttext", f), ("fasttext (small)", fs), ("langdetect (small)", ls))
                ],
                "",
                f"Baseline in the same run, reading the Parquet into Arrow tables only: "
                f"{result['baseline_read_only']['tweets_per_cpu_s']:,} tweets per CPU-second. "
                f"fasttext / langdetect end to end on the same {ls['tweets']:,} tweets: "
                f"x{fs['tweets_per_cpu_s'] / ls['tweets_per_cpu_s']:.1f} (CPU-second rates).",
            ]
        )
        + "\n"
    )
    with open(args.out + ".md", "w") as handle:
        handle.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
