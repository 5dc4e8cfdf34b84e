"""XClient.lookup against the mock X API over real HTTP: every response case docs/x-api.md lists."""

from __future__ import annotations

import json
import logging
import time

import pytest

from twhin_data.core.errors import FatalApiError
from twhin_data.xapi.client import DEFAULT_EXPANSIONS, DEFAULT_TWEET_FIELDS, ClientConfig, XClient
from twhin_data.xapi.mock.server import MockXApi

TOKEN = "test-bearer-SECRET-0123456789"

TWEETS = [
    {
        "id": "101",
        "text": "Fish &amp; chips &lt;3 @alice https://t.co/abc",
        "lang": "en",
        "created_at": "2021-05-01T09:27:19.000Z",
        "author_id": "9",
        "conversation_id": "101",
        "public_metrics": {"like_count": 5, "retweet_count": 1, "reply_count": 0, "quote_count": 2},
        "entities": {
            "mentions": [{"start": 23, "end": 29, "username": "alice", "id": "7"}],
            "urls": [{"start": 30, "end": 46, "url": "https://t.co/abc"}],
            "hashtags": [],
        },
        "possibly_sensitive": False,
        "edit_history_tweet_ids": ["101"],
    },
    {
        "id": "102",
        "text": "RT @bob: A long original that gets cut…",
        "lang": "en",
        "referenced_tweets": [{"type": "retweeted", "id": "103"}],
        "edit_history_tweet_ids": ["102"],
    },
    {
        "id": "103",
        "text": "A long original that gets cut off in the retweet, #full text here",
        "lang": "en",
        "entities": {"hashtags": [{"start": 50, "end": 55, "tag": "full"}]},
        "edit_history_tweet_ids": ["103"],
    },
    {
        "id": "104",
        "text": "Truncated long post https://t.co/n",
        "note_tweet": {
            "text": "Truncated long post that continues past 280 characters @carol",
            "entities": {"mentions": [{"start": 55, "end": 61, "username": "carol"}]},
        },
        "lang": "in",
        "edit_history_tweet_ids": ["104"],
    },
    {
        "id": "105",
        "text": "😀🥁 emoji first @dave",
        "lang": "und",
        "entities": {"mentions": [{"start": 15, "end": 20, "username": "dave"}]},
        "edit_history_tweet_ids": ["105"],
    },
    {"id": "106", "text": "?", "lang": "qst", "edit_history_tweet_ids": ["106"]},
    {
        "id": "107",
        "text": "RT @x: quoting a deleted one…",
        "referenced_tweets": [{"type": "retweeted", "id": "199"}],
        "edit_history_tweet_ids": ["107"],
    },
]
STATUSES = {"110": "deleted", "111": "protected", "112": "missing", "199": "deleted"}
ALL_OK = ["101", "102", "103", "104", "105", "106"]


def config(api: MockXApi, tmp_path, **overrides) -> ClientConfig:
    values = dict(
        base_url=api.base_url,
        backoff_base=0.01,
        backoff_cap=0.05,
        max_retries=3,
        read_timeout=5.0,
        pacing_dir=str(tmp_path / "pacing"),
    )
    values.update(overrides)
    return ClientConfig(**values)


@pytest.fixture
def api():
    with MockXApi(TWEETS, statuses=STATUSES, token=TOKEN) as server:
        yield server


def lookup(api, tmp_path, ids, **overrides):
    with XClient(config(api, tmp_path, **overrides), TOKEN) as client:
        return client.lookup(ids)


def by_id(rows):
    return {row["tweet_id"]: row for row in rows}


def settled(outcome):
    ids = [r["tweet_id"] for r in outcome.tweets] + [r["tweet_id"] for r in outcome.unavailable]
    assert len(ids) == len(set(ids)), "an ID was settled twice"
    return set(ids)


