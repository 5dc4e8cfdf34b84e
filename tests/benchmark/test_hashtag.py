"""`twhin-data benchmark hashtag`: leakage removal, counts that add up, deterministic splits, card."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.benchmark.fixtures import (
    SAMPLE,
    data_digests,
    errors,
    hydrate_sample,
    read_rows,
    run_cli,
    stats,
    tweet,
    write_tweets,
)
from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS as TWEETS_SCHEMA
from twhin_data.schemas.tweets import UNAVAILABLE
from twhin_data.text.label_leakage import contains_label_hashtag, find_hashtags, label_key

#: Whole commands end to end: not in the fast suite (-m "not slow").
pytestmark = pytest.mark.slow

STAGE = "benchmark_hashtag"

TWEETS = [
    tweet("101", "Great match today #Football", "en"),
    tweet("102", "#FOOTBALL is back, football fans!", "en"),
    tweet("103", "No hashtag here, just football", "en"),  # label_not_in_text
    tweet("104", "#football #Music mix", "en"),  # other_label_hashtag
    tweet("105", "#Music", "en"),  # empty_after_removal
    tweet("106", "Live now #music &amp; more", "en"),
    tweet("107", "Concert tonight #Music", "en"),
    tweet("108", "Sunny beach day #Travel", "en"),  # label outside the top 2
    tweet("201", "İstanbul bugün çok güzel #İSTANBUL", "tr"),
    tweet("202", "Boğaz manzarası #istanbul #ıstanbul", "tr"),
    tweet("301", "今日は最高#東京 楽しかった", "ja"),
    tweet("302", "東京タワー ＃東京", "ja"),
    tweet("401", "Отличный матч #Футбол", "ru"),
    tweet("501", "مباراة رائعة #كرة_القدم اليوم", "ar"),
    tweet("601", "आज का मैच #क्रिकेट शानदार", "hi"),
    tweet("701", "¡Qué golazo! #Fútbol", "es"),
    tweet("901", None, "en"),  # text_null
]

EN_LABELS = "ID\tlabel\n101\tFootball\n102\tfootball\n102\tFootball\n103\tfootball\n104\tFootball\n105\tMusic\n106\tmusic\n107\t#Music\n108\tTravel\n1.23E+18\tFootball\n\t\nabc\tx\n999\tFootball\n998\tFootball\n901\tFootball\n"
OTHER_LABELS = (
    "ID,label,lang\n201,İstanbul,tr\n202,Istanbul,tr\n301,東京,ja\n302,東京,ja\n401,Футбол,ru\n501,كرة_القدم,ar\n"
    "601,क्रिकेट,hi\n701,fútbol,es\n101,Music,en\n"
)


@pytest.fixture
def inputs(tmp_path: Path) -> dict:
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "en_train.tsv").write_text(EN_LABELS, encoding="utf-8")
    (labels / "multi.csv").write_text(OTHER_LABELS, encoding="utf-8")
    hydrated = write_tweets(tmp_path / "hydrated", TWEETS)
    (hydrated / "unavailable").mkdir()
    missing = to_table([{"tweet_id": "998", "status": "not_found"}], UNAVAILABLE)
    pq.write_table(missing, hydrated / "unavailable" / "part-00000-of-00001.parquet")
    return {"labels": str(labels), "tweets": str(hydrated)}


def _run(inputs: dict, out: Path, *extra: str) -> int:
    argv = ["benchmark", "hashtag", "--labels", inputs["labels"], "--tweets", inputs["tweets"]]
    return run_cli([*argv, "--output", str(out), "--max_labels_per_lang", "2", *extra])


def _all_rows(out: Path) -> list[dict]:
    return [
        r
        for p in sorted(out.glob("*/*.parquet"))
        if p.stem in ("train", "validation", "test")
        for r in read_rows(p)
    ]


def test_counts_add_up_and_every_reason_is_counted(inputs, tmp_path):
    out = tmp_path / "bench"
    assert _run(inputs, out) == 0
    s = stats(out, STAGE)
    assert s["in"] == EN_LABELS.count("\n") - 1 + OTHER_LABELS.count("\n") - 1 - 1  # minus the blank row
    assert s["checks"] == {k: True for k in s["checks"]}
    assert s["in"] == s["out"] + sum(s["rejected"].values()) + s["duplicates"]
    assert s["duplicates"] == 1
    assert s["rejected"] == {
        "conflicting_label": 1,  # 101 is Football in en_train.tsv and Music in multi.csv
        "empty_after_removal": 1,
        "label_not_in_text": 1,
        "label_not_in_top_k": 1,
        "malformed_invalid_id": 1,  # "abc" (the blank line is no record)
        "malformed_scientific_notation": 1,
        "other_label_hashtag": 1,
        "text_null": 1,
        "not_hydrated": 1,  # 999: in no hydrate output
        "unavailable": 1,  # 998: hydrate said not_found
    }
    assert s["out"] == 12
    assert s["steps"]["leaked"]["other_label_hashtag"] == 1
    by_type = sorted(e["error_type"] for e in errors(out, STAGE))
    assert len(by_type) == sum(s["rejected"].values())
    html = (out / "reports" / STAGE / "report.html").read_text()
    assert "Counts at each step" in html and "other_label_hashtag" in html


def test_rows_cross_the_shuffles_as_spill_files_which_are_removed(inputs, tmp_path, monkeypatch):
    """The join's and the per-language write's rows go through Arrow IPC files under .partial/.spill
    (only references are shuffled); the card step removes them with the staging folder."""
    from twhin_data.core import spill
    from twhin_data.transforms.benchmark import common

    written: list[str] = []
    real_add = spill.SliceWriter.add

    def add(self, key, table):
        written.append(self._path)
        return real_add(self, key, table)

    monkeypatch.setattr(spill.SliceWriter, "add", add)  # FnApiRunner runs the DoFns in this process
    out = tmp_path / "bench"
    assert _run(inputs, out) == 0
    folder = common.spill_folder(str(out))
    assert written and all(path.startswith(folder) for path in written)
    assert any(os.path.basename(p).startswith("examples-") for p in written)  # the Resolve -> write hand-off
    assert len({p for p in written if not os.path.basename(p).startswith("examples-")}) >= 3  # labels, tweets, unavailable
    assert not (out / common.STAGING).exists()
    assert stats(out, STAGE)["out"] == 12


def test_no_label_hashtag_survives_and_plain_words_stay(inputs, tmp_path):
    out = tmp_path / "bench"
    assert _run(inputs, out) == 0
    rows = _all_rows(out)
    langs = {r["lang"] for r in rows}
    assert langs == {"en", "tr", "ja", "ru", "ar", "hi", "es"}
    for row in rows:
        for variant in {row["label"], row["label"].upper(), row["label"].lower()}:
            assert not contains_label_hashtag(row["text"], variant), row
        assert all(label_key(t.body) != label_key(row["label"]) for t in find_hashtags(row["text"]))
    texts = {r["tweet_id"]: r["text"] for r in rows}
    assert texts["102"] == "is back, football fans!"  # the word without '#' stays
    assert texts["201"] == "İstanbul bugün çok güzel"
    assert texts["202"] == "Boğaz manzarası"
    assert texts["301"] == "今日は最高楽しかった"
    # Labels map to ids per language; the label vocabulary lists kept counts.
    en_labels = read_rows(out / "en" / "labels.parquet")
    assert [(r["label_id"], r["label"], r["count"]) for r in en_labels] == [
        (0, "Football", 2),
        (1, "Music", 2),
    ]
    assert all(r["label_id"] == {"Football": 0, "Music": 1}[r["label"]] for r in rows if r["lang"] == "en")


def test_splits_disjoint_deterministic_and_runner_independent(inputs, tmp_path):
    # Two runs, one in-memory and one with 2 worker processes: the same bytes.
    a, c = tmp_path / "a", tmp_path / "c"
    assert _run(inputs, a) == 0
    mp = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert _run(inputs, c, *mp) == 0
    assert data_digests(a) == data_digests(c)
    rows = _all_rows(a)
    ids = [r["tweet_id"] for r in rows]
    assert len(ids) == len(set(ids))  # no tweet in two splits
    # Another seed gives another split of the same examples.
    d = tmp_path / "d"
    assert _run(inputs, d, "--seed", "7") == 0
    assert sorted(ids) == sorted(r["tweet_id"] for r in _all_rows(d))


def test_load_dataset_per_language(inputs, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "bench"
    assert _run(inputs, out) == 0
    per_language = stats(out, STAGE)["per_language"]
    for lang in ("en", "tr", "ja"):
        ds = datasets.load_dataset(str(out), lang, cache_dir=str(tmp_path / "hf-cache"))
        expected = {s: n for s, n in per_language[lang].items() if s != "labels" and n}
        assert {s: len(ds[s]) for s in ds} == expected
        for split in ds:
            assert set(ds[split].column_names) >= {"tweet_id", "text", "label", "label_id"}
            assert set(ds[split]["split"]) == {split}
            assert set(ds[split]["lang"]) == {lang}


def test_bundled_sample_with_tokenizer(tmp_path):
    hydrated = hydrate_sample(tmp_path / "hydrated")
    out = tmp_path / "bench"
    argv = [
        "benchmark",
        "hashtag",
        "--labels",
        str(SAMPLE / "sample_hashtag_labels.csv"),
        "--tweets",
        str(hydrated),
    ]
    assert run_cli([*argv, "--output", str(out), "--tokenizer", str(SAMPLE / "tokenizer.json")]) == 0
    s = stats(out, STAGE)
    assert all(s["checks"].values())
    assert s["out"] > 0 and len(s["per_language"]) >= 6
    rows = _all_rows(out)
    assert rows and all(r["input_ids"] and r["input_ids"][0] == 0 and r["input_ids"][-1] == 2 for r in rows)
    assert not any(contains_label_hashtag(r["text"], r["label"]) for r in rows)
    readme = (out / "README.md").read_text()
    assert readme.startswith("---\npretty_name:") and "\nconfigs:\n" in readme and "config_name: en" in readme


def test_zip_archive_and_released_splits(tmp_path):
    hydrated = write_tweets(tmp_path / "hydrated", TWEETS)
    archive = tmp_path / "hashtag-classification-id.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("hashtag-classification-id/en/train.tsv", "ID\tlabel\n101\tFootball\n106\tmusic\n")
        zf.writestr("hashtag-classification-id/en/dev.tsv", "ID\tlabel\n107\tMusic\n")
        zf.writestr("hashtag-classification-id/tr/test.tsv", "201\tistanbul\n202\tİstanbul\n")
    out = tmp_path / "bench"
    argv = ["benchmark", "hashtag", "--labels", str(archive), "--tweets", str(hydrated), "--output", str(out)]
    assert run_cli([*argv, "--split", "released"]) == 0
    splits = {r["tweet_id"]: r["split"] for r in _all_rows(out)}
    assert splits == {"101": "train", "106": "train", "107": "validation", "201": "test", "202": "test"}


def test_released_splits_reject_rows_of_a_file_that_names_no_split(tmp_path):
    hydrated = write_tweets(tmp_path / "hydrated", TWEETS)
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "en_train.tsv").write_text("ID\tlabel\n101\tFootball\n106\tmusic\n", encoding="utf-8")
    (labels / "en.tsv").write_text("ID\tlabel\n107\tMusic\n108\tTravel\n", encoding="utf-8")
    out = tmp_path / "bench"
    argv = ["benchmark", "hashtag", "--labels", str(labels), "--tweets", str(hydrated), "--output", str(out)]
    assert run_cli([*argv, "--split", "released"]) == 0
    assert {r["tweet_id"]: r["split"] for r in _all_rows(out)} == {"101": "train", "106": "train"}
    s = stats(out, STAGE)
    assert s["rejected"] == {"no_released_split": 2} and s["out"] == 2 and all(s["checks"].values())
    assert sorted(e["error_type"] for e in errors(out, STAGE)) == ["no_released_split", "no_released_split"]


def test_a_tweet_hydrated_twice_gives_one_example_whatever_the_file_order(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "en_train.tsv").write_text("ID\tlabel\n101\tFootball\n106\tmusic\n", encoding="utf-8")
    twice = [tweet("101", "Great match #Football", "en"), tweet("101", "Great game #Football!", "en")]
    texts = []
    for name, order in (("a", twice), ("b", twice[::-1])):
        hydrated = write_tweets(tmp_path / f"hydrated_{name}", [order[0], TWEETS[5], order[1]])
        out = tmp_path / f"bench_{name}"
        argv = ["benchmark", "hashtag", "--labels", str(labels), "--tweets", str(hydrated), "--output", str(out)]
        assert run_cli(argv) == 0
        rows = _all_rows(out)
        assert sorted(r["tweet_id"] for r in rows) == ["101", "106"] and stats(out, STAGE)["out"] == 2
        texts.append(next(r["text"] for r in rows if r["tweet_id"] == "101"))
    assert texts[0] == texts[1]


def test_a_parquet_glob_of_tweets_without_mentions_or_urls_columns(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "en_train.tsv").write_text("ID\tlabel\n101\tFootball\n106\tmusic\n", encoding="utf-8")
    (tmp_path / "t").mkdir()
    full = to_table([TWEETS[0]], TWEETS_SCHEMA)
    bare = pa.table({"tweet_id": ["106"], "text": [TWEETS[5]["text"]], "lang": ["en"]})  # no mentions, urls
    pq.write_table(full, tmp_path / "t" / "a.parquet")
    pq.write_table(bare, tmp_path / "t" / "b.parquet")
    out = tmp_path / "bench"
    argv = ["benchmark", "hashtag", "--labels", str(labels), "--tweets", str(tmp_path / "t" / "*.parquet")]
    assert run_cli([*argv, "--output", str(out)]) == 0
    assert sorted(r["tweet_id"] for r in _all_rows(out)) == ["101", "106"]


def test_user_mistakes_are_one_line_errors(inputs, tmp_path, capsys):
    out = tmp_path / "bench"
    nolang = tmp_path / "labels.csv"
    nolang.write_text("ID,label\n101,Football\n")
    base = ["benchmark", "hashtag", "--tweets", inputs["tweets"], "--output", str(out)]
    assert run_cli([*base, "--labels", str(nolang)]) == 2
    assert "no 'lang' column and no language code" in capsys.readouterr().err
    assert run_cli([*base, "--labels", inputs["labels"], "--split", "0.5,0.5"]) == 2
    assert "--split" in capsys.readouterr().err
    assert run_cli([*base, "--labels", str(tmp_path / "missing*.csv")]) == 2
    assert _run(inputs, out) == 0
    assert _run(inputs, out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _run(inputs, out, "--overwrite") == 0
    assert os.path.exists(out / "README.md")
