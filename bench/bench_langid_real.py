"""Language ID on real tweets with gold labels: lid.176 (as prepare runs it) vs langdetect vs the old way.

    python bench/bench_langid_real.py FILE [FILE ...] [--langdetect_n 3000]

FILE: real tweets as ``tweet_id;text;lang`` (semicolon CSV with quoting, e.g. Twitter's 2015
language-identification evaluation set with the texts filled in, as published in the GitHub
repository DOOMinikThunder/NNLangID, ``LanguageIdentification/data/input_data/``), or
``LANG=PATH``: a text file of one tweet per line, all of gold language LANG (e.g. the per-language
tweet files of the multilingual sentiment set in the GitHub repository cardiffnlp/xlm-t,
``de=data/sentiment/german/test_text.txt``). This repository ships no real tweets: get the files
yourself. Gold codes are mapped as prepare maps codes (``zh-CN`` -> ``zh``, ``in`` -> ``id``);
``und`` and transliterated labels (``ta_LATN``, ...) are left out of the scores.

The tweets are split in two halves by a hash of the tweet ID: `tune` (where the threshold is
chosen) and `report` (the figures to quote), so nothing is tuned on the tweets it is judged on.
Every text goes through prepare's normalization (HTML unescaped, mentions and URLs removed) first.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from twhin_data.core.hashing import unit_interval  # noqa: E402
from twhin_data.text import langid  # noqa: E402
from twhin_data.text.normalize import normalize_v1_pair  # noqa: E402

THRESHOLDS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


# Sets published with their links already replaced by the bare word `http` (TweetEval, XLM-T).
_BARE_HTTP = re.compile(r"\bhttp\b(?!s?://)")


def read_lines(spec: str) -> list[tuple[str, str, str]]:
    """``LANG=PATH``: one tweet per line, all of language LANG; the ID is the file's name and line number.

    Such sets write every link as the bare word ``http`` and every mention as ``@user``: the link
    is turned back into a URL, so prepare's normalization drops it from the language-ID text as it
    drops the links of hydrated tweets (the mention is dropped as it is).
    """
    lang, path = spec.split("=", 1)
    gold = langid.canonical(lang)
    name = os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path)
    with open(path, encoding="utf-8", newline="\n") as handle:
        lines = handle.read().split("\n")
    return [
        (f"{name}:{i}", normalize_v1_pair(_BARE_HTTP.sub("https://t.co/x", t))[1], gold)
        for i, t in enumerate(lines, 1)
        if t.strip()
    ]


def read(paths: list[str]) -> list[tuple[str, str, str]]:
    rows, seen = [], set()
    csv.field_size_limit(1 << 24)
    for path in paths:
        if "=" in path and not os.path.exists(path):
            if not os.path.isfile(path.split("=", 1)[1]):
                raise SystemExit(f"{path}: no such file (LANG=PATH: one tweet per line)")
            rows.extend(read_lines(path))
            continue
        if not os.path.isfile(path):
            raise SystemExit(f"{path}: no such file (tweet_id;text;lang rows, or LANG=PATH)")
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.reader(handle, delimiter=";"):
                if len(row) != 3 or not row[0].isdigit() or row[0] in seen:
                    continue
                gold = langid.canonical(row[2])
                if gold == langid.UNKNOWN or "_" in gold or not row[1].strip():
                    continue
                seen.add(row[0])
                rows.append((row[0], normalize_v1_pair(row[1])[1], gold))
    return rows


def old_way(texts: list[str], min_score: float = 0.3) -> list[str]:
    """lid.176 on the normalized text itself, top-1 at 0.3 (prepare before the detection view)."""
    predict, out = langid.load_fasttext().f.predict, []
    for text in texts:
        result = predict(text.replace("\n", " ") + "\n", 1, 0.0, "replace") if langid.has_letters(text) else []
        out.append(langid.canonical(result[0][1][9:]) if result and result[0][0] >= min_score else langid.UNKNOWN)
    return out


def score(pred: list[str], gold: list[str]) -> dict:
    right = sum(p == g for p, g in zip(pred, gold, strict=True))
    und = sum(p == langid.UNKNOWN for p in pred)
    return {"n": len(gold), "accuracy": round(right / len(gold), 4), "und_share": round(und / len(gold), 4)}


def per_language(pred: list[str], gold: list[str]) -> dict:
    total, right = Counter(gold), Counter(g for p, g in zip(pred, gold, strict=True) if p == g)
    return {lang: round(right[lang] / n, 3) for lang, n in total.most_common() if n >= 20}


def confusions(pred: list[str], gold: list[str], top: int = 4) -> dict:
    """Per gold language, the most frequent wrong answers (``und`` included)."""
    wrong: dict[str, Counter] = {}
    for p, g in zip(pred, gold, strict=True):
        if p != g:
            wrong.setdefault(g, Counter())[p] += 1
    return {lang: dict(c.most_common(top)) for lang, c in sorted(wrong.items())}


def compare(texts: list[str], gold: list[str], lid176: list[str], scores: list[float]) -> dict:
    """Other detectors on the detection view, alone and overruling an unsure lid.176 when they agree."""
    from langid_others import cld2_detect, cld3_detect, lingua_detect, vote

    views = [langid.detection_view(t) for t in texts]
    started = time.process_time()
    lingua = lingua_detect(views)
    lingua_speed = len(views) / max(time.process_time() - started, 1e-9)
    cld2, cld3 = cld2_detect(views), cld3_detect(views)
    out = {"lingua": {**score(lingua, gold), "tweets_per_cpu_s": round(lingua_speed)}}
    out["cld2"], out["cld3"] = score(cld2, gold), score(cld3, gold)
    for below in (0.5, 0.7, 0.9):
        out[f"lid176, or lingua+cld3 agreeing when lid176 < {below}"] = score(vote(lid176, scores, [lingua, cld3], below), gold)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--langdetect_n", type=int, default=3000, help="langdetect is slow: at most this many report tweets.")
    parser.add_argument("--out", default=None, help="Write the figures as JSON here.")
    parser.add_argument("--languages", default=None, help="Score only these gold languages (comma-separated).")
    parser.add_argument(
        "--whole",
        action="store_true",
        help="Report on every tweet, not only the report half: for sets that are only judged, never tuned on.",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="Also lingua, CLD2, CLD3 alone and voting with lid.176 (bench/langid_others.py; needs "
        "lingua-language-detector, pycld2, cld3-py installed).",
    )
    args = parser.parse_args(argv)
    rows = read(args.files)
    if args.languages:
        wanted = set(args.languages.split(","))
        rows = [r for r in rows if r[2] in wanted]
    halves = {"tune": [], "report": []}
    for row in rows:
        halves["tune" if unit_interval(row[0], "langid-eval") < 0.5 else "report"].append(row)
    langid.load_fasttext()
    tune_texts, tune_gold = [r[1] for r in halves["tune"]], [r[2] for r in halves["tune"]]
    sweep = {}
    for threshold in THRESHOLDS:
        pred, _ = langid.FastTextDetector(threshold).detect(tune_texts)
        sweep[threshold] = score(pred, tune_gold)
    judged = rows if args.whole else halves["report"]
    texts, gold = [r[1] for r in judged], [r[2] for r in judged]
    chosen = langid.DEFAULT_MIN_SCORE["fasttext"]
    result = {
        "tweets": len(rows),
        "languages": dict(Counter(r[2] for r in rows).most_common()),
        "tune_threshold_sweep": {str(k): v for k, v in sweep.items()},
        "default_min_score": chosen,
        "judged": "every tweet" if args.whole else "the report half",
    }
    started = time.process_time()
    pred, scores = langid.FastTextDetector().detect(texts)
    per_core = len(texts) / max(time.process_time() - started, 1e-9)
    result["report"] = {
        "prepare_default (view, lid.176)": {**score(pred, gold), "tweets_per_cpu_s": round(per_core)},
        "old_way (normalized text, lid.176, 0.3)": score(old_way(texts), gold),
    }
    result["per_language_prepare_default"] = per_language(pred, gold)
    result["confusions_prepare_default"] = confusions(pred, gold)
    small = slice(0, args.langdetect_n)
    ld_pred, _ = langid.LangdetectDetector().detect(texts[small])
    result["report"][f"langdetect (view, first {len(ld_pred)})"] = score(ld_pred, gold[small])
    result["report"][f"prepare_default on the same {len(ld_pred)}"] = score(pred[small], gold[small])
    if args.compare:
        result["compare_report_half"] = compare(texts, gold, pred, scores)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