def test_mixed_data_and_errors(api, tmp_path):
    out = lookup(api, tmp_path, ["101", "110", "111", "112", "999"])
    assert [r["tweet_id"] for r in out.tweets] == ["101"]
    status = {r["tweet_id"]: (r["status"], r["problem_type"]) for r in out.unavailable}
    assert status == {
        "110": ("not_found", "resource-not-found"),
        "111": ("not_authorized", "not-authorized-for-resource"),
        "112": ("unavailable", None),
        "999": ("not_found", "resource-not-found"),
    }
    assert by_id(out.unavailable)["112"]["detail"] == "missing without error"
    assert all(r["http_status"] == 200 and r["api_version"] == "2.159" for r in out.unavailable)
    assert out.requests == 1 and out.reads == 1 and len(out.raw) == 1


def test_all_missing_has_no_data(api, tmp_path):
    out = lookup(api, tmp_path, ["110", "998"])
    assert "data" not in out.raw[0]
    assert out.tweets == [] and {r["status"] for r in out.unavailable} == {"not_found"}


def test_expansion_errors_never_settle_requested_ids(api, tmp_path):
    out = lookup(api, tmp_path, ["107", "199"])
    assert by_id(out.tweets)["107"]["text"] == "RT @x: quoting a deleted one…"  # original unavailable
    assert by_id(out.unavailable)["199"]["status"] == "not_found"
    assert [e["section"] for e in out.expansion_errors] == ["includes"]
    assert settled(out) == {"107", "199"}


def test_request_carries_exactly_the_default_fields(api, tmp_path):
    lookup(api, tmp_path, ["101"])
    query = api.query_log[0]
    assert set(query) == {"ids", "tweet.fields", "expansions"}
    assert query["tweet.fields"].split(",") == list(DEFAULT_TWEET_FIELDS)
    assert query["expansions"].split(",") == list(DEFAULT_EXPANSIONS) == ["referenced_tweets.id"]
    assert set(DEFAULT_TWEET_FIELDS) == {
        "id",
        "text",
        "lang",
        "created_at",
        "author_id",
        "conversation_id",
        "in_reply_to_user_id",
        "referenced_tweets",
        "public_metrics",
        "entities",
        "note_tweet",
        "possibly_sensitive",
        "edit_history_tweet_ids",
    }


def test_text_rules_retweet_note_entities_emoji_lang(api, tmp_path):
    rows = by_id(lookup(api, tmp_path, ALL_OK).tweets)
    fish = rows["101"]
    assert fish["text"] == "Fish & chips <3 @alice https://t.co/abc"
    assert fish["raw_text"].startswith("Fish &amp; chips &lt;3")
    for span in fish["mentions"] + fish["urls"]:
        assert fish["text"][span["start"] : span["end"]].lstrip("@") == span["value"]
    assert fish["like_count"] == 5 and fish["quote_count"] == 2 and fish["possibly_sensitive"] is False
    assert fish["created_at"].isoformat() == "2021-05-01T09:27:19+00:00"
    retweet = rows["102"]
    assert retweet["text"].startswith("A long original") and retweet["raw_text"].endswith("…")
    assert retweet["hashtags"] == ["full"]
    assert retweet["referenced_tweets"] == [{"type": "retweeted", "id": "103"}]
    note = rows["104"]
    assert note["text"].endswith("@carol") and note["raw_text"] == "Truncated long post https://t.co/n"
    assert note["text"][note["mentions"][0]["start"] : note["mentions"][0]["end"]] == "@carol"
    emoji = rows["105"]
    assert emoji["text"].startswith("😀🥁") and "\ud83d" not in emoji["text"]
    assert emoji["text"][emoji["mentions"][0]["start"] : emoji["mentions"][0]["end"]] == "@dave"
    assert {rows[i]["lang"] for i in ("104", "105", "106")} == {"in", "und", "qst"}
    assert all(r["source"] == "api" and r["retrieved_at"] is not None for r in rows.values())


def test_surrogate_pairs_on_the_wire(api, tmp_path):
    out = lookup(api, tmp_path, ["105"])
    assert "\\ud83d\\ude00" in json.dumps(out.raw[0]["data"][0]["text"]).lower()  # escaped as pairs by json
    assert out.tweets[0]["text"][0] == "😀"


