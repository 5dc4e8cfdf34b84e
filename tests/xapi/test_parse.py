"""Pure parsing of lookup responses (text, language, accounting, vocabulary) and the token source."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from twhin_data.core.errors import ConfigError
from twhin_data.schemas.tweets import TWEETS, UNAVAILABLE
from twhin_data.xapi import parse
from twhin_data.xapi.auth import TokenSource

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_unescape_map_moves_offsets():
    text, offsets = parse.unescape_with_map("a&amp;b &lt;&gt; c&quot")
    assert text == 'a&b <> c"'
    assert (
        offsets[0] == 0
        and offsets[1] == 1
        and offsets[6] == 2
        and len(offsets) == len("a&amp;b &lt;&gt; c&quot") + 1
    )
    assert offsets[-1] == len(text)


def test_problem_suffix_both_hosts():
    assert (
        parse.problem_suffix("https://api.twitter.com/2/problems/resource-not-found") == "resource-not-found"
    )
    assert (
        parse.problem_suffix("https://api.x.com/2/problems/not-authorized-for-resource")
        == "not-authorized-for-resource"
    )
    assert parse.problem_suffix("about:blank") == "about:blank" and parse.problem_suffix(None) is None


def test_one_record_per_requested_id_with_value_fallback_and_duplicates():
    body = {
        "data": [{"id": "1", "text": "x"}, {"id": "1", "text": "dup"}, {"id": "77", "text": "not requested"}],
        "errors": [
            # 2020-era entry: no resource_id, no section
            {
                "value": "2",
                "parameter": "ids",
                "resource_type": "tweet",
                "title": "Not Found Error",
                "detail": "Could not find tweet with ids: [2].",
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            },
            {
                "value": "3",
                "resource_type": "tweet",
                "title": "Unavailable",
                "type": "https://api.x.com/2/problems/resource-unavailable",
            },
            {
                "resource_id": "4",
                "parameter": "referenced_tweets.id",
                "section": "includes",
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            },
            {
                "resource_id": "5",
                "parameter": "ids",
                "type": "https://api.x.com/2/problems/field-hydration-failure",
            },
        ],
    }
    tweets, unavailable, expansion = parse.parse_lookup(
        body, ["1", "1", "2", "3", "4", "5"], retrieved_at=NOW, api_version="2.1"
    )
    assert [t["tweet_id"] for t in tweets] == ["1"] and tweets[0]["text"] == "x"
    status = {u["tweet_id"]: (u["status"], u["problem_type"]) for u in unavailable}
    assert status == {
        "2": ("not_found", "resource-not-found"),
        "3": ("unavailable", "resource-unavailable"),
        "4": ("unavailable", None),  # only an includes error names it: missing without error
        "5": ("unavailable", "field-hydration-failure"),
    }
    assert len(expansion) == 1 and unavailable[0]["api_version"] == "2.1"


def test_tweet_row_post_vocabulary_and_single_data_object():
    body = {
        "data": {
            "id": "9",
            "text": "RT @a: cut…",
            "referenced_posts": [{"type": "retweeted", "id": "8"}],
            "edit_history_post_ids": ["9"],
            "lang": "ja",
        },
        "includes": {"posts": [{"id": "8", "text": "x", "note_post": {"text": "full &amp; long"}}]},
    }
    (row,), unavailable, _ = parse.parse_lookup(body, ["9"], retrieved_at=NOW)
    assert unavailable == [] and row["text"] == "full & long" and row["raw_text"] == "RT @a: cut…"
    assert row["referenced_tweets"] == [{"type": "retweeted", "id": "8"}] and row[
        "edit_history_tweet_ids"
    ] == ["9"]


def test_rows_fit_the_schemas():
    tweet = {
        "id": "1",
        "text": "t",
        "created_at": "2020-01-01T00:00:00.000Z",
        "public_metrics": {"like_count": 1},
        "entities": {"hashtags": [{"start": 0, "end": 1, "tag": "t"}]},
    }
    rows, unavailable, _ = parse.parse_lookup({"data": [tweet]}, ["1", "2"], retrieved_at=NOW)
    table = pa.Table.from_pylist(rows, schema=TWEETS)
    assert table.num_rows == 1 and table.column("hashtags").to_pylist() == [["t"]]
    assert pa.Table.from_pylist(unavailable, schema=UNAVAILABLE).num_rows == 1


def test_malformed_values_do_not_crash():
    tweet = {
        "id": 5,
        "text": None,
        "created_at": "yesterday",
        "public_metrics": {"like_count": "many"},
        "entities": {"mentions": [{"start": "x", "end": None, "username": "u"}, "junk"]},
        "possibly_sensitive": "no",
    }
    (row,), _, _ = parse.parse_lookup({"data": [tweet]}, ["5"])
    assert row["tweet_id"] == "5" and row["text"] is None and row["created_at"] is None
    assert row["like_count"] is None and row["possibly_sensitive"] is None
    assert row["mentions"] == [{"start": None, "end": None, "value": "u"}]


def test_token_source_env_file_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_TOKEN_VAR", "  abc123 \n")
    assert TokenSource(env_var="MY_TOKEN_VAR").read() == "abc123"
    monkeypatch.delenv("MY_TOKEN_VAR")
    with pytest.raises(ConfigError, match="environment variable MY_TOKEN_VAR"):
        TokenSource(env_var="MY_TOKEN_VAR").read()
    path = tmp_path / "token"
    path.write_text("file-token\n")
    source = TokenSource(file=str(path))
    assert pickle.loads(pickle.dumps(source)).read() == "file-token"
    assert "file-token" not in pickle.dumps(source).decode("latin-1") and "file-token" not in repr(source)
    with pytest.raises(ConfigError, match="cannot read the bearer token file"):
        TokenSource(file=str(tmp_path / "missing")).read()
    path.write_text("two words")
    with pytest.raises(ConfigError, match="whitespace"):
        source.read()


def test_token_source_secret_manager_missing_library(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_google(name, *args, **kwargs):
        if name.startswith("google.cloud"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_google)
    with pytest.raises(ConfigError, match="google-cloud-secret-manager"):
        TokenSource(secret="projects/p/secrets/s").read()
