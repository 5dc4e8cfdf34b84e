"""Hydration against the rate-limited mock X API: IDs/s vs 100*R/W, 429s, tweepy baseline, conservation.

  python bench/bench_hydrate.py [--rate 20] [--window 2] [--windows 6] [--conservation 100000]

Three measurements, same machine, same run:
1. `twhin-data hydrate` (FnApiRunner, in-process) against MockXApi with R requests per W-second
   window, enough IDs for `--windows` full windows. Reported: steady-state IDs/s over the full
   windows between the first and the last request (the rate limit is the bottleneck there),
   end-to-end IDs/s (pipeline start-up included), both as a ratio of the ideal 100*R/W, and the
   number of 429 responses after the first window.
2. A plain tweepy loop (`Client(wait_on_rate_limit=True)`, 100 IDs per get_tweets) on an identical mock.
3. Conservation at scale: N IDs with duplicates, malformed lines, 10% missing and 20% injected
   faults (no rate limit): every distinct ID exactly once across tweets/ and unavailable/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

TOKEN = "bench-token"


def corpus(n: int, seed: int, missing: float = 0.1) -> tuple[list[str], dict, dict]:
    rng = random.Random(seed)
    ids: set[str] = set()
    while len(ids) < n:
        ids.add(str(rng.randrange(10**17, 10**19)))
    ordered = sorted(ids)
    store, statuses = {}, {}
    for tweet_id in ordered:
        draw = rng.random()
        if draw < missing:
            continue
        if draw < missing + 0.02:
            statuses[tweet_id] = "protected"
        else:
            store[tweet_id] = {
                "id": tweet_id,
                "text": f"bench {tweet_id} &amp; #tag",
                "lang": "en",
                "edit_history_tweet_ids": [tweet_id],
            }
    return ordered, store, statuses


def timed_mock(*args, **kwargs):
    from twhin_data.xapi.mock.server import MockXApi

    class TimedMock(MockXApi):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.times: list[tuple[float, int]] = []

        def answer(self, path, query, auth):
            status, headers, body = super().answer(path, query, auth)
            self.times.append((time.time(), status))
            return status, headers, body

    return TimedMock(*args, **kwargs)


class ExternalMock:
    """The timed mock in a child process, so its JSON work does not share our GIL (the real API is remote)."""

    def __init__(self, n_ids: int, rate: int | None, window: float, workdir: Path):
        import subprocess

        self._times_path = workdir / f"times-{time.time_ns()}.json"
        cmd = [
            sys.executable,
            __file__,
            "--serve_mock",
            str(self._times_path),
            "--serve_ids",
            str(n_ids),
            "--rate",
            str(rate or 0),
            "--window",
            str(window),
        ]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.base_url = self._proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise SystemExit("the mock did not start")

    def stop(self) -> list[tuple[float, int]]:
        self._proc.stdin.close()
        self._proc.wait(timeout=60)
        return [tuple(x) for x in json.loads(self._times_path.read_text())]


def serve_mock(times_path: str, n_ids: int, rate: int, window: float) -> int:
    _ids, store, statuses = corpus(n_ids, seed=1, missing=0.0)
    with timed_mock(store, statuses=statuses, token=TOKEN, rate_limit=rate or None, window_s=window) as mock:
        print(mock.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
        times = list(mock.times)
    Path(times_path).write_text(json.dumps(times))
    return 0


def window_stats(times: list[tuple[float, int]], rate: int, window: float, ids_per_request: float) -> dict:
    """Steady state: successful requests per window over full windows strictly inside the run."""
    ok = [t for t, s in times if s == 200]
    first, last = int(ok[0] // window), int(ok[-1] // window)
    inner = range(first + 1, last)  # windows the run neither started nor ended in
    per_window = [sum(1 for t in ok if int(t // window) == w) for w in inner]
    first_429 = [t for t, s in times if s == 429 and int(t // window) > int(times[0][0] // window)]
    mean = sum(per_window) / len(per_window) if per_window else float("nan")
    ideal = 100 * rate / window
    return {
        "requests": len(times),
        "429_total": sum(1 for _, s in times if s == 429),
        "429_after_first_window": len(first_429),
        "full_windows": len(per_window),
        "requests_per_full_window": round(mean, 2),
        "steady_ids_per_s": round(mean * ids_per_request / window, 1),
        "steady_ratio": round(mean * ids_per_request / window / ideal, 3),
    }


def run_twhin(n_ids: int, rate: int, window: float, workdir: Path, concurrency: int = 1) -> dict:
    from twhin_data.runners.cli import main

    ids, _store, _statuses = corpus(n_ids, seed=1, missing=0.0)
    ids_file = workdir / "ids.txt"
    ids_file.write_text("\n".join(ids) + "\n")
    os.environ["X_BEARER_TOKEN"] = TOKEN
    mock = ExternalMock(n_ids, rate, window, workdir)
    start = time.time()
    rc = main(
        [
            "hydrate",
            "--ids",
            str(ids_file),
            "--api_base_url",
            mock.base_url,
            "--output",
            str(workdir / "twhin"),
            "--pacing_dir",
            str(workdir / "pacing"),
            "--reset_margin_s=0.05",
            f"--max_concurrency={concurrency}",
            "--log_level=WARNING",
        ]
    )
    elapsed = time.time() - start
    times = mock.stop()
    if rc != 0:
        raise SystemExit(f"twhin-data hydrate failed with exit code {rc}")
    out = window_stats(times, rate, window, n_ids / max(1, sum(1 for _, s in times if s == 200)))
    return {**out, **end_to_end(n_ids, rate, window, start, elapsed, times)}


def end_to_end(n_ids: int, rate: int, window: float, start: float, elapsed: float, times: list) -> dict:
    """Whole-command figures (start-up and final write included) against the ideal 100*R/W."""
    ideal = 100 * rate / window
    return {
        "ids": n_ids,
        "end_to_end_s": round(elapsed, 1),
        "end_to_end_ids_per_s": round(n_ids / elapsed, 1),
        "end_to_end_ratio": round(n_ids / elapsed / ideal, 3),
        "ideal_ids_per_s": ideal,
        "start_to_first_request_s": round(times[0][0] - start, 1),
        "last_request_to_end_s": round(start + elapsed - times[-1][0], 1),
    }


def run_tweepy(n_ids: int, rate: int, window: float, workdir: Path) -> dict:
    import requests
    import tweepy
    from requests.adapters import HTTPAdapter

    ids, _store, _statuses = corpus(n_ids, seed=1, missing=0.0)
    mock = ExternalMock(n_ids, rate, window, workdir)

    class Rewrite(HTTPAdapter):  # tweepy hard-codes https://api.twitter.com
        def send(self, request, **kwargs):
            request.url = request.url.replace("https://api.twitter.com", mock.base_url, 1)
            return super().send(request, **kwargs)

    from twhin_data.xapi.client import DEFAULT_EXPANSIONS, DEFAULT_TWEET_FIELDS

    client = tweepy.Client(bearer_token=TOKEN, wait_on_rate_limit=True, return_type=requests.Response)
    client.session.mount("https://api.twitter.com/", Rewrite())
    fields = [f for f in DEFAULT_TWEET_FIELDS if f != "id"]
    start = time.time()
    for i in range(0, len(ids), 100):  # the same request content as twhin-data's
        client.get_tweets(ids=ids[i : i + 100], tweet_fields=fields, expansions=list(DEFAULT_EXPANSIONS))
    elapsed = time.time() - start
    times = mock.stop()
    out = window_stats(times, rate, window, 100.0)
    return {**out, **end_to_end(n_ids, rate, window, start, elapsed, times)}


def run_conservation(n_ids: int, workdir: Path) -> dict:
    from twhin_data.runners.cli import main
    from twhin_data.xapi.mock.server import MockXApi

    ids, store, statuses = corpus(n_ids, seed=2)
    rng = random.Random(3)
    lines = ids + rng.sample(ids, n_ids // 10) + ["12ab", "1.2345E+18", "", "99999999999999999999"] * 5
    rng.shuffle(lines)
    ids_file = workdir / "ids100k.txt"
    ids_file.write_text("\n".join(lines) + "\n")
    faults = {"500": 0.05, "503": 0.05, "502-html": 0.04, "truncated": 0.03, "429-noreset": 0.03}
    os.environ["X_BEARER_TOKEN"] = TOKEN
    with MockXApi(store, statuses=statuses, token=TOKEN, seed=9, faults=faults) as mock:
        start = time.time()
        rc = main(
            [
                "hydrate",
                "--ids",
                str(ids_file),
                "--api_base_url",
                mock.base_url,
                "--output",
                str(workdir / "cons"),
                "--max_retries=8",
                "--backoff_base=0.01",
                "--backoff_cap=0.05",
                "--log_level=WARNING",
            ]
        )
        elapsed = time.time() - start
        requests = len(mock.request_log)
    keys: list[str] = []
    statuses_out: dict[str, int] = {}
    for name in ("tweets", "unavailable"):
        for path in sorted((workdir / "cons" / name).glob("*.parquet")):
            table = pq.read_table(path)
            keys += table.column("tweet_id").to_pylist()
            for s in table.column("status").to_pylist() if name == "unavailable" else ["ok"] * table.num_rows:
                statuses_out[s] = statuses_out.get(s, 0) + 1
    valid_keys = [k for k in keys if k.isdigit() and len(k) <= 19]
    return {
        "rc": rc,
        "input_lines": len(lines),
        "distinct_ids": len(ids),
        "records": len(keys),
        "duplicates_in_output": len(keys) - len(set(keys)),
        "every_id_once": sorted(valid_keys) == ids,
        "statuses": statuses_out,
        "requests": requests,
        "seconds": round(elapsed, 1),
        "ids_per_s": round(len(lines) / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=20, help="R: requests per window.")
    parser.add_argument("--window", type=float, default=2.0, help="W: window length in seconds.")
    parser.add_argument("--windows", type=int, default=6, help="Windows' worth of IDs to hydrate.")
    parser.add_argument(
        "--conservation", type=int, default=100_000, help="IDs in the conservation run (0: skip)."
    )
    parser.add_argument("--max_concurrency", type=int, default=1, help="twhin-data --max_concurrency.")
    parser.add_argument("--skip_tweepy", action="store_true", help="Skip the plain tweepy baseline.")
    parser.add_argument("--serve_mock", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--serve_ids", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_mock:
        return serve_mock(args.serve_mock, args.serve_ids, args.rate, args.window)
    n_ids = 100 * args.rate * args.windows
    results: dict = {
        "machine": f"{os.cpu_count()} cores (shared)",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "rate": args.rate,
        "window_s": args.window,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results["twhin"] = run_twhin(n_ids, args.rate, args.window, work, args.max_concurrency)
        print(json.dumps({"twhin": results["twhin"]}), flush=True)
        if not args.skip_tweepy:
            results["tweepy_wait_on_rate_limit"] = run_tweepy(n_ids, args.rate, args.window, work)
            print(json.dumps({"tweepy": results["tweepy_wait_on_rate_limit"]}), flush=True)
            t, b = results["twhin"], results["tweepy_wait_on_rate_limit"]
            results["twhin_vs_tweepy_steady"] = (
                round(t["steady_ids_per_s"] / b["steady_ids_per_s"], 3)
                if not math.isnan(b["steady_ids_per_s"]) and b["steady_ids_per_s"]
                else None
            )
        if args.conservation:
            results["conservation"] = run_conservation(args.conservation, work)
    print(json.dumps(results, indent=2, sort_keys=True))
    ok = results["twhin"]["429_after_first_window"] == 0 and results["twhin"]["steady_ratio"] >= 0.95
    if args.conservation:
        ok = (
            ok
            and results["conservation"]["every_id_once"]
            and not results["conservation"]["duplicates_in_output"]
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