def test_post_vocabulary(tmp_path):
    with MockXApi(TWEETS, statuses=STATUSES, token=TOKEN, post_vocabulary=True) as api:
        out = lookup(api, tmp_path, ["102", "103", "104", "110"])
    body = out.raw[0]
    assert "posts" in body["includes"] and "referenced_posts" in body["data"][0]
    assert body["errors"][0]["type"].startswith("https://api.x.com/2/problems/")
    rows = by_id(out.tweets)
    assert rows["102"]["text"].startswith("A long original")
    assert rows["104"]["text"].endswith("@carol") and rows["103"]["edit_history_tweet_ids"] == ["103"]
    assert by_id(out.unavailable)["110"]["status"] == "not_found"


@pytest.mark.slow
def test_429_with_reset_waits_for_the_window(tmp_path):
    with MockXApi(TWEETS, token=TOKEN, rate_limit=100, window_s=1, script=["429"]) as api:
        start = time.monotonic()
        out = lookup(api, tmp_path, ["101"])
    assert api.status_log == [429, 200] and out.rate_limited == 1
    assert [r["tweet_id"] for r in out.tweets] == ["101"]
    assert 0.9 <= out.waited_s <= 3.5 and time.monotonic() - start < 5


def test_429_without_reset_backs_off(tmp_path):
    with MockXApi(TWEETS, token=TOKEN, script=["429-noreset", "429-noreset"]) as api:
        out = lookup(api, tmp_path, ["101"])
    assert api.status_log == [429, 429, 200] and out.retries == 2 and len(out.tweets) == 1


@pytest.mark.parametrize("kwargs", [{"script": ["usage-cap"]}, {"usage_cap": 0}])
def test_usage_cap_is_fatal(tmp_path, kwargs):
    with MockXApi(TWEETS, token=TOKEN, rate_limit=300, **kwargs) as api:
        with pytest.raises(FatalApiError, match="usage cap"):
            lookup(api, tmp_path, ["101"])
    assert api.status_log == [429]  # no retry


def test_503_then_success(tmp_path):
    with MockXApi(TWEETS, token=TOKEN, script=["503"]) as api:
        out = lookup(api, tmp_path, ["101", "110"])
    assert api.status_log == [503, 200] and out.retries == 1 and settled(out) == {"101", "110"}


def test_non_json_502_and_truncated_json_retry(tmp_path):
    with MockXApi(TWEETS, token=TOKEN, script=["502-html", "truncated"]) as api:
        out = lookup(api, tmp_path, ["101"])
    assert api.status_log == [502, 200, 200] and out.retries == 2 and len(out.tweets) == 1


def test_persistent_5xx_fails_after_bounded_retries(tmp_path):
    with MockXApi(TWEETS, token=TOKEN, faults={"502-html": 1.0}) as api:
        out = lookup(api, tmp_path, ["101", "102"], max_retries=2)
    assert len(api.request_log) == 3 and out.tweets == []
    row = by_id(out.unavailable)["101"]
    assert (row["status"], row["problem_type"], row["http_status"]) == ("failed", "server-error", 502)
    assert "gave up after 3 attempts" in row["detail"]


def test_400_bisects_to_the_bad_id(tmp_path):
    statuses = {"103": "invalid"}
    with MockXApi(TWEETS, statuses=statuses, token=TOKEN) as api:
        out = lookup(api, tmp_path, ALL_OK)
    assert {r["tweet_id"] for r in out.tweets} == set(ALL_OK) - {"103"}
    bad = by_id(out.unavailable)["103"]
    assert (bad["status"], bad["problem_type"], bad["http_status"]) == ("failed", "invalid-request", 400)
    assert api.request_log[0] == ALL_OK and ["103"] in api.request_log and len(api.request_log) <= 7


def test_401_is_fatal_and_silent_about_the_token(api, tmp_path):
    with XClient(config(api, tmp_path), "wrong-token") as client, pytest.raises(FatalApiError) as info:
        client.lookup(["101"])
    assert "401" in str(info.value) and "wrong-token" not in str(info.value)


def test_403_client_forbidden_is_fatal(tmp_path):
    with (
        MockXApi(TWEETS, token=TOKEN, script=["403"]) as api,
        pytest.raises(FatalApiError, match="Client Forbidden"),
    ):
        lookup(api, tmp_path, ["101"])


def test_more_than_100_ids_rejected_before_sending(api, tmp_path):
    with pytest.raises(ValueError, match="at most 100"):
        lookup(api, tmp_path, [str(i) for i in range(1, 102)])
    assert api.request_log == []


