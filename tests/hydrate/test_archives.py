"""Archives -> tweets: twarc2 pages, v2 tweet lines, v1.1 statuses (recorded cassettes when present)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from twhin_data.runners.cli import main
from twhin_data.transforms.hydrate.archives import parse_record, record_kind

V1_CASSETTES = [
    "testusertimeline.json",
    "testlisttimeline.json",
    "testgetretweets.json",
    "testhometimeline.json",
]


def rows_of(path: Path) -> list[dict]:
    return [r for p in sorted(path.glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def v1_statuses(cassettes: Path) -> list[dict]:
    statuses = []
    for name in V1_CASSETTES:
        for interaction in json.loads((cassettes / name).read_text())["interactions"]:
            body = json.loads(interaction["response"]["body"]["string"])
            statuses += body if isinstance(body, list) else [body]
    return statuses


def v2_bodies(cassettes: Path) -> list[dict]:
    bodies = []
    for name in ("test_client_get_tweets.yaml", "test_client_get_tweet.yaml"):
        for interaction in yaml.safe_load((cassettes / name).read_text())["interactions"]:
            raw = interaction["response"]["body"]["string"]
            if isinstance(raw, bytes):
                raw = gzip.decompress(raw)
            bodies.append(json.loads(raw))
    return bodies


def test_twarc2_page_with_retweet_errors_and_expansion_error():
    page = {
        "data": [
            {
                "id": "1",
                "text": "RT @a: short…",
                "lang": "in",
                "referenced_tweets": [{"type": "retweeted", "id": "9"}],
                "created_at": "2021-05-01T09:27:19.000Z",
                "edit_history_tweet_ids": ["1"],
            },
            {"id": "2", "text": "a &amp; b 🥁", "lang": "qst", "edit_history_tweet_ids": ["2"]},
        ],
        "includes": {"tweets": [{"id": "9", "text": "the full original &lt;3"}]},
        "errors": [
            {
                "value": "3",
                "resource_id": "3",
                "parameter": "ids",
                "resource_type": "tweet",
                "title": "Not Found Error",
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            },
            {
                "value": "8",
                "parameter": "referenced_tweets.id",
                "section": "includes",
                "title": "Authorization Error",
                "type": "https://api.twitter.com/2/problems/not-authorized-for-resource",
            },
        ],
        "__twarc": {"retrieved_at": "2022-10-07T10:00:00+00:00", "version": "2.14.1"},
    }
    assert record_kind(page) == "twarc2"
    out = list(parse_record(page))
    tweets = {r["tweet_id"]: r for kind, r in out if kind == "tweet"}
    unavailable = [r for kind, r in out if kind == "unavailable"]
    assert tweets["1"]["text"] == "the full original <3" and tweets["1"]["raw_text"] == "RT @a: short…"
    assert tweets["1"]["lang"] == "in" and tweets["1"]["source"] == "archive:twarc2"
    assert tweets["1"]["retrieved_at"] is not None
    assert tweets["2"]["text"] == "a & b 🥁"
    assert [(r["tweet_id"], r["status"]) for r in unavailable] == [("3", "not_found")]


def test_v1_status_mapping():
    status = {
        "id": 5,
        "id_str": "5",
        "created_at": "Thu Nov 08 02:31:41 +0000 2012",
        "lang": "en",
        "full_text": "RT @bob: hi",
        "user": {"id_str": "77"},
        "favorite_count": 3,
        "retweet_count": 2,
        "entities": {
            "hashtags": [],
            "user_mentions": [{"screen_name": "bob", "indices": [3, 7]}],
            "urls": [],
        },
        "retweeted_status": {
            "id_str": "4",
            "full_text": "hi &amp; #yo @carl",
            "user": {"id_str": "78"},
            "entities": {
                "hashtags": [{"text": "yo", "indices": [9, 12]}],
                "user_mentions": [{"screen_name": "carl", "indices": [13, 18]}],
                "urls": [],
            },
        },
    }
    assert record_kind(status) == "v1.1"
    [(kind, row)] = list(parse_record(status))
    assert kind == "tweet" and row["tweet_id"] == "5" and row["author_id"] == "77"
    assert row["text"] == "hi & #yo @carl" and row["raw_text"] == "RT @bob: hi"
    assert row["hashtags"] == ["yo"]
    mention = row["mentions"][0]
    assert row["text"][mention["start"] : mention["end"]] == "@carl"
    assert row["created_at"].isoformat() == "2012-11-08T02:31:41+00:00"
    assert row["referenced_tweets"] == [{"type": "retweeted", "id": "4"}]
    assert row["like_count"] == 3 and row["source"] == "archive:v1.1"
    with pytest.raises(ValueError):
        list(parse_record({"foo": 1}))


def test_archive_cli_on_recorded_cassettes(tmp_path, cassettes_dir, capsys):
    statuses = v1_statuses(cassettes_dir)
    bodies = v2_bodies(cassettes_dir)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "v1.jsonl").write_text("".join(json.dumps(s) + "\n" for s in statuses) + "{not json\n")
    (archive / "pages.jsonl").write_text("".join(json.dumps(b) + "\n" for b in bodies))
    v2_tweets = [t for b in bodies for t in ([b["data"]] if isinstance(b["data"], dict) else b["data"])]
    (archive / "v2.jsonl").write_text(
        "".join(json.dumps(t) + "\n" for t in v2_tweets) + json.dumps({"x": 1}) + "\n"
    )
    out = tmp_path / "out"
    assert main(["hydrate", "--archive", str(archive), "--output", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    tweets = rows_of(out / "tweets")
    expected = {s["id_str"] for s in statuses} | {str(t["id"]) for t in v2_tweets}
    assert {r["tweet_id"] for r in tweets} == expected
    assert len(tweets) == len(expected)
    assert summary["statuses"]["ok"] == len(expected) and summary["conservation_ok"]
    by_id = {r["tweet_id"]: r for r in tweets}
    for status in statuses:
        row = by_id[status["id_str"]]
        if "retweeted_status" not in status:
            assert row["raw_text"] == (status.get("full_text") or status.get("text"))
            assert row["lang"] == status["lang"]
        assert row["created_at"] is not None
    retweets = [s for s in statuses if "retweeted_status" in s]
    assert retweets, "the cassettes hold retweets"
    for status in retweets:
        original = status["retweeted_status"]
        full = (
            (original.get("extended_tweet") or {}).get("full_text")
            or original.get("full_text")
            or original["text"]
        )
        import html

        assert by_id[status["id_str"]]["text"] == html.unescape(full)
    errors = rows_of(out / "errors" / "hydrate")
    assert sorted(e["error_type"] for e in errors) == ["bad_json", "unknown_format"]
    assert {r["source"] for r in tweets} <= {"archive:v1.1", "archive:twarc2", "archive:v2"}
