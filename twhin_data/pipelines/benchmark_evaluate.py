"""`twhin-data benchmark evaluate`: HITS@k on the engagement benchmark, with random and popularity baselines.

Python API::

    from twhin_data.pipelines.benchmark_evaluate import hits_at_k, load_candidates, random_scorer
    lists = load_candidates("OUT/benchmarks/engagement", "en", "test")
    hits_at_k(lists, random_scorer(seed=0), k=10)          # ~ 10 / 1000 on 1,000-candidate lists

A scorer is ``score_fn(candidate_list) -> sequence of floats`` (one per candidate, higher = more
likely engaged). Ties are broken uniformly at random *in expectation*: a list whose positive ties
with t others at the cut-off contributes the probability that it lands in the top k, so constant
scores give exactly k / (list length), and the result never depends on a tie-breaking seed.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.pipelines import flags as opts
from twhin_data.transforms.benchmark.common import rng_for
from twhin_data.transforms.benchmark.read import iter_records

NAME = "benchmark evaluate"

CandidateList = Mapping[str, object]
ScoreFn = Callable[[CandidateList], Sequence[float]]


def hit_at_k(scores: Sequence[float], positive_index: int, k: int) -> float:
    """Expected hit (0..1) of one list: 1 when the positive is surely in the top k, fractional on ties."""
    s = np.asarray(scores, dtype=np.float64)
    pos = s[positive_index]
    greater = int(np.count_nonzero(s > pos))
    ties = int(np.count_nonzero(s == pos)) - 1  # other candidates with the positive's score
    if greater >= k:
        return 0.0
    if greater + ties < k:
        return 1.0
    return (k - greater) / (ties + 1)


def hits_at_k(candidate_lists: Iterable[CandidateList], score_fn: ScoreFn, k: int = 10) -> float:
    """Mean HITS@k over `candidate_lists` (dicts with ``candidate_tweet_ids`` and ``positive_index``)."""
    total, count = 0.0, 0
    for lst in candidate_lists:
        scores = score_fn(lst)
        if len(scores) != len(lst["candidate_tweet_ids"]):
            raise ValueError(
                f"score_fn gave {len(scores)} scores for {len(lst['candidate_tweet_ids'])} candidates"
            )
        total += hit_at_k(scores, int(lst["positive_index"]), k)
        count += 1
    if count == 0:
        raise ValueError("no candidate lists to evaluate")
    return total / count


def random_scorer(seed: int = 0) -> ScoreFn:
    """Uniform random scores, seeded per list (language, split, user_row): the chance baseline."""

    def score(lst: CandidateList) -> np.ndarray:
        rng = rng_for("random-baseline", seed, lst.get("lang"), lst.get("split"), lst.get("user_row"))
        return rng.random(len(lst["candidate_tweet_ids"]))

    return score


def popularity_scorer(records: Iterable[Mapping[str, object]]) -> ScoreFn:
    """Scores a tweet by its records in the list's language and split, leaving the list's own record out.

    The positive tweet's count excludes the user being evaluated (leave-one-user-out), so the
    baseline uses only other users' engagements.
    """
    counts: Counter = Counter((r["lang"], r["split"], r["tweet_id"]) for r in records)

    def score(lst: CandidateList) -> list[float]:
        key = (lst.get("lang"), lst.get("split"))
        positive = lst["candidate_tweet_ids"][int(lst["positive_index"])]
        return [float(counts[(*key, t)] - (1 if t == positive else 0)) for t in lst["candidate_tweet_ids"]]

    return score


def _read_table(path: str):
    try:
        return files.read_parquet_table(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a readable Parquet file ({exc})") from None


def load_candidates(benchmark: str, lang: str, split: str = "test") -> list[dict]:
    """The candidate lists of one language and split (``<benchmark>/<lang>/<split>_candidates.parquet``)."""
    path = files.join(benchmark, lang, f"{split}_candidates.parquet")
    if not files.exists(path):
        raise ConfigError(f"{path} does not exist (is {benchmark} an engagement benchmark?)")
    return _read_table(path).to_pylist()


def load_records(benchmark: str, lang: str, split: str) -> list[dict]:
    path = files.join(benchmark, lang, f"{split}.parquet")
    return _read_table(path).select(["lang", "split", "tweet_id"]).to_pylist() if files.exists(path) else []


def benchmark_languages(benchmark: str) -> list[str]:
    path = files.join(benchmark, "manifest.json")
    if not files.exists(path):
        raise ConfigError(f"{benchmark}: no manifest.json (build it with `twhin-data benchmark engagement`)")
    manifest = json.loads(files.read_bytes(path))
    return sorted({f["lang"] for f in manifest["files"]})


def scores_scorer(path: str) -> ScoreFn:
    """A scorer from a file: rows ``lang, user_row, tweet_id, score`` (Parquet, CSV/TSV or JSONL), or
    ``lang, split, user_row, scores`` with one list of scores aligned with ``candidate_tweet_ids``."""
    by_tweet: dict[tuple, float] = {}
    by_list: dict[tuple, list[float]] = {}
    for path_ in files.expand_inputs(path):
        for number, row in iter_records(path_):
            if isinstance(row, Exception) or not isinstance(row, dict):
                raise ConfigError(f"{path_}: row {number} is not a record ({row})")
            try:
                if row.get("scores") is not None:
                    by_list[(str(row["lang"]), str(row.get("split", "test")), int(row["user_row"]))] = [
                        float(x) for x in row["scores"]
                    ]
                else:
                    by_tweet[(str(row["lang"]), int(row["user_row"]), str(row["tweet_id"]))] = float(
                        row["score"]
                    )
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(
                    f"{path_}: row {number}: expected lang, user_row, tweet_id, score (or scores): {exc!r}"
                ) from None

    def score(lst: CandidateList) -> list[float]:
        lang, user_row = str(lst["lang"]), int(lst["user_row"])
        listed = by_list.get((lang, str(lst["split"]), user_row))
        if listed is not None:
            return listed
        try:
            return [by_tweet[(lang, user_row, t)] for t in lst["candidate_tweet_ids"]]
        except KeyError as exc:
            raise ConfigError(
                f"{path}: no score for lang={lang} user_row={user_row} tweet_id={exc.args[0]}"
            ) from None

    return score


def evaluate(
    benchmark: str,
    *,
    split: str = "test",
    k: int = 10,
    seed: int = 0,
    languages: Sequence[str] | None = None,
    scores: str | None = None,
) -> dict:
    """HITS@k per language (and the macro average) for random, popularity and, if given, a scores file."""
    langs = list(languages) if languages else benchmark_languages(benchmark)
    scorers: dict[str, ScoreFn] = {"random": random_scorer(seed)}
    model = scores_scorer(scores) if scores else None
    result: dict = {"split": split, "k": k, "languages": {}}
    for lang in langs:
        lists = load_candidates(benchmark, lang, split)
        if not lists:
            continue
        lengths = np.array([len(x["candidate_tweet_ids"]) for x in lists], dtype=np.float64)
        row = {
            "lists": len(lists),
            "mean_candidates": float(lengths.mean()),
            "expected_random": float(np.mean(np.minimum(k, lengths) / lengths)),
        }
        scorers["popularity"] = popularity_scorer(load_records(benchmark, lang, split))
        for name, fn in scorers.items():
            row[name] = hits_at_k(lists, fn, k)
        if model is not None:
            row["model"] = hits_at_k(lists, model, k)
        result["languages"][lang] = row
    names = ["random", "popularity", *(["model"] if model else [])]
    per_lang = result["languages"].values()
    result["macro_average"] = {n: float(np.mean([r[n] for r in per_lang])) for n in names} if per_lang else {}
    return result


def render(result: dict) -> str:
    names = list(result["macro_average"])
    header = f"{'lang':<8}{'lists':>7}{'cands':>8}{'E[rand]':>9}" + "".join(f"{n:>12}" for n in names)
    lines = [f"HITS@{result['k']} on the {result['split']} lists", header]
    for lang, row in result["languages"].items():
        lines.append(
            f"{lang:<8}{row['lists']:>7}{row['mean_candidates']:>8.0f}{row['expected_random']:>9.4f}"
            + "".join(f"{row[n]:>12.4f}" for n in names)
        )
    lines.append(f"{'macro':<32}" + "".join(f"{v:>12.4f}" for v in result["macro_average"].values()))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--benchmark", required=True, help="Output directory of `twhin-data benchmark engagement`."
    )
    parser.add_argument(
        "--scores",
        default=None,
        help="Model scores: rows lang,user_row,tweet_id,score (Parquet, CSV/TSV, JSONL) or "
        "lang,split,user_row,scores (list aligned with candidate_tweet_ids). Without it only the baselines run.",
    )
    parser.add_argument(
        "--split", default="test", choices=["test", "validation"], help="Which candidate lists."
    )
    parser.add_argument("--k", type=opts.positive_int, default=10, help="Cut-off of HITS@k (paper: 10).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random baseline.")
    parser.add_argument(
        "--languages", type=opts.csv_list, default=None, help="Comma-separated languages (default: all)."
    )
    parser.add_argument("--output", default=None, help="Also write the result as JSON to this path.")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    if extra:
        raise ConfigError(f"unknown flags for benchmark evaluate: {' '.join(extra)}")
    files.check_complete(args.benchmark)
    result = evaluate(
        args.benchmark,
        split=args.split,
        k=args.k,
        seed=args.seed,
        languages=args.languages,
        scores=args.scores,
    )
    if not result["languages"]:
        raise ConfigError(f"{args.benchmark}: no {args.split} candidate lists to evaluate")
    print(render(result))
    if args.output:
        files.write_json(args.output, result)
    return 0
