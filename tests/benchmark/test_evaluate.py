"""HITS@k helper: random baseline ~ k / 1000 on 1,000-candidate lists, ties, scores files, CLI."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.benchmark.fixtures import run_cli
from twhin_data.pipelines.benchmark_evaluate import (
    evaluate,
    hit_at_k,
    hits_at_k,
    popularity_scorer,
    random_scorer,
)
from twhin_data.schemas.benchmark import ENGAGEMENT_CANDIDATES, ENGAGEMENT_RECORDS


def _lists(n_lists: int, n_candidates: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    ids = [str(i) for i in range(n_candidates)]
    return [
        {"lang": "en", "split": "test", "user_row": i, "candidate_tweet_ids": ids, "positive_index": int(p)}
        for i, p in enumerate(rng.integers(0, n_candidates, size=n_lists))
    ]


def test_random_baseline_is_k_over_list_length():
    # 20,000 lists of 1,000: the standard error of the mean is sqrt(0.01 * 0.99 / 20000) = 0.0007;
    # seeds are fixed, so the value is reproducible and the 0.0025 tolerance (3.5 SE) cannot flake.
    lists = _lists(20_000, 1_000)
    value = hits_at_k(lists, random_scorer(seed=0), k=10)
    assert abs(value - 0.01) < 0.0025
    assert hits_at_k(lists, random_scorer(seed=0), k=10) == value  # deterministic
    # Constant scores tie everywhere: exactly k / length in expectation.
    assert hits_at_k(lists, lambda lst: np.zeros(1_000), k=10) == pytest.approx(0.01)
    assert hits_at_k(lists[:100], lambda lst: np.arange(1_000) == lst["positive_index"], k=10) == 1.0


def test_hit_at_k_with_ties():
    assert hit_at_k([5, 1, 1, 1], 0, k=1) == 1.0
    assert hit_at_k([1, 5, 1, 1], 0, k=1) == 0.0
    assert hit_at_k([1, 1, 1, 1], 0, k=2) == pytest.approx(0.5)
    assert hit_at_k([3, 5, 3, 3, 0], 0, k=2) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        hits_at_k([], random_scorer(), k=10)


def test_popularity_leaves_the_user_out():
    records = [{"lang": "en", "split": "test", "tweet_id": t} for t in ["a", "a", "b", "b", "b", "c"]]
    score = popularity_scorer(records)
    lst = {
        "lang": "en",
        "split": "test",
        "user_row": 0,
        "candidate_tweet_ids": ["a", "b", "c"],
        "positive_index": 0,
    }
    assert score(lst) == [1.0, 3.0, 1.0]


def _benchmark(tmp_path):
    root = tmp_path / "bench"
    (root / "en").mkdir(parents=True)
    lists = [
        {
            "lang": "en",
            "split": "test",
            "user_row": i,
            "candidate_tweet_ids": ["1", "2", "3", "4"],
            "positive_index": i % 4,
        }
        for i in range(8)
    ]
    pq.write_table(
        pa.Table.from_pylist(lists, ENGAGEMENT_CANDIDATES), root / "en" / "test_candidates.parquet"
    )
    records = [
        {"lang": "en", "split": "test", "user_row": i, "tweet_id": str(i % 4 + 1), "user_emb": [0.0]}
        for i in range(8)
    ]
    pq.write_table(pa.Table.from_pylist(records, ENGAGEMENT_RECORDS), root / "en" / "test.parquet")
    (root / "manifest.json").write_text(
        '{"files": [{"lang": "en", "name": "test", "path": "en/test.parquet"}]}'
    )
    return root, lists


def test_cli_with_scores_file(tmp_path, capsys):
    root, lists = _benchmark(tmp_path)
    scores = tmp_path / "scores.csv"
    rows = ["lang,user_row,tweet_id,score"]
    for lst in lists:
        for j, t in enumerate(lst["candidate_tweet_ids"]):
            rows.append(f"en,{lst['user_row']},{t},{1.0 if j == lst['positive_index'] else 0.0}")
    scores.write_text("\n".join(rows) + "\n")
    assert (
        run_cli(["benchmark", "evaluate", "--benchmark", str(root), "--scores", str(scores), "--k", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "HITS@1" in out and "popularity" in out and "model" in out
    result = evaluate(str(root), k=1, scores=str(scores))
    assert result["languages"]["en"]["model"] == 1.0
    assert result["languages"]["en"]["expected_random"] == pytest.approx(0.25)
    scores.write_text("\n".join(rows[:-1]) + "\n")  # one score missing
    assert run_cli(["benchmark", "evaluate", "--benchmark", str(root), "--scores", str(scores)]) == 2
    assert "no score for lang=en" in capsys.readouterr().err
    assert run_cli(["benchmark", "evaluate", "--benchmark", str(tmp_path / "nope")]) == 2


def test_scores_as_lists_aligned_with_candidates(tmp_path):
    root, lists = _benchmark(tmp_path)
    # Scores that rank the positive second: HITS@1 = 0, HITS@2 = 1.
    rows = []
    for lst in lists:
        scores = [0.0] * 4
        scores[lst["positive_index"]] = 0.5
        scores[(lst["positive_index"] + 1) % 4] = 0.9
        rows.append({"lang": "en", "split": "test", "user_row": lst["user_row"], "scores": scores})
    path = tmp_path / "scores.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert evaluate(str(root), k=1, scores=str(path))["languages"]["en"]["model"] == 0.0
    assert evaluate(str(root), k=2, scores=str(path))["languages"]["en"]["model"] == 1.0
