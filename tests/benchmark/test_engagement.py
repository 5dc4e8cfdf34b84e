"""`twhin-data benchmark engagement`: records, candidate lists, negatives, counts, determinism."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.benchmark.fixtures import (
    SAMPLE,
    data_digests,
    emb_table,
    errors,
    hydrate_sample,
    read_rows,
    run_cli,
    stats,
    tweet,
    write_tweets,
)
from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS, UNAVAILABLE

#: Whole commands end to end: not in the fast suite (-m "not slow").
pytestmark = pytest.mark.slow

STAGE = "benchmark_engagement"
N_TWEETS = 60  # per language


def _tweets() -> list[dict]:
    rows = [tweet(str(1000 + i), f"english tweet number {i} #x", "en") for i in range(N_TWEETS)]
    rows += [tweet(str(2000 + i), f"tweet bahasa nomor {i}", "in") for i in range(N_TWEETS)]  # in -> id
    rows += [tweet("3000", "no language", "und")]
    return rows


def _engagements() -> list[str]:
    lines = ["user_id,tweet_id,type,ts"]
    for u in range(120):
        for j in range(3):  # each user engages 3 tweets of one language
            base = 1000 if u % 2 == 0 else 2000
            lines.append(f"{10 + u},{base + (u * 7 + j * 13) % N_TWEETS},fav,2022-01-01T00:00:00Z")
    lines.append("10,1000,reply,2022-01-01T00:00:01Z")  # same pair, another type: a duplicate
    lines.append("10,1000,fav,2022-01-01T00:00:01Z")
    lines.append("10,9999,fav,2022-01-01T00:00:00Z")  # tweet not hydrated
    lines.append("12,9998,fav,2022-01-01T00:00:00Z")  # tweet hydrate settled as not_found
    lines.append("11,3000,fav,2022-01-01T00:00:00Z")  # tweet language und
    lines.append("500,1001,fav,2022-01-01T00:00:00Z")  # user without an embedding
    lines.append("501,1002,fav,2022-01-01T00:00:00Z")  # user with a wrong-length embedding
    lines.append("1.2E+18,1003,fav,x")  # malformed user
    lines.append("12,abc,fav,x")  # malformed tweet
    return lines


@pytest.fixture
def inputs(tmp_path: Path) -> dict:
    hydrated = write_tweets(tmp_path / "hydrated", _tweets())
    (hydrated / "unavailable").mkdir()
    missing = to_table([{"tweet_id": "9998", "status": "not_found"}], UNAVAILABLE)
    pq.write_table(missing, hydrated / "unavailable" / "part-00000-of-00001.parquet")
    eng = tmp_path / "engagements.csv"
    eng.write_text("\n".join(_engagements()) + "\n")
    embs = [(str(10 + u), [float(u), 1.0, 0.5, -1.0]) for u in range(120)] + [("501", [1.0, 2.0])]
    pq.write_table(emb_table(embs), tmp_path / "users.parquet")
    return {"engagements": str(eng), "tweets": str(hydrated), "embeddings": str(tmp_path / "users.parquet")}


def _run(inputs: dict, out: Path, *extra: str) -> int:
    argv = ["benchmark", "engagement", "--engagements", inputs["engagements"], "--tweets", inputs["tweets"]]
    argv += ["--user_embeddings", inputs["embeddings"], "--output", str(out), "--negatives", "9"]
    return run_cli([*argv, *extra])


def test_counts_add_up(inputs, tmp_path):
    out = tmp_path / "bench"
    assert _run(inputs, out) == 0
    s = stats(out, STAGE)
    assert s["in"] == len(_engagements()) - 1
    assert all(s["checks"].values())
    assert s["in"] == s["out"] + sum(s["rejected"].values()) + s["duplicates"]
    r = s["rejected"]
    assert r["malformed_user_scientific_notation"] == 1 and r["malformed_invalid_id"] == 1
    assert r["tweet_not_hydrated"] == 1 and r["tweet_no_language"] == 1 and r["tweet_unavailable"] == 1
    assert r["user_embedding_missing"] == 1 and r["bad_user_embedding"] == 1
    assert s["out"] == 120  # one record per user with an embedding (privacy rule)
    assert r["user_already_used"] == s["steps"]["distinct_pairs"] - 120 - 5
    assert set(s["per_language"]) == {"en", "id"}
    assert {e["error_type"] for e in errors(out, STAGE)} >= {"tweet_not_hydrated", "bad_user_embedding"}


def test_records_splits_and_candidates(inputs, tmp_path):
    out = tmp_path / "bench"
    assert _run(inputs, out) == 0
    engaged = defaultdict(set)
    for line in _engagements()[1:]:
        user, tweet_id = line.split(",")[:2]
        engaged[user].add(tweet_id)
    all_embs = []
    for lang in ("en", "id"):
        tweets = {t["tweet_id"]: t for t in read_rows(out / lang / "tweets.parquet")}
        assert all(t["lang"] == lang for t in tweets.values())
        records = {}
        for split in ("train", "validation", "test"):
            for rec in read_rows(out / lang / f"{split}.parquet"):
                assert tweets[rec["tweet_id"]]["split"] == split  # records follow their tweet
                records[rec["user_row"]] = rec
                all_embs.append(tuple(rec["user_emb"]))
        assert sorted(records) == list(range(len(records)))
        for split in ("validation", "test"):
            pool = {t for t, row in tweets.items() if row["split"] == split}
            for cand in read_rows(out / lang / f"{split}_candidates.parquet"):
                rec = records[cand["user_row"]]
                ids = cand["candidate_tweet_ids"]
                assert ids[cand["positive_index"]] == rec["tweet_id"]
                assert len(ids) == len(set(ids)) == min(10, len(pool) - _excluded(rec, engaged, pool))
                assert set(ids) <= pool  # same language and split
        negatives = read_rows(out / lang / "train_negatives.parquet")
        assert math.isclose(sum(n["probability"] for n in negatives), 1.0)
        counts = Counter(rec["tweet_id"] for rec in records.values() if rec["split"] == "train")
        assert {n["tweet_id"]: n["count"] for n in negatives} == dict(counts)
        a, b = negatives[0], negatives[-1]
        assert math.isclose(a["probability"] / b["probability"], (a["count"] / b["count"]) ** 0.75)
    assert len(all_embs) == len(set(all_embs)) == 120  # each user embedding appears once


def _excluded(rec: dict, engaged: dict, pool: set) -> int:
    """How many pool tweets the record's user engaged besides its positive (found via its embedding)."""
    user = str(10 + int(rec["user_emb"][0]))
    return len((engaged[user] - {rec["tweet_id"]}) & pool)