def test_duplicates_collapse_and_malformed_ids_are_never_sent(api, tmp_path):
    out = lookup(api, tmp_path, ["101", " 101", "1.01e+02", "abc"])
    assert api.request_log == [["101"]]
    assert {r["tweet_id"]: r["status"] for r in out.unavailable} == {
        "1.01e+02": "invalid_id",
        "abc": "invalid_id",
    }


def test_timeout_reaches_the_transport(tmp_path):
    with MockXApi(TWEETS, token=TOKEN, faults={"slow": 1.0}, slow_s=1.5) as api:
        start = time.monotonic()
        out = lookup(api, tmp_path, ["101"], read_timeout=0.2, max_retries=1)
        elapsed = time.monotonic() - start
    row = out.unavailable[0]
    assert (row["status"], row["problem_type"]) == ("failed", "timeout") and "ReadTimeout" in row["title"]
    assert len(api.request_log) == 2 and elapsed < 1.4  # two 0.2 s timeouts, not two 1.5 s waits


def test_token_never_logged(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with MockXApi(TWEETS, statuses=STATUSES, token=TOKEN, script=["503", "429-noreset"]) as api:
        with XClient(config(api, tmp_path), TOKEN) as client:
            out = client.lookup(ALL_OK + ["110"])
            assert TOKEN not in repr(client)
            with pytest.raises(TypeError, match="not picklable"):
                __import__("pickle").dumps(client)
        with XClient(config(api, tmp_path), "bad-" + TOKEN) as client, pytest.raises(FatalApiError) as info:
            client.lookup(["101"])
    assert caplog.records, "DEBUG capture is active"
    assert TOKEN not in caplog.text and TOKEN not in str(info.value)
    assert TOKEN not in json.dumps(out.raw, default=str)
    assert logging.getLogger("tweepy").getEffectiveLevel() >= logging.INFO


def test_bad_field_configuration_is_fatal(api, tmp_path):
    with pytest.raises(FatalApiError, match="tweet.fields"):
        lookup(api, tmp_path, ["101", "102"], tweet_fields=("id", "text", "txet"))
    assert len(api.request_log) == 1  # no bisection on a configuration error


def test_connection_refused_fails_after_retries(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ClientConfig(
        base_url=f"http://127.0.0.1:{port}", backoff_base=0.01, max_retries=2, pacing_dir=str(tmp_path)
    )
    with XClient(config, TOKEN) as client:
        out = client.lookup(["101"])
    row = out.unavailable[0]
    assert (row["status"], row["problem_type"], out.requests) == ("failed", "connection-error", 3)


def test_adapter_injects_timeouts_and_rewrites_the_host(monkeypatch, tmp_path):
    from requests.adapters import HTTPAdapter

    seen = {}

    def fake_send(self, request, **kwargs):
        seen.update(url=request.url, timeout=kwargs["timeout"])
        raise __import__("requests").ConnectionError("stop here")

    monkeypatch.setattr(HTTPAdapter, "send", fake_send)
    config = ClientConfig(
        base_url="http://127.0.0.1:9",
        connect_timeout=1.5,
        read_timeout=7.0,
        max_retries=0,
        pacing_dir=str(tmp_path),
    )
    with XClient(config, TOKEN) as client:
        client.lookup(["101"])
    assert seen["timeout"] == (1.5, 7.0)
    assert seen["url"].startswith("http://127.0.0.1:9/2/tweets?") and "ids=101" in seen["url"]


def test_invalid_configuration_is_config_error():
    from twhin_data.core.errors import ConfigError

    for bad in (
        {"base_url": "api.x.com"},
        {"base_url": "https://api.x.com/2"},
        {"read_timeout": 0},
        {"tweet_fields": ("id", "organic_metrics")},
        {"max_concurrency": 0},
    ):
        with pytest.raises(ConfigError):
            ClientConfig(**bad).validate()


def test_fatal_messages_are_one_line():
    from twhin_data.xapi.transport import one_line

    assert (
        one_line("503 Service Unavailable\nService   Unavailable")
        == "503 Service Unavailable Service Unavailable"
    )
    assert len(one_line("x" * 1000)) == 300
