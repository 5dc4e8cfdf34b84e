"""Decontamination: benchmark dev/test tweets and their copies stay out of the corpus, counted; the
50-gram overlap measure agrees with a brute-force count."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq

from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS
from twhin_data.text.contamination import BenchmarkIndex, brute_force_overlap, load_index, match_view

LONG = "Just finished the marathon in under four hours, legs are dead but the view from the bridge was worth every single step"
SHORT = "Buenos días Madrid ☀️"


def _bench(tmp_path: Path) -> Path:
    root = tmp_path / "bench" / "hashtag"
    (root / "en").mkdir(parents=True)
    (root / "es").mkdir()
    pq.write_table(to_table([{"tweet_id": "900", "text": LONG}], TWEETS).select(["tweet_id", "text"]), root / "en" / "test.parquet")
    pq.write_table(to_table([{"tweet_id": "901", "text": SHORT}], TWEETS).select(["tweet_id", "text"]), root / "es" / "validation.parquet")
    pq.write_table(to_table([{"tweet_id": "902", "text": "a training tweet is fine"}], TWEETS).select(["tweet_id", "text"]), root / "en" / "train.parquet")
    (root / "manifest.json").write_text(json.dumps({"files": []}))
    return root


def test_copies_of_a_benchmark_tweet_are_found(tmp_path):
    index = load_index([str(_bench(tmp_path))])
    assert index.match("900", "anything") == "hashtag/en/test/900"  # the same tweet
    assert index.match("1", "just FINISHED the marathon in under four hours!!! legs are dead but the view from the bridge was worth every single step http 😀") == "hashtag/en/test/900"
    one_word = LONG.replace("dead", "gone")  # one word changed: a 50-character span still matches
    assert index.match("2", one_word) == "hashtag/en/test/900"
    assert index.match("3", "@user buenos dias, Madrid!! ☀️☀️ http") is None  # an accent differs: not the same text
    assert index.match("3", "@user BUENOS días, madrid!! http") == "hashtag/es/validation/901"
    assert index.match("4", "a training tweet is fine") is None  # train splits may appear in the corpus
    assert index.match("5", "the view from the bridge") is None and match_view("#Día 1 😀") == "día"


def test_fifty_gram_overlap_equals_a_brute_force_count():
    rng = random.Random(3)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho".split()
    bench = [" ".join(rng.choice(words) for _ in range(rng.randint(12, 25))) for _ in range(60)]  # >= 50 chars
    corpus = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 25))) for _ in range(80)] + bench[::7]
    index = BenchmarkIndex()
    for i, text in enumerate(bench):
        index.add(f"b/xx/test/{i}", None, text)
    hit = set().union(*(index.matches(text) for text in corpus))
    assert len(hit) == brute_force_overlap(bench, corpus) and len(hit) >= len(bench[::7])


def test_prepare_exclude_removes_and_counts(tmp_path, capsys):
    root = _bench(tmp_path)
    rows = [
        {"tweet_id": "900", "text": LONG},  # the benchmark tweet itself
        {"tweet_id": "10", "text": LONG.upper() + " https://t.co/abc"},  # a copy with a link
        {"tweet_id": "11", "text": SHORT.replace("☀️", "!!")},  # a short copy
        {"tweet_id": "12", "text": "Completely unrelated tweet about cooking pasta tonight"},
    ]
    (tmp_path / "in").mkdir()
    pq.write_table(to_table(rows, TWEETS), tmp_path / "in" / "part-0.parquet")
    out = tmp_path / "out"
    argv = ["prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}", f"--exclude={root}", "--workers=1"]
    assert cli.main([*argv, "--log_level=WARNING"]) == 0
    assert pq.read_table(out / "corpus").column("tweet_id").to_pylist() == ["12"]
    stats = json.loads((out / "reports" / "prepare" / "stats.json").read_text())
    assert stats["rejected"]["benchmark_contamination"] == 3 and stats["balanced"]
    assert stats["contamination"] == {"hashtag/en": 2, "hashtag/es": 1}
    assert cli.main(["prepare", f"--tweets={tmp_path / 'in'}", f"--output={tmp_path / 'o2'}", f"--exclude={tmp_path}"]) == 2
    assert "not a built benchmark" in capsys.readouterr().err


def test_contamination_report_command(tmp_path, capsys):
    root = _bench(tmp_path)
    (tmp_path / "corpus").mkdir()
    corpus = [{"tweet_id": "1", "text": "prefix " + LONG}, {"tweet_id": "2", "text": "nothing to see"}]
    pq.write_table(to_table(corpus, TWEETS).select(["tweet_id", "text"]), tmp_path / "corpus" / "part-0.parquet")
    report = tmp_path / "contamination.json"
    argv = ["contamination", f"--corpus={tmp_path / 'corpus'}", f"--benchmarks={root}", f"--output={report}"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "hashtag/en/test" in printed and "100.00%" in printed
    result = json.loads(report.read_text())
    assert result["splits"]["hashtag/en/test"] == {"tweets": 1, "overlapping": 1, "share": 1.0}
    assert result["splits"]["hashtag/es/validation"]["overlapping"] == 0 and result["corpus_rows"] == 2


def test_time_window_and_placeholder_only_tweets_are_counted_filters(tmp_path, capsys):
    def snowflake(year: int) -> str:  # a tweet ID created on Jan 2 of `year`
        import datetime as dt

        ms = int(dt.datetime(year, 1, 2, tzinfo=dt.UTC).timestamp() * 1000) - 1288834974657
        return str(ms << 22)

    rows = [
        {"tweet_id": snowflake(2019), "text": "too early but a fine sentence"},
        {"tweet_id": snowflake(2021), "text": "inside the window and fine"},
        {"tweet_id": str(int(snowflake(2021)) + 1), "text": "@someone https://t.co/x 😀 123"},
        {"tweet_id": snowflake(2023), "text": "too late but a fine sentence"},
    ]
    (tmp_path / "in").mkdir()
    pq.write_table(to_table(rows, TWEETS), tmp_path / "in" / "part-0.parquet")
    out = tmp_path / "out"
    argv = ["prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}", "--start=2020-01-01", "--end=2022-07-01"]
    assert cli.main([*argv, "--workers=1", "--log_level=WARNING"]) == 0
    assert pq.read_table(out / "corpus").column("text").to_pylist() == ["inside the window and fine"]
    stats = json.loads((out / "reports" / "prepare" / "stats.json").read_text())
    assert stats["rejected"] == {"outside_time_window": 2, "too_few_words": 1} and stats["balanced"]
    assert stats["params"]["start"].startswith("2020-01-01")
    assert cli.main(["prepare", f"--tweets={tmp_path / 'in'}", f"--output={tmp_path / 'o'}", "--start=2023-01-01", "--end=2022-01-01"]) == 2
    assert "is not before --end" in capsys.readouterr().err


def test_max_per_author_keeps_the_same_n_tweets_of_a_prolific_author(tmp_path):
    words = "apple river stone cloud maple tiger ocean lemon forest candle silver garden thunder velvet".split()
    pairs = [f"{a} {b}" for a in words for b in words if a != b]  # distinct texts (view dedup is on)
    rows = [{"tweet_id": str(10**15 + i), "text": f"tweet about {pairs[i]} today", "author_id": "7"} for i in range(30)]
    rows += [{"tweet_id": str(2 * 10**15 + i), "text": f"another voice on {pairs[100 + i]}", "author_id": str(100 + i)} for i in range(5)]
    rows += [{"tweet_id": str(3 * 10**15), "text": "no author known here at all", "author_id": None}]
    (tmp_path / "in").mkdir()
    pq.write_table(to_table(rows, TWEETS), tmp_path / "in" / "part-0.parquet")
    kept = []
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        argv = ["prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}", "--max_per_author=4", f"--workers={workers}"]
        # The texts share a template (near-duplicates to MinHash): this test is about the cap.
        assert cli.main([*argv, "--dedup_buckets=3", "--near_dedup=off", "--log_level=WARNING"]) == 0
        corpus = pq.read_table(out / "corpus").to_pylist()
        kept.append(sorted(r["tweet_id"] for r in corpus))
        stats = json.loads((out / "reports" / "prepare" / "stats.json").read_text())
        assert stats["rejected"]["author_cap"] == 26 and stats["balanced"]
        assert sum(r["author_id"] == "7" for r in corpus) == 4 and len(corpus) == 10
    assert kept[0] == kept[1]  # the same four, whatever the worker count


def test_view_dedup_removes_planted_variants_and_nothing_else(tmp_path):
    """Real-looking tweets and variants of them (another link, mention, emoji, case, punctuation,
    number); every variant goes (near_duplicate), no distinct tweet does, with 1 or 2 workers.
    MinHash is off here: the one-word variant below is its case (tests/prepare/test_near_dedup.py)."""
    bases = [
        "Just finished the marathon, legs are dead but the view was worth it",
        "Nuevo video en el canal, pasen a verlo y dejen su comentario",
        "Bom dia a todos, hoje o dia vai ser longo no trabalho",
        "Wer kommt heute Abend mit ins Kino? Der neue Film soll gut sein",
        "Le match de ce soir va être incroyable, allez les bleus",
        "Can't believe it's already December, where did this year go",
    ]
    variants = [
        lambda t: t + " https://t.co/AbC123",
        lambda t: "@friend " + t,
        lambda t: t + " 😂😂",
        lambda t: t.upper(),
        lambda t: t.replace(",", "!!!"),
        lambda t: t + " 2024",
    ]
    rows, planted = [], set()
    for i, base in enumerate(bases):
        rows.append({"tweet_id": str(10**15 + 100 * i), "text": base})
        for j, make in enumerate(variants):
            tweet_id = str(10**15 + 100 * i + j + 1)
            rows.append({"tweet_id": tweet_id, "text": make(base)})
            planted.add(tweet_id)
    rows.append({"tweet_id": str(2 * 10**15), "text": "Just finished the marathon, legs are fine and the view was worth it"})
    (tmp_path / "in").mkdir()
    pq.write_table(to_table(rows, TWEETS), tmp_path / "in" / "part-0.parquet")
    kept = []
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        argv = ["prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}", f"--workers={workers}", "--dedup_buckets=4"]
        assert cli.main([*argv, "--near_dedup=off", "--log_level=WARNING"]) == 0
        ids = set(pq.read_table(out / "corpus").column("tweet_id").to_pylist())
        removed = {r["tweet_id"] for r in rows} - ids
        assert removed == planted  # precision and recall 1.0 on these variants
        stats = json.loads((out / "reports" / "prepare" / "stats.json").read_text())
        dups = stats["duplicates"]  # a variant that changed nothing (no comma to replace) is an exact copy
        assert dups["near_duplicate"] + dups.get("duplicate_text", 0) == len(planted) and stats["balanced"]
        kept.append(sorted(ids))
    assert kept[0] == kept[1]
