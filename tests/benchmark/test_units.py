"""Pure pieces of the benchmark builders: label-file parsing, splits, sampling, candidate lists."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from twhin_data.core.errors import ConfigError
from twhin_data.transforms.benchmark import engagement_steps as core
from twhin_data.transforms.benchmark.common import assign_splits, dataset_card, parse_split, table_slices
from twhin_data.transforms.benchmark.hashtag import top_labels
from twhin_data.transforms.benchmark.read import (
    LabelSource,
    canonical_lang,
    count_label_rows,
    parse_label_file,
    path_hints,
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("hashtag-classification-id/en/train.tsv", ("en", "train")),
        ("hashtag-classification-id/en_dev.tsv", ("en", "validation")),
        ("data/test-ja.csv", ("ja", "test")),
        ("x/in_train.tsv", ("id", "train")),  # Twitter's legacy code
        ("x/iw/test.tsv", ("he", "test")),
        ("labels.csv", (None, None)),
    ],
)
def test_path_hints(path, expected):
    assert path_hints(path) == expected


def _parse(text: bytes, name: str = "en_train.tsv") -> list[dict]:
    return list(parse_label_file(LabelSource(name), text, "lang"))


def test_parse_tsv_without_header_bom_quotes_and_bad_rows():
    rows = _parse('\ufeff"0123"\t#Paris\n456\t  \n1.5E+18\tx\n789\tＴｏｋｙｏ\n\n'.encode())
    assert rows[0] == {
        "tweet_id": "123",
        "lang": "en",
        "label": "Paris",
        "released_split": "train",
        "source": "en_train.tsv",
    }
    assert rows[1]["_error"][0] == "empty_label"
    assert rows[2]["_error"][0] == "scientific_notation"
    assert rows[3]["label"] == "Ｔｏｋｙｏ" and len(rows) == 4


def test_parse_csv_header_with_language_column_and_invalid_utf8():
    rows = _parse(b"id,label,lang\n1,a,IN\n2,b,\n3,\xff\xfe,ja\n", name="all.csv")
    assert rows[0]["lang"] == "id"
    assert rows[1]["_error"][0] == "no_language"
    assert rows[2]["_error"][0] == "invalid_utf8"


@pytest.mark.parametrize(
    "text",
    [
        '\ufeff"0123"\t#Paris\n456\t  \n1.5E+18\tx\n789\tＴｏｋｙｏ\n\n'.encode(),
        b"id,label,lang\n1,a,IN\n2,b,\n3,\xff\xfe,ja\n",
        b"ID\tlabel\r\n1\ta\r\n\r\n2\t\"b\tc\"\r\n",
        b"",
    ],
)
def test_progress_count_equals_the_rows_the_parser_yields(text):
    assert count_label_rows(text, "lang") == len(_parse(text))


def test_quoted_cells_and_plain_cells_parse_alike():
    rows = _parse(b'ID\tlabel\n1\t"a b"\n2\ta b\n3\t"x\ty"\n')
    assert [r["label"] for r in rows] == ["a b", "a b", "x\ty"]


def test_canonical_lang():
    assert canonical_lang(" IW ") == "he" and canonical_lang("in") == "id" and canonical_lang("") is None


def test_parse_split():
    assert parse_split("0.8,0.1,0.1") == (0.8, 0.1, 0.1)
    for bad in ("0.8,0.1", "a,b,c", "0.5,0.5,0.5", "-0.1,0.6,0.5"):
        with pytest.raises(ConfigError):
            parse_split(bad)


def test_assign_splits_is_stable_and_proportional():
    ids = [str(10**17 + i * 7919) for i in range(20_000)]
    splits = assign_splits(ids, (0.8, 0.1, 0.1), seed=0)
    assert assign_splits(ids[:10], (0.8, 0.1, 0.1), seed=0) == splits[:10]  # independent of the others
    counts = {s: splits.count(s) / len(ids) for s in ("train", "validation", "test")}
    assert abs(counts["train"] - 0.8) < 0.02 and abs(counts["test"] - 0.1) < 0.02
    assert assign_splits(ids, (0.8, 0.1, 0.1), seed=1) != splits


def test_table_slices_group_by_key_and_keep_row_order():
    table = pa.table({"user_id": ["u1", "u2", "u3", "u4"], "tweet_id": ["t1", "t2", "t1", "t2"]})
    slices = table_slices(table, "tweet_id", 8, "salt")
    bucket_of = {t: b for b, part in slices for t in part.column("tweet_id").to_pylist()}
    assert sum(p.num_rows for _b, p in slices) == 4 and len(bucket_of) == 2
    assert [b for b, _p in slices] == sorted(b for b, _p in slices)
    users = {b: p.column("user_id").to_pylist() for b, p in slices}
    assert users[bucket_of["t1"]] == ["u1", "u3"]
    assert table_slices(table, "tweet_id", 8, "salt")[0][1].equals(slices[0][1])  # same input, same slices


def test_top_labels_ranks_and_display_spelling():
    from collections import Counter

    lang, vocab = top_labels(
        "en", Counter({("paris", "Paris"): 3, ("paris", "paris"): 1, ("rome", "Rome"): 4}), 1
    )
    assert lang == "en" and vocab == {"paris": (0, "Paris", 4)}


def test_sample_tweets_is_a_deterministic_subset():
    ids = [str(1000 + i) for i in range(100)]
    chosen, dropped = core.sample_tweets("en", ids, 30, seed=0)
    assert len(chosen) == 30 and set(chosen) | set(dropped) == set(ids)
    assert core.sample_tweets("en", ids, 30, seed=0)[0] == chosen
    assert core.sample_tweets("ja", ids, 30, seed=0)[0] != chosen


def test_candidate_list_excludes_engaged_tweets_and_is_seeded():
    pool = np.array([str(i) for i in range(100)], dtype=object)
    record = {"tweet_id": "5", "split": "test", "user_row": 3, "exclude": ["6", "7"]}
    ids, pos, short = core.candidate_list(record, pool, 20, lang="en", seed=0)
    assert len(ids) == 21 and ids[pos] == "5" and not short
    assert not {"6", "7"} & set(ids) and len(set(ids)) == 21
    assert core.candidate_list(record, pool, 20, lang="en", seed=0) == (ids, pos, short)
    ids_all, _pos, short = core.candidate_list(record, pool, 999, lang="en", seed=0)
    assert short and len(ids_all) == 98  # everything but the two excluded tweets


def test_negative_distribution_is_frequency_to_the_three_quarters():
    records = [{"tweet_id": t} for t in ["1", "1", "1", "1", "2"]]
    dist = core.negative_distribution("en", records)
    assert [d["count"] for d in dist] == [4, 1]
    assert math.isclose(dist[0]["probability"] / dist[1]["probability"], 4**0.75)
    assert math.isclose(sum(d["probability"] for d in dist), 1.0)


def test_embedding_problems_and_choose_records():
    values = pa.array(
        [[1.0, 2.0], [1.0, float("nan")], [1.0], None, [None, 1.0], [float("inf"), 0.0]], pa.list_(pa.float64())
    )
    problems = core.embedding_problems(values, 2)
    assert problems[0] is None and "NaN" in problems[1] and "1 values, expected 2" in problems[2]
    assert problems[3] == "embedding is not a list of numbers"
    assert "NaN" in problems[4] and "infinity" in problems[5]  # a null value inside the list is not a number
    assert core.embedding_problems(pa.chunked_array([values.slice(2), values.slice(0, 2)]), 2)[-2:] == problems[:2]
    kept, dropped = core.choose_records("u", ["1", "2", "3"], 1, seed=0)
    assert len(kept) == 1 and sorted(kept + dropped) == ["1", "2", "3"]


def test_dataset_card_yaml_configs():
    import yaml

    manifest = {
        "files": [
            {"lang": "en", "path": "en/train.parquet", "rows": 5, "bytes": 900},
            {"lang": "ja", "path": "ja/train.parquet", "rows": 2_000, "bytes": 50_000},
        ]
    }
    card = dataset_card(
        "T: a title",
        "D",
        [{"config_name": "en", "data_files": {"train": "en/train.parquet"}}],
        "body",
        manifest=manifest,
        task_categories=["text-classification"],
    )
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["configs"] == [{"config_name": "en", "data_files": [{"split": "train", "path": "en/train.parquet"}]}]
    assert header["language"] == ["en", "ja"] and header["multilinguality"] == "multilingual"
    assert header["size_categories"] == ["1K<n<10K"] and header["pretty_name"] == "T: a title"
    assert header["license"] == "other" and "@article{zhang2022twhin" in card
    assert header["dataset_info"] == [
        {"config_name": "en", "splits": [{"name": "train", "num_bytes": 900, "num_examples": 5}], "download_size": 900, "dataset_size": 900}
    ]


def test_check_label_source_reads_the_first_non_blank_line(tmp_path):
    """The layout check looks at the header the parser will see (after a BOM and blank lines) and
    names the file when the language cannot be found."""
    from twhin_data.transforms.benchmark.read import check_label_source

    good = tmp_path / "labels.tsv"
    good.write_bytes(b"\xef\xbb\xbf\r\n  \nID\tlabel\tlang\r\n1\ta\ten\n" + b"2\tb\ten\n" * 1000)
    check_label_source(LabelSource(str(good)), "lang")  # the lang column is in the header
    no_lang = tmp_path / "labels2.tsv"
    no_lang.write_bytes(b"\n\nID\tlabel\n1\ta\n")
    with pytest.raises(ConfigError, match="labels2.tsv: no 'lang' column"):
        check_label_source(LabelSource(str(no_lang)), "lang")
    empty = tmp_path / "empty.tsv"
    empty.write_bytes(b"\n \r\n")
    check_label_source(LabelSource(str(empty)), "lang")  # nothing to check: no rows
