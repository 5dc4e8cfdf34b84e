"""Benchmark builders: end-to-end speed of `benchmark hashtag` / `benchmark engagement`, plus HITS@10 baselines.

  python bench/bench_benchmark.py [--label_rows 20000] [--languages 8] [--tweets_per_lang 2000]
                                  [--engagements 20000] [--negatives 999] [--repeat 1]
                                  [--workdir DIR]

Hashtag: synthetic hydrated tweets carrying one of ~600 zipf-distributed hashtags per language
(so the top-500 cut bites), one label file per language. The baseline is the same per-row work
(read labels with the builder's row parser, dict join, normalize_v1, label removal + leakage check,
top-K, hashed split, sort, one Parquet file per language and split) as a plain single-process
Python loop, run in the same process right after, so the ratio shows what the Beam pipeline costs
or gains on this machine.

Engagement: `--tweets_per_lang` tweets in 2 languages, power-law engagements, dim-32 user
embeddings; with `--negatives 999` and >= 10,000 tweets per language the test lists have 1,000
candidates, and the random baseline's HITS@10 printed at the end should be close to 0.010.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from twhin_data.core import files
from twhin_data.core.ids import normalize_id
from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.benchmark import (
    BENCH_TWEETS,
    ENGAGEMENT_CANDIDATES,
    ENGAGEMENT_NEGATIVES,
    ENGAGEMENT_RECORDS,
    HASHTAG,
    TWEET_INPUT,
)
from twhin_data.schemas.tweets import TWEETS
from twhin_data.text.label_leakage import label_key, strip_label
from twhin_data.text.normalize import normalize_v1
from twhin_data.transforms.benchmark import engagement_steps as core
from twhin_data.transforms.benchmark.common import SPLITS, assign_splits, numeric_id_order
from twhin_data.transforms.benchmark.engagement_read import embedding_column, parse_engagement
from twhin_data.transforms.benchmark.read import LabelSource, canonical_lang, iter_records, parse_label_file

LANGS = ["en", "ja", "es", "ar", "tr", "ru", "hi", "fr", "de", "pt", "ko", "th"]
WORDS = {
    "en": "the game was great today and we love it".split(),
    "ja": "今日 は とても 楽しい 一日 でした 東京".split(),
    "es": "hoy el partido fue muy bueno para todos".split(),
    "ar": "اليوم كان المباراة رائعة جدا للجميع".split(),
    "tr": "bugün maç çok güzeldi herkes için İyi".split(),
    "ru": "сегодня матч был очень хороший для всех".split(),
    "hi": "आज का मैच बहुत अच्छा था सबके लिए".split(),
}


def _write_hashtag_inputs(root: Path, rows: int, n_langs: int, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    langs = LANGS[:n_langs]
    per_lang = rows // n_langs
    tweets, label_files = [], root / "labels"
    label_files.mkdir(parents=True)
    next_id = 1_500_000_000_000_000_000
    for lang in langs:
        words = WORDS.get(lang, WORDS["en"])
        weights = 1.0 / np.arange(1, 601) ** 1.1
        labels = rng.choice(600, size=per_lang, p=weights / weights.sum())
        lines = ["ID\tlabel"]
        for k in labels:
            text = (
                " ".join(rng.choice(words, size=8)) + f" #Tag{lang}{k} " + " ".join(rng.choice(words, size=3))
            )
            tweets.append({"tweet_id": str(next_id), "text": text, "lang": lang})
            lines.append(f"{next_id}\ttag{lang}{k}")
            next_id += 7919
        (label_files / f"{lang}_train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "hydrated" / "tweets").mkdir(parents=True)
    for i in range(4):
        pq.write_table(to_table(tweets[i::4], TWEETS), root / "hydrated" / "tweets" / f"part-{i:05d}.parquet")
    return label_files, root / "hydrated"


def baseline_hashtag(label_dir: Path, hydrated: Path, out: Path, max_labels: int = 500) -> int:
    """The same work as `benchmark hashtag` as one plain Python loop (no Beam)."""
    table = pa.concat_tables(
        pq.read_table(p, columns=["tweet_id", "text", "lang"]) for p in sorted(hydrated.rglob("*.parquet"))
    )
    texts = dict(zip(table.column("tweet_id").to_pylist(), table.column("text").to_pylist(), strict=True))
    examples, keys = [], defaultdict(set)
    labels = []
    for path in sorted(label_dir.glob("*.tsv")):
        # The builder's own row parser: delimiter and header detection, ID and label validation.
        for row in parse_label_file(LabelSource(str(path)), path.read_bytes(), "lang"):
            if "_error" not in row:
                labels.append((row["tweet_id"], row["lang"], row["label"]))
                keys[row["lang"]].add(label_key(row["label"]))
    for tweet_id, lang, label in labels:
        text = texts.get(tweet_id)
        if text is None:
            continue
        result = strip_label(normalize_v1(text), label, keys[lang])
        if result.reason is None:
            examples.append(
                {
                    "tweet_id": tweet_id,
                    "lang": lang,
                    "text": result.text,
                    "label": label,
                    "key": label_key(label),
                }
            )
    by_lang = defaultdict(list)
    for e in examples:
        by_lang[e["lang"]].append(e)
    written = 0
    for lang, rows in sorted(by_lang.items()):
        counts = Counter(e["key"] for e in rows)
        top = {
            k: i
            for i, (k, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_labels])
        }
        rows = [{**e, "label_id": top[e["key"]]} for e in rows if e["key"] in top]
        splits = assign_splits([e["tweet_id"] for e in rows], (0.8, 0.1, 0.1), 0)
        for split in ("train", "validation", "test"):
            part = sorted(
                (e for e, s in zip(rows, splits, strict=True) if s == split),
                key=lambda e: (len(e["tweet_id"]), e["tweet_id"]),
            )
            part = [{**e, "split": split} for e in part]
            files.write_parquet_atomic(str(out / lang / f"{split}.parquet"), to_table(part, HASHTAG))
            written += len(part)
    return written


def _first(rows: list) -> object:
    """The builder's pick among duplicate rows: the smallest as sorted JSON."""
    return rows[0] if len(rows) == 1 else min(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def baseline_engagement(
    engagements: Path, hydrated: Path, user_embeddings: Path, out: Path, *, negatives: int, seed: int = 0
) -> dict[str, str]:
    """The same work as `benchmark engagement` (default flags) as one plain Python loop (no Beam).

    It calls the builder's own row parser and pure steps (engagement_steps) in one process and
    writes the same per-language data files; returns {lang/name: sha256} to check the bytes.
    """
    max_tweets, per_user, fractions = 10_000, 1, (0.8, 0.1, 0.1)
    users_of: dict[str, set] = defaultdict(set)
    for _number, record in iter_records(str(engagements)):
        user, tweet = parse_engagement(record)
        if user is not None:
            users_of[tweet].add(user)
    table = pa.concat_tables(
        pq.read_table(p, columns=TWEET_INPUT.names) for p in sorted((hydrated / "tweets").glob("*.parquet"))
    )
    rows_of: dict[str, list] = defaultdict(list)
    for row in table.to_pylist():
        rows_of[row["tweet_id"]].append(row)
    by_lang: dict[str, dict] = defaultdict(dict)
    for tweet_id, users in users_of.items():
        if not rows_of.get(tweet_id):
            continue
        tweet = _first(rows_of[tweet_id])
        lang = canonical_lang(tweet.get("lang"))
        if lang is None or lang in core.NO_LANGUAGE or tweet.get("text") is None:
            continue
        text = normalize_v1(tweet["text"], mentions=tweet.get("mentions"), urls=tweet.get("urls"))
        by_lang[lang][tweet_id] = {"tweet_id": tweet_id, "text": text, "users": sorted(users, key=lambda u: (len(u), u))}
    sampled: dict[str, list] = {}
    engaged: dict[str, list] = defaultdict(list)
    for lang, tweets in by_lang.items():
        ids = sorted(tweets, key=lambda t: (len(t), t))
        selected, _dropped = core.sample_tweets(lang, ids, max_tweets, seed)
        splits = core.split_tweets(selected, fractions, seed)
        sampled[lang] = [{**tweets[t], "split": splits[t]} for t in selected]
        for t in selected:
            for user in tweets[t]["users"]:
                engaged[user].append({"tweet_id": t, "lang": lang, "split": splits[t]})
    emb_table = pq.read_table(user_embeddings)
    column = embedding_column(emb_table.schema)
    vectors = emb_table.column(column).to_pylist()
    embeddings: dict[str, list] = defaultdict(list)  # user -> embedding rows
    for i, user in enumerate(emb_table.column("user_id").to_pylist()):
        key, problem = normalize_id(user)
        if not problem:
            embeddings[key].append(i)
    lengths = Counter(len(vectors[i]) for rows in embeddings.values() for i in rows)
    dim = min(lengths.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    problems = core.embedding_problems(emb_table.column(column).cast(pa.list_(pa.float64())), dim)
    records: dict[str, list] = defaultdict(list)
    for user, engs in engaged.items():
        if not embeddings.get(user):
            continue
        rows = embeddings[user]
        row = rows[0] if len(rows) == 1 else min(rows, key=lambda i: json.dumps(vectors[i]))
        if problems[row]:
            continue
        emb = vectors[row]
        by_tweet = {e["tweet_id"]: e for e in engs}
        kept, _dropped = core.choose_records(user, sorted(by_tweet), per_user, seed)
        key, vector = core.user_key(user, seed), [float(x) for x in emb]
        for tweet_id in kept:
            e = by_tweet[tweet_id]
            exclude = sorted(t for t, o in by_tweet.items() if t != tweet_id and o["lang"] == e["lang"])
            records[e["lang"]].append({**e, "user_key": key, "user_emb": vector, "exclude": exclude})
    digests = {}

    def write(lang: str, name: str, table: pa.Table) -> None:
        digests[f"{lang}/{name}"] = files.write_parquet_atomic(str(out / lang / f"{name}.parquet"), table)["sha256"]

    for lang in sorted(sampled):
        numbered = core.number_records(records[lang])
        for split in SPLITS:
            part = [{**r, "lang": lang} for r in numbered if r["split"] == split]
            write(lang, split, to_table(part, ENGAGEMENT_RECORDS))
        pools = {s: [t["tweet_id"] for t in sampled[lang] if t["split"] == s] for s in SPLITS}
        candidates, _short = core.build_candidates(numbered, pools, negatives, lang=lang, seed=seed)
        for split in ("validation", "test"):
            part = [c for c in candidates if c["split"] == split]
            write(lang, f"{split}_candidates", to_table(part, ENGAGEMENT_CANDIDATES))
        train = [r for r in numbered if r["split"] == "train"]
        write(lang, "train_negatives", to_table(core.negative_distribution(lang, train), ENGAGEMENT_NEGATIVES))
        tweets = sampled[lang]
        tweets = [tweets[i] for i in numeric_id_order([t["tweet_id"] for t in tweets])]
        write(lang, "tweets", to_table([{**t, "lang": lang} for t in tweets], BENCH_TWEETS))
    return digests


def _write_engagement_inputs(
    root: Path, tweets_per_lang: int, n_eng: int, seed: int
) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(seed)
    tweets, ids = [], []
    for j, lang in enumerate(("en", "ja")):
        for i in range(tweets_per_lang):
            tid = str(1_600_000_000_000_000_000 + j * 10_000_000 + i)
            ids.append(tid)
            tweets.append({"tweet_id": tid, "text": f"{lang} tweet {i}", "lang": lang})
    (root / "hydrated" / "tweets").mkdir(parents=True)
    pq.write_table(to_table(tweets, TWEETS), root / "hydrated" / "tweets" / "part-00000.parquet")
    n_users = max(1, n_eng // 2)
    pop = 1.0 / np.arange(1, len(ids) + 1) ** 0.8
    tweet_idx = rng.choice(len(ids), size=n_eng, p=pop / pop.sum())
    users = rng.integers(0, n_users, size=n_eng)
    lines = ["user_id,tweet_id,type,ts"] + [
        f"{100 + u},{ids[t]},fav,2022-01-01T00:00:00Z" for u, t in zip(users, tweet_idx, strict=True)
    ]
    (root / "engagements.csv").write_text("\n".join(lines) + "\n")
    emb = rng.standard_normal((n_users, 32)).astype(np.float32)
    table = pa.table(
        {
            "user_id": [str(100 + u) for u in range(n_users)],
            "embedding": pa.array(list(emb), pa.list_(pa.float32())),
        }
    )
    pq.write_table(table, root / "users.parquet")
    return root / "engagements.csv", root / "hydrated", root / "users.parquet"


def _timed(fn) -> tuple[float, object]:
    """(wall seconds, value); the CPU seconds of this process go to _timed.cpu (in-memory FnApiRunner runs here)."""
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    _timed.cpu = time.process_time() - cpu
    return time.perf_counter() - started, value


def _alternate(pipeline, baseline, repeat: int) -> tuple[tuple, tuple]:
    """Runs pipeline(r) and baseline() alternately `repeat` times; the fastest (wall, CPU, value) of each.

    The machine is shared and noisy: alternating and keeping each side's best run compares the two
    under the same conditions (a single pair of runs moved the ratio by +-10% here).
    """
    best: list = [None, None]
    for r in range(repeat):
        for side, fn in enumerate((functools.partial(pipeline, r), baseline)):
            gc.collect()
            wall, value = _timed(fn)
            if best[side] is None or wall < best[side][0]:
                best[side] = (wall, _timed.cpu, value)
    return best[0], best[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label_rows", type=int, default=20_000, help="Label rows (hashtag).")
    parser.add_argument("--languages", type=int, default=8, help="Languages (hashtag).")
    parser.add_argument(
        "--tweets_per_lang", type=int, default=2_000, help="Tweets per language (engagement)."
    )
    parser.add_argument("--engagements", type=int, default=20_000, help="Engagement rows.")
    parser.add_argument("--negatives", type=int, default=999, help="Negatives per candidate list.")
    parser.add_argument(
        "--repeat", type=int, default=1, help="Alternate each builder and its baseline N times; keep the fastest."
    )
    parser.add_argument(
        "--workdir", default=None, help="Keep the inputs and outputs here (default: a temp dir, removed)."
    )
    args = parser.parse_args(argv)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench-benchmark-"))
    try:
        label_dir, hydrated = _write_hashtag_inputs(root / "h", args.label_rows, args.languages, seed=0)
        argv_h = [
            "benchmark",
            "hashtag",
            "--labels",
            str(label_dir),
            "--tweets",
            str(hydrated),
            "--output",
            str(root / "h" / "out"),
        ]
        (t_beam, c_beam, rc), (t_base, c_base, written) = _alternate(
            lambda r: cli.main([*argv_h, "--log_level", "WARNING", *(["--overwrite"] if r else [])]),
            lambda: baseline_hashtag(label_dir, hydrated, root / "h" / "base"),
            args.repeat,
        )
        if rc != 0:
            return rc
        n = args.label_rows
        print(f"hashtag: {n} label rows, {args.languages} languages, {written} examples kept")
        print(
            f"  beam pipeline (FnApiRunner): {t_beam:.2f} s wall, {c_beam:.2f} CPU-s = {n / t_beam:,.0f} rows/s wall"
        )
        print(
            f"  plain-Python baseline:       {t_base:.2f} s wall, {c_base:.2f} CPU-s = {n / t_base:,.0f} rows/s wall"
        )
        print(
            f"  ratio pipeline/baseline throughput: {t_base / t_beam:.2f}x wall, {c_base / c_beam:.2f}x CPU"
        )

        eng, hyd, users = _write_engagement_inputs(root / "e", args.tweets_per_lang, args.engagements, seed=0)
        out_e = root / "e" / "out"
        argv_e = [
            "benchmark",
            "engagement",
            "--engagements",
            str(eng),
            "--tweets",
            str(hyd),
            "--user_embeddings",
            str(users),
        ]
        argv_e += ["--output", str(out_e), "--negatives", str(args.negatives), "--log_level", "WARNING"]
        (t_eng, c_eng, rc), (t_base, c_base, digests) = _alternate(
            lambda r: cli.main([*argv_e, *(["--overwrite"] if r else [])]),
            lambda: baseline_engagement(eng, hyd, users, root / "e" / "base", negatives=args.negatives),
            args.repeat,
        )
        if rc != 0:
            return rc
        manifest = json.loads((out_e / "manifest.json").read_text())
        produced = {f["path"].removesuffix(".parquet"): f["sha256"] for f in manifest["files"]}
        same = digests == {k: v for k, v in produced.items() if k in digests} and len(digests) == len(produced)
        print(f"engagement: {args.engagements} engagement rows, 2 x {args.tweets_per_lang} tweets")
        rate = args.engagements / t_eng
        print(
            f"  beam pipeline (FnApiRunner): {t_eng:.2f} s wall, {c_eng:.2f} CPU-s = {rate:,.0f} rows/s wall"
        )
        print(
            f"  plain-Python baseline:       {t_base:.2f} s wall, {c_base:.2f} CPU-s = "
            f"{args.engagements / t_base:,.0f} rows/s wall; same data files: {'yes' if same else 'NO'}"
        )
        print(f"  ratio pipeline/baseline throughput: {t_base / t_eng:.2f}x wall, {c_base / c_eng:.2f}x CPU")
        from twhin_data.pipelines.benchmark_evaluate import evaluate, render

        t_eval, result = _timed(lambda: evaluate(str(out_e), k=10))
        print(render(result))
        print(f"  evaluation of random + popularity baselines: {t_eval:.2f} s")
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