def test_deterministic_across_runs_and_runners(inputs, tmp_path):
    # Two runs, one in-memory and one with 2 worker processes: the same bytes.
    a, c = tmp_path / "a", tmp_path / "c"
    assert _run(inputs, a) == 0
    mp = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert _run(inputs, c, *mp) == 0
    assert data_digests(a) == data_digests(c)
    splits = {}
    for lang in ("en", "id"):
        for t in read_rows(a / lang / "tweets.parquet"):
            assert splits.setdefault(t["tweet_id"], t["split"]) == t["split"]


def test_max_tweets_per_lang_and_short_lists(inputs, tmp_path):
    out = tmp_path / "bench"
    assert _run(inputs, out, "--max_tweets_per_lang", "20", "--negatives", "999") == 0
    s = stats(out, STAGE)
    assert all(s["checks"].values())
    assert all(v["tweets"] <= 20 for v in s["per_language"].values())
    assert s["rejected"]["tweet_not_sampled"] > 0
    lists = s["per_language"]["en"]["test_candidates"] + s["per_language"]["en"]["validation_candidates"]
    lists += s["per_language"]["id"]["test_candidates"] + s["per_language"]["id"]["validation_candidates"]
    assert s["short_candidate_lists"] == lists  # 999 negatives cannot exist among <= 20 tweets


def test_bundled_sample(tmp_path):
    hydrated = hydrate_sample(tmp_path / "hydrated")
    out = tmp_path / "bench"
    argv = ["benchmark", "engagement", "--engagements", str(SAMPLE / "sample_engagements.csv")]
    argv += ["--tweets", str(hydrated), "--user_embeddings", str(SAMPLE / "sample_user_embeddings.parquet")]
    argv += ["--output", str(out), "--negatives", "99", "--tokenizer", str(SAMPLE / "tokenizer.json")]
    assert run_cli(argv) == 0
    s = stats(out, STAGE)
    assert all(s["checks"].values()) and s["out"] > 100
    tweets = read_rows(out / "en" / "tweets.parquet")
    assert tweets and all(t["input_ids"][0] == 0 for t in tweets)
    card = (out / "README.md").read_text()
    assert "config_name: en_candidates" in card
    assert json.loads((out / "manifest.json").read_text())["files"]


def test_user_mistakes_are_one_line_errors(inputs, tmp_path, capsys):
    bad = tmp_path / "bad.parquet"
    pq.write_table(emb_table([("1", [1.0])]).drop(["user_id"]), bad)
    inputs = {**inputs, "embeddings": str(bad)}
    assert _run(inputs, tmp_path / "out") == 2
    assert "user embeddings need user_id" in capsys.readouterr().err
    assert _run({**inputs, "engagements": str(tmp_path / "none*.csv")}, tmp_path / "out") == 2


