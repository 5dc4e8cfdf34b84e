"""ID input: validation rules, format/column detection, and the ReadTweetIds transform."""

from __future__ import annotations

import gzip
import json

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import fnapi_options
from twhin_data.core.errors import ConfigError
from twhin_data.core.ids import normalize_id
from twhin_data.transforms.hydrate.ids import (
    ReadTweetIds,
    file_format,
    resolve_source,
    resolve_sources,
)


@pytest.mark.parametrize(
    "raw, key",
    [
        ("1293593516040269825", "1293593516040269825"),
        ("  1293593516040269825\r\n", "1293593516040269825"),
        ('"1293593516040269825"', "1293593516040269825"),
        ("'42'", "42"),
        ("\ufeff7", "7"),
        ("0012", "12"),
        (1293593516040269825, "1293593516040269825"),
        ("9999999999999999999", "9999999999999999999"),
        ("01293593516040269825", "1293593516040269825"),  # zero-padded to 20 digits: leading zeros dropped
    ],
)
def test_valid_ids_are_normalized(raw, key):
    assert normalize_id(raw) == (key, None)


@pytest.mark.parametrize(
    "raw, error_type",
    [
        ("1.29359E+18", "scientific_notation"),
        ("1,29359E+18", "scientific_notation"),
        ("1293593516040269825.0", "float_id"),
        (1.2935935160402698e18, "float_id"),
        ("12345678901234567890", "invalid_id"),
        ("12ab", "invalid_id"),
        ("-5", "invalid_id"),
        ('""', "invalid_id"),
        (True, "invalid_id"),
        ("١٢٣", "invalid_id"),  # Arabic-Indic digits are not ASCII decimal IDs
    ],
)
def test_invalid_ids_are_reported_not_repaired(raw, error_type):
    key, problem = normalize_id(raw)
    assert problem is not None and problem[0] == error_type
    assert problem[1]


def test_file_formats():
    assert file_format("a/ids.txt") == "text"
    assert file_format("a/en.csv") == "csv"
    assert file_format("a/ids.TSV.gz") == "tsv"
    assert file_format("gs://b/x.jsonl.gz") == "jsonl"
    assert file_format("x.parquet") == "parquet"
    assert file_format("ids") == "text"


def test_csv_column_named_guessed_or_headerless(tmp_path):
    hf = tmp_path / "en.csv"
    hf.write_text("ID,label\n1,#a\n2,#b\n")
    assert resolve_source(str(hf)).column == 0 and resolve_source(str(hf)).header
    two = tmp_path / "two.tsv"
    two.write_text("label\ttweet_id\nx\t5\n")
    assert resolve_source(str(two)).column == 1
    bare = tmp_path / "bare.csv"
    bare.write_text("11,foo\n12,bar\n")
    source = resolve_source(str(bare))
    assert source.column == 0 and not source.header
    named = tmp_path / "named.csv"
    named.write_text("a,b,my_ids\n1,2,3\n")
    assert resolve_source(str(named), "MY_IDS").column == 2
    with pytest.raises(ConfigError, match="--id_column"):
        resolve_source(str(named))
    with pytest.raises(ConfigError, match="no column 'nope'"):
        resolve_source(str(named), "nope")


def test_parquet_column_detection(tmp_path):
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"x": [1, 2], "id_str": ["3", "4"]}), path)
    assert resolve_source(str(path)).column == "id_str"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    with pytest.raises(ConfigError, match="cannot tell"):
        resolve_source(str(path))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ConfigError, match="not a readable Parquet"):
        resolve_source(str(tmp_path / "bad.parquet"))


def test_missing_input_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no input files"):
        resolve_sources(str(tmp_path / "nothing*.txt"))


@pytest.mark.slow
def test_read_tweet_ids_all_formats(tmp_path):
    (tmp_path / "a.txt").write_text("100\n\n100\n 'x1' \n1.2E+18\n")
    with gzip.open(tmp_path / "b.csv.gz", "wt") as handle:
        handle.write("ID,label\n200,#x\n\n300,#y\nbad,#z\n")
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"tweet_id": "400"})
        + "\n"
        + json.dumps({"id": 500})
        + "\n{oops\n"
        + json.dumps({"other": 1})
        + "\n600\n"
    )
    pq.write_table(pa.table({"id": pa.array([700, None, 100], pa.int64())}), tmp_path / "d.parquet")
    sources = resolve_sources(str(tmp_path))
    assert [s.fmt for s in sources] == ["text", "csv", "jsonl", "parquet"]
    with TestPipeline(runner="FnApiRunner", options=fnapi_options()) as p:
        out = p | ReadTweetIds(sources)
        ids = out["ids"] | "Flat" >> beam.FlatMap(lambda chunk: chunk)
        assert_that(
            ids, equal_to(["100", "100", "200", "300", "400", "500", "600", "700", "100"]), label="Ids"
        )
        keys = out["invalid"] | "Keys" >> beam.Map(lambda r: (r["tweet_id"], r["status"], r["problem_type"]))
        assert_that(
            keys,
            equal_to(
                [
                    ("x1", "invalid_id", "invalid_id"),
                    ("1.2E+18", "invalid_id", "scientific_notation"),
                    ("bad", "invalid_id", "invalid_id"),
                    ("{oops", "invalid_id", "bad_json"),
                    ('{"other": 1}', "invalid_id", "missing_id"),
                    ("null", "invalid_id", "missing_id"),
                ]
            ),
            label="Invalid",
        )
        sources_seen = out["errors"] | "Src" >> beam.Map(
            lambda e: (e["error_type"], e["source"].rsplit("/", 1)[1])
        )
        assert_that(
            sources_seen,
            equal_to(
                [
                    ("invalid_id", "a.txt:4"),
                    ("scientific_notation", "a.txt:5"),
                    ("invalid_id", "b.csv.gz:5"),
                    ("bad_json", "c.jsonl:3"),
                    ("missing_id", "c.jsonl:4"),
                    ("missing_id", "d.parquet:2"),
                ]
            ),
            label="Errors",
        )
