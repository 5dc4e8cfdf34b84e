"""Near-duplicate removal (prepare --near_dedup): quality on real tweets, and its cost.

    python bench/bench_near_dedup.py quality FILE [FILE ...]   # real tweets, planted variants
    python bench/bench_near_dedup.py speed FILE [FILE ...] [--n 500000] [--reps 2] [--copies 0.05]

quality: FILE holds real tweets as ``tweet_id;text;lang`` (semicolon CSV, e.g. the Twitter
language-ID evaluation set with its texts, published in the GitHub repository
DOOMinikThunder/NNLangID under ``LanguageIdentification/data/input_data/``; this repository ships
no real tweets). Distinct tweets (by match view, at least 4 words) are split in two halves by a
hash of the tweet ID; each tweet gets one planted variant (another URL, mention, emoji, case,
punctuation, one word replaced, one word added), and `twhin-data prepare` runs on tweets +
variants. A removed tweet that is not a planted variant is a false positive; a planted variant
that stays is a miss. The threshold sweep runs on the `tune` half; the default's figures are
quoted on the `report` half.

speed: `prepare --workers 1` on N tweets with --near_dedup=off and with the default, alternating,
best of --reps; and MinHash signatures per second, ours (numpy) vs rensa's RMinHash (when
installed) on the same texts. The N tweets are drawn from the words of the real tweets in FILE
(each word as often as there; 5-20 words a tweet), so they are distinct tweets with real words
and lengths, plus a share --copies of one-word variants of them. (The project's synthetic
generator joins a few fixed phrases per language: most of its tweets are near-duplicates of each
other, which measures the worst case, not a corpus.)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import pyarrow.parquet as pq  # noqa: E402

from twhin_data.core.hashing import unit_interval  # noqa: E402
from twhin_data.runners import cli  # noqa: E402
from twhin_data.schemas import to_table  # noqa: E402
from twhin_data.schemas.tweets import TWEETS  # noqa: E402
from twhin_data.text.contamination import match_view  # noqa: E402
from twhin_data.text.normalize import normalize_v1  # noqa: E402

WORDS = ["really", "maybe", "today", "again", "totally", "still", "finally"]
VARIANTS = {
    "url": lambda t, r: t + " https://t.co/" + "".join(r.choice("abcdefXYZ123") for _ in range(10)),
    "mention": lambda t, r: "@" + r.choice(["someone", "a_friend", "news_desk"]) + " " + t,
    "emoji": lambda t, r: t + " " + r.choice(["😂", "🔥🔥", "🙏", "❤️"]),
    "case": lambda t, r: t.upper(),
    "punctuation": lambda t, r: t.replace(" ", ", ", 1) + "!!",
    "one_word_replaced": lambda t, r: _replace(t, r),
    "one_word_added": lambda t, r: _add(t, r),
}


def _replace(text: str, rng: random.Random) -> str:
    words = text.split()
    at = rng.randrange(len(words))
    words[at] = rng.choice(WORDS)
    return " ".join(words)


def _add(text: str, rng: random.Random) -> str:
    words = text.split()
    words.insert(rng.randrange(len(words) + 1), rng.choice(WORDS))
    return " ".join(words)


def read_real(paths: list[str]) -> list[tuple[str, str]]:
    rows, seen = [], set()
    csv.field_size_limit(1 << 24)
    for path in paths:
        with open(path, encoding="utf-8", newline="") as fh:
            for rec in csv.reader(fh, delimiter=";"):
                if len(rec) < 3 or not rec[0].strip().isdigit():
                    continue
                tweet_id, text = rec[0].strip(), ";".join(rec[1:-1])
                view = match_view(normalize_v1(text))
                if len(view.split()) >= 4 and view not in seen and not text.startswith("RT @"):
                    seen.add(view)
                    rows.append((tweet_id, text))
    return rows


def run_prepare(rows: list[dict], near: str, workdir: str) -> tuple[set[str], dict, float]:
    inp = os.path.join(workdir, "in")
    os.makedirs(inp, exist_ok=True)
    pq.write_table(to_table(rows, TWEETS), os.path.join(inp, "part-0.parquet"))
    out = os.path.join(workdir, f"out-{near}")
    argv = ["prepare", f"--tweets={inp}", f"--output={out}", f"--near_dedup={near}", "--min_words=0"]
    wall0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main([*argv, "--log_level=WARNING", "--progress=none", "--overwrite"])
    if code:
        raise SystemExit(f"prepare failed ({code})")
    removed = set(pq.read_table(os.path.join(out, "duplicates")).column("tweet_id").to_pylist())
    stats = json.load(open(os.path.join(out, "reports", "prepare", "stats.json")))
    return removed, stats, time.perf_counter() - wall0


def score(bases: list[tuple[str, str]], near: str, seed: int) -> dict:
    rng = random.Random(seed)
    rows, planted, kinds = [], {}, list(VARIANTS)
    for i, (tweet_id, text) in enumerate(bases):
        rows.append({"tweet_id": tweet_id, "text": text})
        kind = kinds[i % len(kinds)]
        variant_id = str(int(tweet_id) + 1)  # above the original: the original stays
        rows.append({"tweet_id": variant_id, "text": VARIANTS[kind](text, rng)})
        planted[variant_id] = kind
    with tempfile.TemporaryDirectory(prefix="bench-near-") as tmp:
        removed, stats, _ = run_prepare(rows, near, tmp)  # every tweet removed as a copy of another
    true_pos = removed & set(planted)
    per_kind = {
        kind: round(sum(1 for t in true_pos if planted[t] == kind) / max(1, sum(1 for k in planted.values() if k == kind)), 3)
        for kind in kinds
    }
    false_pos = len(removed - set(planted))
    return {
        "near_dedup": near,
        "tweets": len(bases),
        "planted": len(planted),
        "removed": len(removed),
        "rejected": sum(stats["rejected"].values()),
        "precision": round(len(true_pos) / max(1, len(removed)), 4),
        "recall": round(len(true_pos) / len(planted), 4),
        "recall_per_variant": per_kind,
        "false_positives": false_pos,
        "false_positive_examples": sorted(removed - set(planted))[:5],
    }


def quality(args: argparse.Namespace) -> dict:
    real = read_real(args.files)
    halves = {"tune": [], "report": []}
    for tweet_id, text in real:
        halves["tune" if unit_interval(tweet_id, "near-dedup-split") < 0.5 else "report"].append((tweet_id, text))
    sweep = [score(halves["tune"], f"jaccard={j}", 1) for j in (0.5, 0.6, 0.7, 0.8)]
    sweep.append(score(halves["tune"], "off", 1))
    report = [score(halves["report"], near, 2) for near in ("jaccard=0.6", "off")]
    return {"real_tweets": len(real), "tune": sweep, "report": report}


def word_tweets(real: list[tuple[str, str]], n: int, copies: float, root: str) -> str:
    """`n` tweets of real words (unigram draws) plus one-word variants, as hydrate Parquet."""
    words = [w for _, text in real for w in normalize_v1(text).split() if w not in ("@user", "http")]
    rng = random.Random(11)
    rows = []
    base = 10**17
    for i in range(n):
        if rows and rng.random() < copies:
            text = _replace(rows[rng.randrange(len(rows))]["text"], rng)
        else:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 20)))
        rows.append({"tweet_id": str(base + i), "text": text, "lang": "en"})
    os.makedirs(os.path.join(root, "tweets"), exist_ok=True)
    pq.write_table(to_table(rows, TWEETS), os.path.join(root, "tweets", "part-0.parquet"))
    return root


def speed(args: argparse.Namespace) -> dict:
    from twhin_data.text.minhash import LshParams, band_keys, signatures

    root = word_tweets(read_real(args.files), args.n, args.copies, tempfile.mkdtemp(prefix="bench-near-in-"))
    runs: dict[str, list[float]] = {"off": [], "jaccard=0.6": []}
    stats: dict = {}
    for _ in range(args.reps):
        for near in runs:
            with tempfile.TemporaryDirectory(prefix="bench-near-") as out:
                argv = ["prepare", f"--tweets={root}", f"--output={out}", f"--near_dedup={near}", "--workers=1"]
                wall0 = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    code = cli.main([*argv, "--log_level=WARNING", "--progress=none"])
                runs[near].append(time.perf_counter() - wall0)
                if code:
                    raise SystemExit(f"prepare failed ({code})")
                doc = json.load(open(os.path.join(out, "reports", "prepare", "stats.json")))
                stats[near] = {"out": doc["out"], "duplicates": doc["duplicates"], "near_dedup": {k: v for k, v in doc["near_dedup"].items() if k != "examples"}}
    best = {near: min(times) for near, times in runs.items()}
    texts = [match_view(t) for t in pq.read_table(os.path.join(root, "tweets")).column("text").to_pylist()[:200_000]]
    params = LshParams()
    t0 = time.perf_counter()
    sig, _ = signatures(texts, params)
    band_keys(sig, params)
    ours = len(texts) / (time.perf_counter() - t0)
    rensa_rate = None
    try:
        import rensa

        t0 = time.perf_counter()
        for text in texts:
            m = rensa.RMinHash(num_perm=params.num_perm, seed=42)
            m.update([text[i : i + 4] for i in range(max(1, len(text) - 3))])
            m.digest()
        rensa_rate = len(texts) / (time.perf_counter() - t0)
    except ImportError:
        pass
    return {
        "tweets": args.n,
        "wall_s": {k: [round(t, 2) for t in v] for k, v in runs.items()},
        "tweets_per_s": {k: round(args.n / v) for k, v in best.items()},
        "ratio_near_vs_off": round(best["off"] / best["jaccard=0.6"], 3),
        "stats": stats,
        "signatures_per_s": {"ours_numpy": round(ours), "rensa_RMinHash": round(rensa_rate) if rensa_rate else None},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    q = sub.add_parser("quality")
    q.add_argument("files", nargs="+")
    s = sub.add_parser("speed")
    s.add_argument("files", nargs="+")
    s.add_argument("--n", type=int, default=500_000)
    s.add_argument("--copies", type=float, default=0.05)
    s.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    result = quality(args) if args.cmd == "quality" else speed(args)
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
