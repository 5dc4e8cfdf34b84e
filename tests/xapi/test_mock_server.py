"""The mock X API over real HTTP: response shape, auth, limits, faults, cassettes, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from twhin_data.core.errors import ConfigError
from twhin_data.xapi.client import ClientConfig, XClient
from twhin_data.xapi.mock.server import MockXApi

TOKEN = "mock-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TWEETS = [
    {"id": "1", "text": "one", "lang": "en", "author_id": "5", "edit_history_tweet_ids": ["1"]},
    {
        "id": "2",
        "text": "RT @a: one",
        "lang": "en",
        "referenced_tweets": [{"type": "retweeted", "id": "1"}],
        "edit_history_tweet_ids": ["2"],
    },
    {
        "id": "3",
        "text": "quote",
        "referenced_tweets": [{"type": "quoted", "id": "4"}],
        "edit_history_tweet_ids": ["3"],
    },
]


def get(api, params, headers=AUTH, path="/2/tweets"):
    return requests.get(api.base_url + path, params=params, headers=headers, timeout=5)


def test_default_fields_only_and_requested_fields(tmp_path):
    with MockXApi(TWEETS, token=TOKEN) as api:
        plain = get(api, {"ids": "1"}).json()
        rich = get(
            api, {"ids": "1,2,3", "tweet.fields": "lang,author_id", "expansions": "referenced_tweets.id"}
        ).json()
        single = get(api, {}, path="/2/tweets/1").json()
    assert plain == {"data": [{"id": "1", "text": "one", "edit_history_tweet_ids": ["1"]}]}
    assert rich["data"][0] == {"id": "1", "text": "one", "lang": "en", "author_id": "5"}
    assert [t["id"] for t in rich["includes"]["tweets"]] == ["1"]
    (problem,) = rich["errors"]  # the quoted tweet 4 does not exist: an includes error, not an ids one
    assert (problem["parameter"], problem["section"], problem["resource_id"]) == (
        "referenced_tweets.id",
        "includes",
        "4",
    )
    assert single["data"]["id"] == "1"


def test_errors_for_deleted_and_protected():
    with MockXApi(TWEETS, statuses={"1": "protected", "2": "deleted"}, token=TOKEN) as api:
        body = get(api, {"ids": "1,2,9"}).json()
    assert "data" not in body
    types = {e["resource_id"]: e["type"].rsplit("/", 1)[1] for e in body["errors"]}
    assert types == {"1": "not-authorized-for-resource", "2": "resource-not-found", "9": "resource-not-found"}
    assert all(e["parameter"] == "ids" for e in body["errors"])


def test_auth_and_invalid_requests():
    with MockXApi(TWEETS, token=TOKEN) as api:
        assert get(api, {"ids": "1"}, headers={}).status_code == 401
        assert get(api, {"ids": "1"}, headers={"Authorization": "Bearer nope"}).status_code == 401
        too_many = get(api, {"ids": ",".join(str(i) for i in range(1, 102))})
        bad = get(api, {"ids": "1,abc"})
        assert api.request_log == [[str(i) for i in range(1, 102)], ["1", "abc"]]  # 401s never logged
    assert too_many.status_code == 400 and bad.status_code == 400
    assert bad.json()["errors"][0]["parameters"] == {"ids": ["abc"]}
    assert bad.json()["type"].endswith("/invalid-request")


def test_rate_limit_headers_and_429():
    with MockXApi(TWEETS, token=TOKEN, rate_limit=2, window_s=60) as api:
        answers = [get(api, {"ids": "1"}) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert (
        api.status_log == [200, 200, 429] and len(api.time_log) == 3 and api.time_log == sorted(api.time_log)
    )
    assert [r.headers["x-rate-limit-remaining"] for r in answers] == ["1", "0", "0"]
    assert answers[0].headers["x-rate-limit-limit"] == "2"
    assert int(answers[2].headers["x-rate-limit-reset"]) - time.time() <= 60


def test_faults_are_seeded_and_deterministic():
    def statuses(seed):
        with MockXApi(TWEETS, token=TOKEN, faults={"503": 0.3, "502-html": 0.2}, seed=seed) as api:
            return [get(api, {"ids": str(1 + i % 3)}).status_code for i in range(30)]

    first = statuses(7)
    assert first == statuses(7) and set(first) == {200, 502, 503}
    assert first != statuses(8)


@pytest.mark.parametrize(
    "fault,status,check",
    [
        ("429-noreset", 429, lambda r: "x-rate-limit-reset" not in r.headers),
        (
            "429",
            429,
            lambda r: r.headers["x-rate-limit-remaining"] == "0" and "x-rate-limit-reset" in r.headers,
        ),
        ("usage-cap", 429, lambda r: r.json()["title"] == "UsageCapExceeded"),
        ("403", 403, lambda r: r.json()["type"].endswith("/client-forbidden")),
        ("502-html", 502, lambda r: r.text.startswith("<html>")),
        ("truncated", 200, lambda r: pytest.raises(ValueError, r.json) is not None),
    ],
)
def test_scripted_faults(fault, status, check):
    with MockXApi(TWEETS, token=TOKEN, rate_limit=50, script=[fault]) as api:
        answer = get(api, {"ids": "1,2"})
        after = get(api, {"ids": "1,2"})
    assert answer.status_code == status and check(answer) and after.status_code == 200


def test_slow_fault_outlasts_a_timeout():
    with MockXApi(TWEETS, token=TOKEN, script=["slow"], slow_s=0.6) as api:
        with pytest.raises(requests.Timeout):
            requests.get(api.base_url + "/2/tweets", params={"ids": "1"}, headers=AUTH, timeout=(1, 0.2))


def test_post_vocabulary_spellings():
    with MockXApi(TWEETS, statuses={"9": "deleted"}, token=TOKEN, post_vocabulary=True) as api:
        body = get(
            api,
            {
                "ids": "2,9",
                "post.fields": "referenced_posts,edit_history_post_ids",
                "expansions": "referenced_tweets.id",
            },
        ).json()
    assert body["data"][0]["referenced_posts"] == [{"type": "retweeted", "id": "1"}]
    assert "edit_history_post_ids" in body["data"][0] and "posts" in body["includes"]
    assert body["errors"][0]["type"] == "https://api.x.com/2/problems/resource-not-found"


def test_parquet_store_in_tweets_schema(tmp_path):
    path = tmp_path / "tweets.parquet"
    pq.write_table(pa.Table.from_pylist([{"tweet_id": "77", "raw_text": "a &amp; b", "lang": "fr"}]), path)
    with MockXApi(path, token=TOKEN) as api:
        body = get(api, {"ids": "77", "tweet.fields": "lang"}).json()
    assert body["data"] == [{"id": "77", "text": "a &amp; b", "lang": "fr"}]


def test_bad_configuration_is_one_line_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown mock faults"):
        MockXApi(TWEETS, faults={"boom": 0.1})
    with pytest.raises(ConfigError, match="unknown mock statuses"):
        MockXApi(TWEETS, statuses={"1": "gone"})
    with pytest.raises(ConfigError, match="not found"):
        MockXApi(tmp_path / "nope.jsonl")


def test_bundled_sample_is_served(sample_dir):
    tweets, statuses = sample_dir / "sample_tweets.jsonl", sample_dir / "sample_status.json"
    if not tweets.is_file() or not statuses.is_file():
        pytest.skip("bundled sample not generated in this checkout")
    status_map = json.loads(statuses.read_text())
    with MockXApi(tweets, statuses=statuses, token=TOKEN) as api:
        ids = list(api.store)[:60] + list(status_map)[:20]
        with XClient(ClientConfig(base_url=api.base_url, pacing_dir=None), TOKEN) as client:
            out = client.lookup(ids[:100])
    assert len(out.tweets) + len(out.unavailable) == len(set(ids))
    assert {r["status"] for r in out.unavailable} <= {"not_found", "not_authorized"}


def test_cassette_replay(cassettes_dir, tmp_path):
    with MockXApi(token=TOKEN, cassettes=cassettes_dir) as api:
        recorded = get(api, {"ids": "1293593516040269825,1293595870563381249"})
        assert recorded.headers["x-rate-limit-limit"] == "300" and recorded.headers["api-version"] == "2.52"
        assert [t["id"] for t in recorded.json()["data"]] == ["1293593516040269825", "1293595870563381249"]
        assert len(api.store) >= 300  # every v2 cassette's tweets are served too
        some = sorted(api.store)[:100]
        with XClient(ClientConfig(base_url=api.base_url, pacing_dir=str(tmp_path)), TOKEN) as client:
            out = client.lookup(some)
    assert len(out.tweets) == 100 and out.unavailable == []
    assert all(r["text"] and r["edit_history_tweet_ids"] for r in out.tweets)
    # The exact recorded 2022 response (gzip body from the cassette) through tweepy and the parser.
    with MockXApi(token=TOKEN, cassettes=cassettes_dir) as api:
        config = ClientConfig(base_url=api.base_url, tweet_fields=(), expansions=(), pacing_dir=str(tmp_path))
        with XClient(config, TOKEN) as client:
            real = client.lookup(["1293593516040269825", "1293595870563381249"])
    assert api.query_log[0] == {"ids": "1293593516040269825,1293595870563381249"}
    assert real.raw[0]["__twhin"]["api_version"] == "2.52"  # the recorded response, headers included
    assert [r["tweet_id"] for r in real.tweets] == ["1293593516040269825", "1293595870563381249"]
    assert all(r["text"] and r["lang"] is None for r in real.tweets)  # default fields only: no lang


@pytest.mark.slow
def test_cli_serves_until_interrupted(tmp_path):
    tweets = tmp_path / "t.jsonl"
    tweets.write_text("\n".join(json.dumps(t) for t in TWEETS) + "\n")
    env = {**os.environ, "X_BEARER_TOKEN": TOKEN}
    cmd = [
        sys.executable,
        "-m",
        "twhin_data",
        "mock-api",
        "--tweets",
        str(tweets),
        "--port",
        "0",
        "--token_from_env",
        "--rate_limit",
        "5",
        "--fault",
        "503=0",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).resolve().parents[2])
    try:
        line = proc.stdout.readline()
        base_url = line.split(" at ")[1].split()[0]
        answer = requests.get(base_url + "/2/tweets", params={"ids": "1"}, headers=AUTH, timeout=5)
        assert answer.status_code == 200 and answer.headers["x-rate-limit-remaining"] == "4"
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "served 1 requests" in out


def test_cli_flag_errors_are_one_line(capsys):
    from twhin_data.runners.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["mock-api", "--fault", "boom=0.5"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "unknown fault 'boom'" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["mock-api", "--help"])
    helped = capsys.readouterr().out
    for flag in (
        "--tweets",
        "--statuses",
        "--cassettes",
        "--rate_limit",
        "--window_s",
        "--fault",
        "--fault_seed",
        "--slow_s",
        "--usage_cap",
        "--post_vocabulary",
        "--token_from_env",
    ):
        assert flag in helped
    assert main(["mock-api", "--port", "0", "--unknown_flag"]) == 2
    err = capsys.readouterr().err
    assert "--unknown_flag" in err and len(err.strip().splitlines()) == 1