@pytest.mark.parametrize(
    "columns, message",
    [
        ({"id": ["1"], "text": ["hi"], "lang": ["en"]}, "missing column 'tweet_id'"),
        ({"tweet_id": ["1"], "text": ["hi"], "lang": ["en"], "mentions": [["@a"]]}, "column 'mentions' has type"),
    ],
)
def test_tweet_files_of_another_shape_are_one_line_errors(inputs, tmp_path, capsys, columns, message):
    """Checked on every file's footer before the run, for both builders (no traceback from a worker)."""
    import pyarrow as pa

    (tmp_path / "odd" / "tweets").mkdir(parents=True)
    pq.write_table(pa.table(columns), tmp_path / "odd" / "tweets" / "part-0.parquet")
    assert _run({**inputs, "tweets": str(tmp_path / "odd")}, tmp_path / "out") == 2
    assert message in capsys.readouterr().err
    labels = tmp_path / "en_train.tsv"
    labels.write_text("ID\tlabel\n1\tx\n")
    argv = ["benchmark", "hashtag", "--labels", str(labels), "--tweets", str(tmp_path / "odd")]
    assert run_cli([*argv, "--output", str(tmp_path / "out_h")]) == 2
    assert message in capsys.readouterr().err


def test_awkward_inputs_take_the_careful_paths(tmp_path):
    """Duplicate, NaN and non-list user embeddings over several files, a tweet hydrated twice and a tweet
    file without mentions/urls: counted, dead-lettered with the reason, same bytes whatever the file order."""
    import pyarrow as pa

    tweets_dir = tmp_path / "hydrated" / "tweets"
    tweets_dir.mkdir(parents=True)
    ids = [str(1000 + i) for i in range(20)]
    bare = pa.table({"tweet_id": ids, "text": [f"tweet number {i}" for i in range(20)], "lang": ["en"] * 20})
    pq.write_table(bare, tweets_dir / "part-00000.parquet")  # no mentions/urls columns
    pq.write_table(to_table([tweet("1000", "tweet number 0", "en")], TWEETS), tweets_dir / "part-00001.parquet")
    lines = ["user_id,tweet_id,type,ts"] + [f"{10 + u},{ids[u % 20]},fav,x" for u in range(20)]
    lines += ["40,1001,fav,x", "41,1002,fav,x", "42,1003,fav,x"]
    (tmp_path / "eng.csv").write_text("\n".join(lines) + "\n")
    good = [(str(10 + u), [float(u), 1.0, 0.5, -1.0]) for u in range(20)]

    def embeddings(directory: Path, names: tuple[str, str, str]) -> str:
        directory.mkdir()
        pq.write_table(emb_table([*good, ("40", [1.0, 1.0, 1.0, 1.0])]), directory / names[0])
        doubles = pa.array([[0.5, 0.5, 0.5, 0.5], [float("nan"), 0.0, 0.0, 0.0]], pa.list_(pa.float64()))
        pq.write_table(pa.table({"user_id": ["40", "41"], "user_emb": doubles}), directory / names[1])
        pq.write_table(pa.table({"user_id": ["42"], "embedding": ["0.1 0.2 0.3 0.4"]}), directory / names[2])
        return str(directory)

    digests = []
    for name, names in (("a", ("1.parquet", "2.parquet", "3.parquet")), ("b", ("3.parquet", "1.parquet", "2.parquet"))):
        out = tmp_path / f"out_{name}"
        argv = ["benchmark", "engagement", "--engagements", str(tmp_path / "eng.csv"), "--negatives", "5"]
        argv += ["--tweets", str(tmp_path / "hydrated"), "--output", str(out)]
        assert run_cli([*argv, "--user_embeddings", embeddings(tmp_path / f"emb_{name}", names)]) == 0
        s = stats(out, STAGE)
        assert all(s["checks"].values()) and s["out"] == 21  # users 10..29 and 40
        assert s["rejected"]["bad_user_embedding"] == 2 and s["duplicate_user_embeddings"] == 1
        reasons = {e["message"] for e in errors(out, STAGE) if e["error_type"] == "bad_user_embedding"}
        assert reasons == {"embedding holds NaN or infinity", "embedding is not a list of numbers"}
        records = [r for split in ("train", "validation", "test") for r in read_rows(out / "en" / f"{split}.parquet")]
        assert [0.5] * 4 in [list(r["user_emb"]) for r in records]  # the smallest of user 40's two vectors
        assert [1.0] * 4 not in [list(r["user_emb"]) for r in records]
        digests.append(data_digests(out))
    assert digests[0] == digests[1]
