"""shard throughput: `twhin-data shard` vs HF datasets.map + to_parquet vs raw encode_batch_fast.

  python bench/bench_shard.py [--n 1000000] [--threads 2] [--workers 1,2] [--skip_hf]

Inputs (built once, cached under $TWHIN_BENCH_CACHE or /tmp/twhin-bench):
- a corpus of --n synthetic multilingual tweets (`twhin_data.data.synth`), 8 Parquet files;
- an XLM-R-sized Unigram tokenizer (250,002 ids): a Unigram model trained with `tokenizers` on
  100k synthetic tweets (the data supports ~44k pieces), then extended to 250,000 pieces by
  adding concatenations of two learned pieces with scores below every learned piece, plus the
  XLM-R specials (<s>=0 <pad>=1 </s>=2 <unk>=3, <mask>=250001) and template.

Each contender runs in its own process (same RAYON_NUM_THREADS = --threads), measured in the same
run, and reports wall seconds and peak RSS (its own and its children's):
- raw: `Tokenizer.encode_batch_fast` over the texts already in memory (+ reading `.ids`): the
  physical limit;
- hf: what a user would otherwise write: `datasets.load_dataset("parquet")`, `.map(batched=True)`
  with `transformers.PreTrainedTokenizerFast` (truncation, max_length=128), `.to_parquet`;
- shard: `twhin-data shard` end to end (read, tokenize, split, shard, pack, write, manifest),
  once per --workers value (passed as the command's --workers);
- with --memo_compare: raw_memo, `text.word_memo` (shard's encoder on one thread) over the same
  texts; and shard with TWHIN_WORD_MEMO=0 (the Rust batch call), whose shards must hash the same.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time

CACHE = os.environ.get("TWHIN_BENCH_CACHE", "/tmp/twhin-bench")
VOCAB = 250_002
MAX_LENGTH = 128


def corpus_dir(n: int, seed: int, files: int = 8) -> str:
    """DIR/corpus/*.parquet with `n` synthetic tweets (tweet_id, text, lang, ...), built once."""
    import pyarrow.parquet as pq

    from twhin_data.data import synth
    from twhin_data.schemas import to_table
    from twhin_data.schemas.corpus import CORPUS

    root = os.path.join(CACHE, f"shard-corpus-{n}-{seed}")
    out = os.path.join(root, "corpus")
    if os.path.isdir(out) and len(os.listdir(out)) == files:
        return root
    os.makedirs(out, exist_ok=True)
    rows = [
        {"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang") or "und", "normalizer": "bench"}
        for t in synth.generate_tweets(n, seed=seed)
    ]
    per = -(-len(rows) // files)
    for i in range(files):
        pq.write_table(
            to_table(rows[i * per : (i + 1) * per], CORPUS), os.path.join(out, f"part-{i:05d}.parquet")
        )
    return root


def pairs_dir(n: int, seed: int, per_tweet: int = 2, files: int = 4) -> str:
    """DIR (holding corpus/ of `corpus_dir(n, seed)` and pairs/): `per_tweet` x n pairs over the
    corpus's tweets, tweet a drawn power-law (hub tweets, so the per-tweet cap bites), tweet b
    uniformly, 1% naming a tweet that is not in the corpus; built once."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from twhin_data.schemas.graph import PAIRS

    root = os.path.join(CACHE, f"shard-pairs-{n}-{seed}-{per_tweet}")
    out = os.path.join(root, "pairs")
    if os.path.isdir(out) and len(os.listdir(out)) == files:
        return root
    corpus = os.path.join(corpus_dir(n, seed), "corpus")
    os.makedirs(root, exist_ok=True)
    if not os.path.exists(os.path.join(root, "corpus")):
        os.symlink(corpus, os.path.join(root, "corpus"))
    ids = pq.read_table(corpus, columns=["tweet_id"]).column("tweet_id").combine_chunks()
    rng = np.random.default_rng(seed)
    m = per_tweet * n
    a = ids.take(pa.array((len(ids) * rng.random(m) ** 3).astype(np.int64)))
    b = pc_if_dangling(ids.take(pa.array(rng.integers(0, len(ids), m))), rng.random(m) < 0.01)
    table = pa.table(
        {
            "tweet_id_a": a,
            "tweet_id_b": b,
            "score": pa.array(rng.random(m, dtype=np.float32)),
            "count": pa.array(rng.integers(1, 50, m)),
            "rank": pa.array(rng.integers(1, 20, m).astype(np.int32)),
            "method": pa.array(["cooccurrence"] * m),
        },
        schema=PAIRS,
    )
    os.makedirs(out, exist_ok=True)
    per = -(-m // files)
    for i in range(files):
        pq.write_table(table.slice(i * per, per), os.path.join(out, f"part-{i:05d}-of-{files:05d}.parquet"))
    return root


def pc_if_dangling(ids, dangling):
    """`ids` with the `dangling` positions replaced by IDs no corpus tweet has (a leading 9 and 19 digits)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    other = pc.binary_join_element_wise("9", pc.utf8_slice_codeunits(ids, 0, 18), "")
    return pc.if_else(pa.array(dangling), other, ids)


def big_tokenizer(seed: int = 5) -> str:
    """The XLM-R-sized tokenizer.json (see the module docstring), built once."""
    path = os.path.join(CACHE, f"xlmr-size-unigram-{seed}.json")
    if os.path.exists(path):
        return path
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
    import train_tokenizer as tt
    from tokenizers import Tokenizer

    trained = tt.build_tokenizer(tt.synth_texts(100_000, seed) or tt.builtin_texts(100_000, seed), VOCAB)
    data = json.loads(tt.canonical_json(trained))
    vocab = data["model"]["vocab"]
    learned = [p for p, _ in vocab[4:] if len(p) > 1]
    floor = min(s for _, s in vocab[4:])
    seen = {p for p, _ in vocab}
    rng = random.Random(seed)
    extra = []
    while len(vocab) + len(extra) < VOCAB - 1:  # -1: <mask> is an added token after the model
        piece = rng.choice(learned) + rng.choice(learned).lstrip("▁")
        if piece not in seen and len(piece) <= 24:
            seen.add(piece)
            extra.append([piece, floor - 1.0 - rng.random() * 4.0])
    vocab += sorted(extra, key=lambda x: (-x[1], x[0]))
    mask_id = len(vocab)
    for token in data["added_tokens"]:
        if token["content"] == "<mask>":
            token["id"] = mask_id
    text = json.dumps(data, ensure_ascii=False)
    tok = Tokenizer.from_str(text)
    assert tok.get_vocab_size() == VOCAB and tok.token_to_id("<mask>") == VOCAB - 1, tok.get_vocab_size()
    os.makedirs(CACHE, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _peak() -> dict:
    """Peak RSS (own, children) and CPU seconds (user+sys, own + children) of this process so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    return {
        "peak_rss_mb": round(own.ru_maxrss / 1024, 1),
        "peak_child_rss_mb": round(kids.ru_maxrss / 1024, 1),
        "cpu_total": cpu,
    }


def child(mode: str, args: argparse.Namespace) -> dict:
    import glob

    files = sorted(glob.glob(os.path.join(args.corpus, "corpus", "*.parquet")))
    if mode in ("raw", "raw_memo"):
        import pyarrow.parquet as pq
        from tokenizers import Tokenizer

        texts = [t for f in files for t in pq.read_table(f, columns=["text"]).column("text").to_pylist()]
        tok = Tokenizer.from_file(args.tokenizer)
        if mode == "raw_memo":
            from twhin_data.text.word_memo import memo_for

            memo = memo_for(tok)
            if memo is None:
                raise SystemExit(f"{args.tokenizer}: no word memo for this tokenizer's layout (text/word_memo.py)")
            encode = memo.encode
        else:
            encode = lambda batch: [e.ids for e in tok.encode_batch_fast(batch)]  # noqa: E731
        cpu0 = _peak()["cpu_total"]
        started = time.perf_counter()
        tokens = 0
        for i in range(0, len(texts), args.batch):
            ids = encode(texts[i : i + args.batch])
            tokens += sum(map(len, ids))
        seconds = time.perf_counter() - started
        return {"tweets": len(texts), "tokens": tokens, "seconds": seconds, "cpu0": cpu0, **_peak()}
    if mode == "hf":
        import datasets
        from transformers import PreTrainedTokenizerFast

        datasets.disable_progress_bars()
        cpu0 = _peak()["cpu_total"]
        started = time.perf_counter()
        tok = PreTrainedTokenizerFast(
            tokenizer_file=args.tokenizer,
            bos_token="<s>",
            eos_token="</s>",
            pad_token="<pad>",
            unk_token="<unk>",
            mask_token="<mask>",
        )
        ds = datasets.load_dataset(
            "parquet", data_files=files, split="train", cache_dir=os.path.join(args.out, "cache")
        )
        ds = ds.map(
            lambda b: tok(b["text"], truncation=True, max_length=MAX_LENGTH),
            batched=True,
            remove_columns=["text"],
        )
        ds.to_parquet(os.path.join(args.out, "hf.parquet"))
        seconds = time.perf_counter() - started
        return {"tweets": ds.num_rows, "seconds": seconds, "cpu0": cpu0, **_peak()}
    from twhin_data.runners import cli

    cpu0 = _peak()["cpu_total"]
    started = time.perf_counter()
    argv = [
        "shard",
        "--corpus",
        args.corpus,
        "--tokenizer",
        args.tokenizer,
        "--output",
        os.path.join(args.out, "shards"),
    ]
    code = cli.main([*argv, "--workers", str(args.child_workers), "--overwrite", "--log_level", "WARNING"])
    seconds = time.perf_counter() - started
    manifest = json.load(open(os.path.join(args.out, "shards", "manifest.json"), encoding="utf-8"))
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(args.out, "shards", "**", "*.parquet"), recursive=True)):
        digest.update(os.path.relpath(path, args.out).encode() + open(path, "rb").read())
    return {
        "digest": digest.hexdigest()[:16],
        "tweets": manifest["counts"]["tweets_out"],
        "tokens": manifest["counts"]["tokens"],
        "seconds": seconds,
        "rc": code,
        "cpu0": cpu0,
        **_peak(),
    }


def run_child(
    mode: str, args: argparse.Namespace, corpus: str, tokenizer: str, workers: int = 1, memo: bool = True
) -> dict:
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads), TOKENIZERS_PARALLELISM="true")
    env["TWHIN_WORD_MEMO"] = "1" if memo else "0"
    out = os.path.join(CACHE, f"bench-shard-out-{mode}-{workers}-{int(memo)}")
    shutil.rmtree(out, ignore_errors=True)  # no datasets cache hits, no leftover shards
    cmd = [sys.executable, __file__, "--child", mode, "--corpus", corpus, "--tokenizer", tokenizer]
    cmd += ["--out", out, "--batch", str(args.batch), "--child_workers", str(workers)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{mode} failed")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["cpu_s"] = result.pop("cpu_total") - result.pop("cpu0")
    shutil.rmtree(out, ignore_errors=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--n", type=int, default=20_000, help="Synthetic tweets (the issue's figure: 1000000)."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic corpus.")
    parser.add_argument("--threads", type=int, default=2, help="RAYON_NUM_THREADS for every contender.")
    parser.add_argument("--workers", default="1", help="Comma-separated --workers values for the shard runs.")
    parser.add_argument("--batch", type=int, default=4096, help="Texts per encode_batch_fast call (raw).")
    parser.add_argument(
        "--repeat", type=int, default=2, help="Runs per contender, interleaved; best time kept."
    )
    parser.add_argument("--skip_hf", action="store_true", help="Skip the datasets/transformers contender.")
    parser.add_argument(
        "--memo_compare",
        action="store_true",
        help="Also run the word memo alone (raw_memo) and shard with TWHIN_WORD_MEMO=0 (shard_wN_nomemo).",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child_workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args)))
        return 0
    t0 = time.perf_counter()
    corpus, tokenizer = corpus_dir(args.n, args.seed), big_tokenizer()
    print(f"inputs ready in {time.perf_counter() - t0:.1f}s: {corpus}, {tokenizer}", flush=True)
    contenders = [("raw", "raw", 1, True)] + ([] if args.skip_hf else [("hf", "hf", 1, True)])
    worker_counts = [int(x) for x in args.workers.split(",")]
    contenders += [(f"shard_w{w}", "shard", w, True) for w in worker_counts]
    if args.memo_compare:
        contenders += [("raw_memo", "raw_memo", 1, True)]
        contenders += [(f"shard_w{w}_nomemo", "shard", w, False) for w in worker_counts]
    results: dict[str, dict] = {}
    for rep in range(args.repeat):  # interleaved, best of --repeat: the machine is shared and noisy
        for name, mode, workers, memo in contenders:
            r = run_child(mode, args, corpus, tokenizer, workers=workers, memo=memo)
            digest = f", shards sha256 {r['digest']}" if "digest" in r else ""
            print(f"  rep {rep} {name}: {r['seconds']:.2f}s wall, {r['cpu_s']:.2f}s cpu{digest}", flush=True)
            best = results.get(name)
            if best is None or r["seconds"] < best["seconds"]:
                peak = max(r["peak_rss_mb"], best["peak_rss_mb"]) if best else r["peak_rss_mb"]
                results[name] = dict(r, peak_rss_mb=peak)
    raw_rate = results["raw"]["tweets"] / results["raw"]["seconds"]
    hf_rate = results["hf"]["tweets"] / results["hf"]["seconds"] if "hf" in results else None
    print(f"n={args.n} threads={args.threads} vocab={VOCAB} max_length={MAX_LENGTH} best of {args.repeat}")
    raw_cpu = results["raw"]["cpu_s"]
    hf_cpu = results["hf"]["cpu_s"] if "hf" in results else None
    head = f"{'contender':<12} {'wall s':>7} {'tweets/s':>9} {'vs raw':>7} {'vs hf':>6} {'cpu s':>7}"
    print(head + f" {'cpu vs raw':>10} {'cpu vs hf':>9} {'peak MB':>8} {'child MB':>8}")
    for name, r in results.items():
        rate = r["tweets"] / r["seconds"]
        vs_hf = f"{rate / hf_rate:.2f}x" if hf_rate else "-"
        cpu_hf = f"{hf_cpu / r['cpu_s']:.2f}x" if hf_cpu else "-"
        print(
            f"{name:<12} {r['seconds']:>7.2f} {rate:>9,.0f} {rate / raw_rate:>6.2f}x {vs_hf:>6} {r['cpu_s']:>7.2f}"
            f" {raw_cpu / r['cpu_s']:>9.2f}x {cpu_hf:>9} {r['peak_rss_mb']:>8.0f} {r['peak_child_rss_mb']:>8.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
