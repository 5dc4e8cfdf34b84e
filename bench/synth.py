"""Synthetic benchmark inputs at any size: tweets (API JSONL or hydrated Parquet), engagements, ID lists.

  python bench/synth.py tweets --n 1000000 --out DIR [--format parquet|jsonl] [--seed S]
  python bench/synth.py engagements --n 1000000 --out DIR [--tweets N] [--users N] [--seed S]
  python bench/synth.py ids --n 100000 --out FILE [--missing 0.1] [--seed S]
  python bench/synth.py speed [--n 100000]      (generation throughput, for bench/RESULTS.md)

Same flags -> same bytes. `tweets`, `engagements` and `ids` with the same --seed describe the same
tweets: the IDs of `ids --n N --missing M` are the first N*(1-M) tweets of `tweets --seed S`.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from twhin_data.core.files import table_to_parquet_bytes
from twhin_data.data import synth, synth_logs
from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS


def _unescaped_offset(text: str, offset: int) -> int:
    return len(html.unescape(text[:offset])) if "&" in text else offset


def _spans(text: str, items: list[dict], value_key: str) -> list[dict]:
    return [
        {
            "start": _unescaped_offset(text, s["start"]),
            "end": _unescaped_offset(text, s["end"]),
            "value": s[value_key],
        }
        for s in items
    ]


def hydrated_row(tweet: dict, info: synth.TweetInfo) -> dict:
    """The `tweets` dataset row of an API tweet (full text, entities re-based on the unescaped text)."""
    src = info.original if info.kind == "retweet" and info.original else tweet
    full = src.get("note_tweet") or src
    raw_full = full["text"]
    entities = full.get("entities", {})
    metrics = tweet["public_metrics"]
    refs = tweet.get("referenced_tweets", [])
    return {
        "tweet_id": tweet["id"],
        "text": html.unescape(raw_full),
        "raw_text": tweet["text"],
        "lang": tweet["lang"],
        "created_at": (int(tweet["id"]) >> 22) + synth_logs.TWITTER_EPOCH_MS,
        "author_id": tweet["author_id"],
        "conversation_id": tweet["conversation_id"],
        "in_reply_to_user_id": tweet.get("in_reply_to_user_id"),
        "referenced_tweets": refs,
        "hashtags": [h["tag"] for h in entities.get("hashtags", [])],
        "mentions": _spans(raw_full, entities.get("mentions", []), "username"),
        "urls": _spans(raw_full, entities.get("urls", []), "url"),
        "like_count": metrics["like_count"],
        "retweet_count": metrics["retweet_count"],
        "reply_count": metrics["reply_count"],
        "quote_count": metrics["quote_count"],
        "possibly_sensitive": tweet["possibly_sensitive"],
        "edit_history_tweet_ids": tweet["edit_history_tweet_ids"],
        "source": "archive:v2",
        "retrieved_at": None,
    }


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_tweets(args: argparse.Namespace) -> list[Path]:
    """Streams tweets into files of --chunk rows (JSONL line by line; Parquet one table per file)."""
    args.out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    pairs = synth.generate_labelled_tweets(args.n, args.seed, n_users=args.users)
    if args.format == "jsonl":
        handle = None
        for i, (tweet, _) in enumerate(pairs):
            if i % args.chunk == 0:
                if handle:
                    handle.close()
                paths.append(args.out / f"tweets-{len(paths):05d}.jsonl")
                handle = paths[-1].open("w", encoding="utf-8", newline="\n")
            handle.write(json.dumps(tweet, ensure_ascii=False, sort_keys=True) + "\n")
        if handle:
            handle.close()
        return paths
    for part, batch in enumerate(_chunks((hydrated_row(t, i) for t, i in pairs), args.chunk)):
        path = args.out / f"tweets-{part:05d}.parquet"
        path.write_bytes(table_to_parquet_bytes(to_table(batch, TWEETS)))
        paths.append(path)
    return paths


def write_engagements(args: argparse.Namespace) -> list[Path]:
    args.out.mkdir(parents=True, exist_ok=True)
    n_tweets = args.tweets or max(1, args.n // 10)
    n_users = args.users or max(1, args.n // 20)
    ids = [t["id"] for t in synth.generate_tweets(n_tweets, args.seed)]
    rows = synth_logs.generate_engagements(ids, n_users, args.n, args.seed, communities=args.communities)
    paths = []
    for part, batch in enumerate(_chunks(rows, args.chunk)):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["user_id", "tweet_id", "type", "ts"])
        writer.writerows([r["user_id"], r["tweet_id"], r["type"], r["ts"]] for r in batch)
        path = args.out / f"engagements-{part:05d}.csv"
        path.write_bytes(buf.getvalue().encode("utf-8"))
        paths.append(path)
    return paths


def write_ids(args: argparse.Namespace) -> list[Path]:
    n_missing = int(round(args.n * args.missing))
    ids = [t["id"] for t in synth.generate_tweets(args.n - n_missing, args.seed)]
    status = synth_logs.unavailable_ids(ids, n_missing, args.seed)
    lines = synth_logs.generate_id_list(ids, sorted(status), args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    status_path = args.out.with_name(args.out.name + ".status.json")
    status_path.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return [args.out, status_path]


def speed(args: argparse.Namespace) -> dict:
    """Generation throughput (single process). Target: >= 50,000 API tweets/s.

    tweets_per_cpu_s divides by this process's CPU time, which a shared machine disturbs less
    than wall time.
    """
    figures = {}
    start, cpu = time.perf_counter(), time.process_time()
    ids = [t["id"] for t in synth.generate_tweets(args.n, args.seed)]
    figures["tweets_per_s"] = args.n / (time.perf_counter() - start)
    figures["tweets_per_cpu_s"] = args.n / (time.process_time() - cpu)
    start = time.perf_counter()
    for _ in synth_logs.generate_engagements(ids, max(1, args.n // 20), args.n, args.seed):
        pass
    figures["engagements_per_s"] = args.n / (time.perf_counter() - start)
    start = time.perf_counter()
    sink = 0
    for tweet in synth.generate_tweets(args.n // 4, args.seed):
        sink += len(json.dumps(tweet, ensure_ascii=False, sort_keys=True))
    figures["tweets_to_jsonl_per_s"] = (args.n // 4) / (time.perf_counter() - start)
    start = time.perf_counter()
    rows = [hydrated_row(t, i) for t, i in synth.generate_labelled_tweets(args.n // 4, args.seed)]
    to_table(rows, TWEETS)
    figures["tweets_to_arrow_rows_per_s"] = (args.n // 4) / (time.perf_counter() - start)
    figures["target_ratio_wall"] = figures["tweets_per_s"] / 50_000
    figures["target_ratio_cpu"] = figures["tweets_per_cpu_s"] / 50_000
    return figures


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/synth.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tweets = sub.add_parser("tweets", help="API-shaped JSONL or hydrated Parquet (tweets schema) files.")
    tweets.add_argument("--format", choices=("parquet", "jsonl"), default="parquet", help="Output format.")
    engagements = sub.add_parser("engagements", help="user_id,tweet_id,type,ts CSV files.")
    engagements.add_argument("--tweets", type=int, default=0, help="Tweets engaged with (default n/10).")
    engagements.add_argument("--communities", type=int, default=16, help="Planted communities.")
    ids = sub.add_parser("ids", help="An ID list with duplicates, messy and malformed lines.")
    ids.add_argument(
        "--missing",
        type=float,
        default=0.1,
        help="Share of IDs that are deleted/protected (FILE.status.json).",
    )
    speed_cmd = sub.add_parser("speed", help="Measure generation throughput.")
    for cmd, default_n in ((tweets, None), (engagements, None), (ids, None), (speed_cmd, 100_000)):
        cmd.add_argument(
            "--n", type=int, required=default_n is None, default=default_n, help="How many rows."
        )
        cmd.add_argument("--seed", type=int, default=0, help="Random seed (same seed -> same bytes).")
        if cmd is not speed_cmd:
            cmd.add_argument("--out", type=Path, required=True, help="Output folder (ids: output file).")
        if cmd in (tweets, engagements):
            cmd.add_argument("--chunk", type=int, default=100_000, help="Rows per output file.")
            cmd.add_argument(
                "--users",
                type=int,
                default=0,
                help="Authors (tweets, default 10000) or engaging users (engagements, default n/20).",
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.n < 1 or getattr(args, "chunk", 1) < 1 or getattr(args, "communities", 1) < 1:
        print("error: --n, --chunk and --communities must be >= 1", file=sys.stderr)
        return 2
    if not 0 <= getattr(args, "missing", 0) < 1:
        print("error: --missing must be in [0, 1)", file=sys.stderr)
        return 2
    if args.command == "tweets" and not args.users:
        args.users = 10_000  # synth's default, so `ids` (which uses it) names the same tweets
    start = time.perf_counter()
    if args.command == "speed":
        for key, value in speed(args).items():
            print(f"{key:28s} {value:,.2f}")
        return 0
    writer = {"tweets": write_tweets, "engagements": write_engagements, "ids": write_ids}[args.command]
    paths = writer(args)
    size = sum(p.stat().st_size for p in paths)
    elapsed = time.perf_counter() - start
    print(f"wrote {len(paths)} file(s), {size:,d} bytes, {args.n:,d} rows in {elapsed:.1f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
