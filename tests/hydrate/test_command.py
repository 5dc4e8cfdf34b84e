"""End-to-end hydration through the CLI against the mock X API over real HTTP (tweepy inside)."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.runners.cli import main
from twhin_data.xapi.mock.server import MockXApi

#: Whole commands end to end: not in the fast suite (-m "not slow").
pytestmark = pytest.mark.slow

TOKEN = "h1b-test-token-Zq8xW3"
FAST = ["--backoff_base=0.01", "--backoff_cap=0.05", "--read_timeout=0.5", "--connect_timeout=0.5"]


def read_dir(path: Path):
    tables = [pq.read_table(p) for p in sorted(path.glob("*.parquet"))]
    return [row for t in tables for row in t.to_pylist()]


def make_corpus(n: int, *, seed: int = 7, missing: float = 0.1, protected: float = 0.02):
    """n distinct IDs: a store of API-shaped tweets, statuses for some, ~`missing` absent."""
    rng = random.Random(seed)
    ids = sorted({str(rng.randrange(10**17, 10**18)) for _ in range(n)})
    store, statuses = {}, {}
    for tweet_id in ids:
        draw = rng.random()
        if draw < missing:
            continue  # unknown to the server: not_found
        if draw < missing + protected:
            statuses[tweet_id] = "protected"
            continue
        store[tweet_id] = {
            "id": tweet_id,
            "text": f"tweet {tweet_id} &amp; more",
            "lang": "en",
            "edit_history_tweet_ids": [tweet_id],
        }
    return ids, store, statuses


def hydrate(
    tmp_path: Path, mock: MockXApi, ids_file: Path, *extra: str, out: str = "out"
) -> tuple[int, Path]:
    os.environ["X_BEARER_TOKEN"] = TOKEN
    output = tmp_path / out
    rc = main(
        [
            "hydrate",
            "--ids",
            str(ids_file),
            "--api_base_url",
            mock.base_url,
            "--output",
            str(output),
            *FAST,
            "--json",
            *extra,
        ]
    )
    return rc, output


def settled_ids(output: Path) -> tuple[list[str], list[dict]]:
    tweets = [r["tweet_id"] for r in read_dir(output / "tweets")]
    return tweets, read_dir(output / "unavailable")


def test_sample_end_to_end_accounts_for_every_line(tmp_path, sample_dir, capsys):
    lines = (sample_dir / "sample_ids.txt").read_text().splitlines()
    with MockXApi(
        sample_dir / "sample_tweets.jsonl", statuses=sample_dir / "sample_status.json", token=TOKEN
    ) as m:
        rc, out = hydrate(tmp_path, m, sample_dir / "sample_ids.txt")
        query = m.query_log[0]
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    tweets, unavailable = settled_ids(out)
    keys = tweets + [r["tweet_id"] for r in unavailable]
    assert len(keys) == len(set(keys)), "an ID appears twice across tweets and unavailable"
    stripped = [x.strip().strip("\"'") for x in lines if x.strip()]
    valid = {str(int(x)) for x in stripped if x.isdigit() and len(x) <= 19}
    assert valid <= set(keys)
    assert sum(summary["statuses"].values()) == len(keys) == summary["ids_settled"]
    assert summary["conservation_ok"] is True
    c = summary["conservation"]
    assert c["input_lines"] == c["blank_lines"] + c["valid_lines"] + c["invalid_lines"]
    assert c["valid_lines"] == c["distinct_ids"] + c["duplicate_ids"]
    assert summary["statuses"]["ok"] > 0 and summary["statuses"]["not_found"] > 0
    assert (out / "reports" / "hydrate" / "stats.json").is_file()
    assert read_dir(out / "errors" / "hydrate"), "invalid lines must be dead-lettered"
    # The request carries exactly the default fields and expansions.
    assert query["tweet.fields"].split(",") == [
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
    ]
    assert query["expansions"] == "referenced_tweets.id"
    assert not (out / "_progress").exists()


def test_conservation_20k_with_duplicates_malformed_missing_and_faults(tmp_path):
    ids, store, statuses = make_corpus(20_000)
    rng = random.Random(3)
    lines = ids + rng.sample(ids, 2000)  # duplicates
    lines += ["12ab", "1.2345E+18", "", "  ", "99999999999999999999", "'123'"]
    rng.shuffle(lines)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(lines) + "\n")
    faults = {"500": 0.05, "503": 0.05, "502-html": 0.04, "truncated": 0.03, "429-noreset": 0.03}
    with MockXApi(store, statuses=statuses, token=TOKEN, seed=5, faults=faults) as m:
        rc, out = hydrate(tmp_path, m, ids_file, "--max_retries=8")
        requests = len(m.request_log)
    assert rc == 0
    tweets, unavailable = settled_ids(out)
    keys = tweets + [r["tweet_id"] for r in unavailable]
    assert len(keys) == len(set(keys))
    distinct = set(ids) | {"123"}
    invalid = {r["tweet_id"] for r in unavailable if r["status"] == "invalid_id"}
    assert set(keys) == distinct | invalid
    assert invalid == {"12ab", "1.2345E+18", "99999999999999999999"}
    assert set(tweets) == set(store)
    by_status = {}
    for row in unavailable:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    assert by_status.get("not_authorized") == len(statuses)
    assert by_status.get("failed", 0) == 0, "8 retries must outlast 20% faults"
    assert requests > len(distinct) / 100  # faults were retried
    stats = json.loads((out / "reports" / "hydrate" / "stats.json").read_text())
    assert stats["conservation_ok"] and stats["conservation"]["duplicate_ids"] == 2000


def test_token_never_in_logs_outputs_or_options(tmp_path, sample_dir, caplog, capfd):
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN + "\n")
    os.environ.pop("X_BEARER_TOKEN", None)
    caplog.set_level(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    captured_options = []
    from twhin_data.runners import launch

    original = launch.pipeline_options

    def spy(args, beam_args):
        options = original(args, beam_args)
        captured_options.append((options, vars(args).copy()))
        return options

    launch.pipeline_options = spy
    try:
        with MockXApi(
            sample_dir / "sample_tweets.jsonl", statuses=sample_dir / "sample_status.json", token=TOKEN
        ) as m:
            out = tmp_path / "out"
            rc = main(
                [
                    "hydrate",
                    "--ids",
                    str(sample_dir / "sample_ids.txt"),
                    "--api_base_url",
                    m.base_url,
                    "--output",
                    str(out),
                    "--bearer_token_file",
                    str(token_file),
                    "--log_level=DEBUG",
                    *FAST,
                ]
            )
    finally:
        launch.pipeline_options = original
    assert rc == 0
    text = caplog.text + "".join(capfd.readouterr())
    assert "GET" in text or "hydrate" in text  # logging was really captured
    assert TOKEN not in text
    for path in out.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    options, args = captured_options[0]
    assert TOKEN not in json.dumps(options.get_all_options(), default=str)
    assert TOKEN not in repr(args)


def test_max_reads_stops_before_budget_and_resume_continues(tmp_path):
    ids, store, statuses = make_corpus(1000, seed=11)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids))
    with MockXApi(store, statuses=statuses, token=TOKEN) as m:
        rc, out = hydrate(tmp_path, m, ids_file, "--max_reads=450")
        first = [i for batch in m.request_log for i in batch]
        assert rc == 0 and len(first) <= 450 and len(first) == 400
        _tweets, unavailable = settled_ids(out)
        budget = [r for r in unavailable if r["problem_type"] == "read-budget"]
        assert len(budget) == len(ids) - 400
        rc, out = hydrate(tmp_path, m, ids_file, "--resume")
        second = [i for batch in m.request_log[len(m.request_log) - 6 :] for i in batch]
    assert rc == 0
    assert not set(first) & set(second)
    tweets, unavailable = settled_ids(out)
    assert sorted(tweets + [r["tweet_id"] for r in unavailable]) == sorted(ids)
    assert not [r for r in unavailable if r["status"] == "failed"]


@pytest.mark.parametrize("script, words", [(["403"], "403"), (["usage-cap"], "sage")])
def test_forbidden_and_usage_cap_stop_the_job_with_one_line(tmp_path, capsys, script, words):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("1\n2\n")
    with MockXApi({"1": {"id": "1", "text": "x"}}, token=TOKEN, script=script) as m:
        rc, _out = hydrate(tmp_path, m, ids_file)
        assert len(m.request_log) == 1, "a fatal answer must not be retried"
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err


def test_fatal_401_is_one_line_and_existing_output_is_refused(tmp_path, sample_dir, capsys, caplog):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("1\n2\n")
    with MockXApi({}, token="another-token") as m:
        rc, out = hydrate(tmp_path, m, ids_file)
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("401" in err[0] or "nauthorized" in err[0]), err
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.exc_info]
    with MockXApi({}, token=TOKEN) as m:
        (out / "tweets").mkdir(parents=True, exist_ok=True)
        (out / "tweets" / "part-00000-of-00001.parquet").write_bytes(b"x")
        rc, _ = hydrate(tmp_path, m, ids_file)
        assert rc == 2 and "--resume" in capsys.readouterr().err
        rc, _ = hydrate(tmp_path, m, ids_file, "--overwrite")
        assert rc == 0


@pytest.mark.parametrize("flag", ["--batch_size=101", "--resume --overwrite", "--tweet_fields=Bad Field"])
def test_bad_flags_are_config_errors(tmp_path, flag, capsys):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("1\n")
    os.environ["X_BEARER_TOKEN"] = TOKEN
    rc = main(["hydrate", "--ids", str(ids_file), "--output", str(tmp_path / "o"), *flag.split(" ")])
    assert rc == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def _without_retrieved_at(rows: list[dict]) -> list[dict]:
    return sorted(
        ({k: v for k, v in r.items() if k != "retrieved_at"} for r in rows), key=lambda r: r["tweet_id"]
    )


def _progress_settled(output: Path) -> set[str]:
    [run] = list((output / "_progress").glob("run-*"))
    settled = {r["tweet_id"] for r in read_dir(run / "tweets")}
    terminal = ("not_found", "not_authorized", "unavailable")
    settled |= {r["tweet_id"] for r in read_dir(run / "unavailable") if r["status"] in terminal}
    return settled


def test_killed_run_resumes_without_rerequesting_settled_ids(tmp_path):
    import signal
    import subprocess
    import sys

    ids, store, statuses = make_corpus(2000, seed=21)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids))
    out = tmp_path / "killed"
    env = {**os.environ, "X_BEARER_TOKEN": TOKEN}
    with MockXApi(store, statuses=statuses, token=TOKEN, rate_limit=3, window_s=1.0) as m:
        cmd = [
            sys.executable,
            "-m",
            "twhin_data",
            "hydrate",
            "--ids",
            str(ids_file),
            "--api_base_url",
            m.base_url,
            "--output",
            str(out),
            "--pacing_dir",
            str(tmp_path / "pacing"),
            *FAST,
        ]
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline and len(list(out.glob("_progress/run-*/unavailable/*.parquet"))) < 6
        ):
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        settled = _progress_settled(out)
        before = len(m.request_log)
        assert 0 < len(settled) < len(ids)
        # Until the resumed run finishes, the killed run's output is refused by its consumers.
        assert (out / "tweets" / "_INCOMPLETE").exists()
        with pytest.raises(ConfigError, match="is incomplete: twhin-data hydrate"):
            files.expand_inputs(str(out / "tweets"), suffixes=(".parquet",))
        m.rate_limit = None  # the rest may go fast
        rc, _ = hydrate(tmp_path, m, ids_file, "--resume", out="killed")
        again = {i for batch in m.request_log[before:] for i in batch}
    assert rc == 0
    assert again, "the resumed run requested nothing"
    assert not settled & again, "a settled ID was requested again after the restart"
    with MockXApi(store, statuses=statuses, token=TOKEN) as m2:
        rc, full = hydrate(tmp_path, m2, ids_file, out="uninterrupted")
    assert rc == 0
    for name in ("tweets", "unavailable"):
        assert _without_retrieved_at(read_dir(out / name)) == _without_retrieved_at(read_dir(full / name))
        assert (out / name / "_SUCCESS").exists() and not (out / name / "_INCOMPLETE").exists()


def test_multi_processing_two_workers_share_the_window(tmp_path):
    ids, store, statuses = make_corpus(1500, seed=31)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids))
    window = 1.0
    with MockXApi(store, statuses=statuses, token=TOKEN, rate_limit=5, window_s=window) as m:
        rc, out = hydrate(
            tmp_path,
            m,
            ids_file,
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
            "--pacing_dir",
            str(tmp_path / "pacing"),
            "--reset_margin_s=0.05",
        )
        times = list(zip(m.time_log, m.status_log, strict=True))
    assert rc == 0
    first_window = int(times[0][0] // window)
    late_429 = [t for t, status in times if status == 429 and int(t // window) > first_window]
    assert late_429 == [], f"{len(late_429)} 429s after the first window"
    tweets, unavailable = settled_ids(out)
    assert sorted(tweets + [r["tweet_id"] for r in unavailable]) == sorted(ids)


def test_archive_rejects_api_only_flags(tmp_path, capsys):
    archive = tmp_path / "a.jsonl"
    archive.write_text('{"id": "1", "text": "x"}\n')
    rc = main(["hydrate", "--archive", str(archive), "--output", str(tmp_path / "o"), "--resume"])
    assert rc == 2 and "--resume and --max_reads apply to --ids" in capsys.readouterr().err


def test_two_runs_give_the_same_output_except_retrieved_at(tmp_path, sample_dir):
    outs = []
    for name in ("one", "two"):
        with MockXApi(
            sample_dir / "sample_tweets.jsonl", statuses=sample_dir / "sample_status.json", token=TOKEN
        ) as m:
            rc, out = hydrate(tmp_path, m, sample_dir / "sample_ids.txt", out=name)
        assert rc == 0
        outs.append(out)
    one, two = outs
    errors = sorted((one / "errors" / "hydrate").glob("*.parquet"))
    assert errors and [p.read_bytes() for p in errors] == [
        (two / "errors" / "hydrate" / p.name).read_bytes() for p in errors
    ]
    for name in ("tweets", "unavailable"):
        assert [p.name for p in sorted((one / name).glob("*.parquet"))] == [
            p.name for p in sorted((two / name).glob("*.parquet"))
        ]
        assert _without_retrieved_at(read_dir(one / name)) == _without_retrieved_at(read_dir(two / name))


def test_input_without_valid_ids_makes_no_request_and_empty_datasets(tmp_path, capsys):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n\nabc\n1e5\n")
    with MockXApi({}, token=TOKEN) as m:
        rc, out = hydrate(tmp_path, m, ids_file)
        assert m.request_log == []
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert (
        summary["statuses"]["invalid_id"] == 2 and summary["ids_settled"] == 2 and summary["conservation_ok"]
    )
    assert pq.read_table(out / "tweets").num_rows == 0
    assert pq.read_table(out / "unavailable").num_rows == 2


def test_exhausted_retries_give_failed_rows_that_resume_retries(tmp_path):
    ids = [str(i) for i in range(1, 251)]
    store = {i: {"id": i, "text": f"t{i}"} for i in ids}
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids))
    with MockXApi(store, token=TOKEN, script=["503", "502-html"]) as m:  # the first batch fails twice
        rc, out = hydrate(tmp_path, m, ids_file, "--max_retries=1")
        assert rc == 0
        tweets, unavailable = settled_ids(out)
        failed = sorted(r["tweet_id"] for r in unavailable if r["status"] == "failed")
        assert len(failed) == 100 and len(tweets) == 150
        assert {r["problem_type"] for r in unavailable} <= {"server-error"}
        before = len(m.request_log)
        rc, out = hydrate(tmp_path, m, ids_file, "--resume")
        again = sorted(i for batch in m.request_log[before:] for i in batch)
    assert rc == 0 and again == failed
    tweets, unavailable = settled_ids(out)
    assert sorted(tweets) == sorted(ids) and unavailable == []


def test_failed_ids_in_a_killed_runs_progress_are_retried(tmp_path):
    """A batch file holding `failed` rows (left by a killed run) is read as unsettled, not reused."""
    ids = [str(i) for i in range(1, 51)]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids))
    with MockXApi({i: {"id": i, "text": f"t{i}"} for i in ids}, token=TOKEN, script=["503", "503"]) as m:
        rc, out = hydrate(tmp_path, m, ids_file, "--max_retries=1")
        assert rc == 0
        # Simulate a kill after the batch was saved: put the run's results back as progress files.
        run = out / "_progress" / "run-killed"
        for name in ("tweets", "unavailable"):
            (run / name).mkdir(parents=True)
            for part in (out / name).glob("*.parquet"):
                part.rename(run / name / "batch-0000000000000000.parquet")
        before = len(m.request_log)
        rc, out = hydrate(tmp_path, m, ids_file, "--resume")
        assert len(m.request_log) == before + 1
    tweets, unavailable = settled_ids(out)
    assert rc == 0 and sorted(tweets) == sorted(ids) and unavailable == []
