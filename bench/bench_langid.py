"""Language-ID benchmark: speed (tweets/s per core) and accuracy of fasttext vs langdetect vs x.

    python bench/bench_langid.py --n 20000 --langdetect_n 2000 --out bench/out/langid
    python bench/bench_langid.py --recorded DIR   # also: speed on real tweets of recorded API pages

Speed: single process, one core, on normalized synthetic tweets (twhin_data.data.synth) with
mentions/URLs removed (what prepare feeds the detector); model loading is excluded. With
--recorded, also on the real tweets of recorded X API responses (VCR cassettes as tweepy's test
suite records them: `*.json` v1.1 pages and `*.yaml` v2 pages, gzip bodies included), normalized
the same way and repeated to --n.
Accuracy: (a) the bundled labelled texts (twhin_data/data/sample_texts_labelled.jsonl, 17
languages; X's lang is not part of that set), (b) synthetic tweets with their true language
(all three backends; `x` uses the generator's simulated X `lang`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from twhin_data.text import langid  # noqa: E402
from twhin_data.text.normalize import normalize_v1_pair  # noqa: E402


def synthetic(n: int, seed: int = 7) -> tuple[list[str], list[str], list[str]]:
    from twhin_data.data import synth

    texts, truth, x = [], [], []
    for tweet, info in synth.generate_labelled_tweets(n, seed=seed):
        text = (info.original or tweet)["text"] if info.kind == "retweet" else tweet["text"]
        texts.append(normalize_v1_pair(text)[1])
        truth.append(info.true_lang)
        x.append(tweet.get("lang"))
    return texts, truth, x


def labelled() -> tuple[list[str], list[str]]:
    path = os.path.join(os.path.dirname(HERE), "twhin_data", "data", "sample_texts_labelled.jsonl")
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    return [normalize_v1_pair(r["text"])[1] for r in rows], [r["lang"] for r in rows]


def recorded(folder: str) -> list[str]:
    """Normalized texts of every tweet in the recorded API responses under `folder`."""
    import gzip

    import yaml

    bodies = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".json"):
            bodies += [i["response"]["body"]["string"] for i in json.load(open(path))["interactions"]]
        elif name.endswith(".yaml"):
            for interaction in yaml.safe_load(open(path))["interactions"]:
                raw = interaction["response"]["body"]["string"]
                bodies.append(gzip.decompress(raw) if isinstance(raw, bytes) else raw)
    texts = []
    for raw in bodies:
        try:
            body = json.loads(raw)
        except ValueError:
            continue
        if isinstance(body, dict):
            body = body.get("statuses") or body.get("data") or [body]
        for tweet in body if isinstance(body, list) else [body]:
            text = isinstance(tweet, dict) and (tweet.get("full_text") or tweet.get("text"))
            if text:
                texts.append(normalize_v1_pair(text)[1])
    return texts


def speed(name: str, texts: list[str]) -> float:
    detector = langid.get_detector(name)
    langid.warm(name)
    detector.detect(texts[:10])
    started = time.process_time()
    detector.detect(texts)
    return len(texts) / max(time.process_time() - started, 1e-9)


def accuracy(name: str, texts: list[str], truth: list[str], x: list[str] | None) -> float:
    langs, _ = langid.get_detector(name).detect(texts, x)
    return sum(a == b for a, b in zip(langs, truth, strict=True)) / len(truth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="Synthetic tweets for fasttext speed/accuracy.")
    parser.add_argument("--langdetect_n", type=int, default=2_000, help="Subset for langdetect (it is slow).")
    parser.add_argument(
        "--out", default=os.path.join(HERE, "out", "langid"), help="Output prefix (.json, .md)."
    )
    parser.add_argument("--recorded", help="A folder of recorded X API responses (VCR cassettes).")
    args = parser.parse_args(argv)
    texts, truth, x = synthetic(args.n)
    small = slice(0, args.langdetect_n)
    lab_texts, lab_truth = labelled()
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "speed_tweets_per_cpu_s": {
            "fasttext": round(speed("fasttext", texts)),
            "langdetect": round(speed("langdetect", texts[small])),
            "fasttext_same_subset": round(speed("fasttext", texts[small])),
        },
        "accuracy_labelled_texts": {
            "n": len(lab_truth),
            "fasttext": round(accuracy("fasttext", lab_texts, lab_truth, None), 4),
            "langdetect": round(accuracy("langdetect", lab_texts, lab_truth, None), 4),
            "x": None,
        },
        "accuracy_synthetic_tweets": {
            "n": args.langdetect_n,
            "fasttext": round(accuracy("fasttext", texts[small], truth[small], x[small]), 4),
            "langdetect": round(accuracy("langdetect", texts[small], truth[small], x[small]), 4),
            "x": round(accuracy("x", texts[small], truth[small], x[small]), 4),
        },
    }
    speeds = result["speed_tweets_per_cpu_s"]
    if args.recorded:
        real = recorded(args.recorded)
        if not real:
            raise SystemExit(f"--recorded {args.recorded}: no tweets in its .json/.yaml cassettes")
        result["recorded_tweets"] = len(real)
        speeds["fasttext_recorded"] = round(speed("fasttext", (real * (args.n // len(real) + 1))[: args.n]))
    result["speed_ratio_fasttext_vs_langdetect"] = round(
        speeds["fasttext_same_subset"] / speeds["langdetect"], 1
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".json", "w") as handle:
        json.dump(result, handle, indent=2)
    acc_l, acc_s = result["accuracy_labelled_texts"], result["accuracy_synthetic_tweets"]
    real_line = []
    if args.recorded:
        real_line.append(
            f"fasttext on the {result['recorded_tweets']} recorded real tweets (repeated to "
            f"{args.n}): {speeds['fasttext_recorded']:,} tweets/s per core"
        )
    md = (
        "\n".join(
            [
                f"Language ID, {result['machine']}, {result['date']} (tweets per CPU-second, one process)",
                "",
                "| backend | tweets/s per core | accuracy, labelled texts (n={}) | accuracy, synthetic tweets (n={}) |".format(
                    acc_l["n"], acc_s["n"]
                ),
                "|---|---|---|---|",
                f"| fasttext (lid.176.ftz) | {speeds['fasttext']:,} | {acc_l['fasttext']:.3f} | {acc_s['fasttext']:.3f} |",
                f"| langdetect (seeded) | {speeds['langdetect']:,} | {acc_l['langdetect']:.3f} | {acc_s['langdetect']:.3f} |",
                f"| x (API lang) | n/a | n/a (no X lang in the set) | {acc_s['x']:.3f} |",
                "",
                f"fasttext / langdetect speed on the same {args.langdetect_n} tweets: "
                f"x{result['speed_ratio_fasttext_vs_langdetect']}",
            ]
            + real_line
        )
        + "\n"
    )
    with open(args.out + ".md", "w") as handle:
        handle.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
