"""Live progress: a bar with rate and ETA on a terminal (a real pseudo-terminal here), log lines
without one."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from twhin_data.data import synth
from twhin_data.schemas import to_table
from twhin_data.schemas.corpus import CORPUS
from twhin_data.schemas.tweets import TWEETS

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
#: A tqdm frame with a total and an ETA: "prepare:  35%|███▌  | 70.0k/200k [00:09<00:16, 7.0k tweets/s]".
BAR = re.compile(r"(\d+)%\|.*\| [\d.]+k?/[\d.]+k? \[\d\d:\d\d<\d\d:\d\d")


def _in_terminal(argv: list[str], timeout_s: float = 300) -> str:
    """Runs `twhin-data argv` on a 120x40 pseudo-terminal; returns what it drew."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "twhin_data", *argv], cwd=REPO, stdout=child, stderr=child)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child side closed
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=timeout_s) == 0, b"".join(chunks)[-2000:]
    os.close(main)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _percentages(drawn: str, stage: str) -> list[int]:
    return [int(m.group(1)) for line in drawn.split("\r") if line.lstrip().startswith(f"{stage}:") for m in [BAR.search(line)] if m]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("progress")
    tweets = synth.generate_tweets(60_000, seed=8)
    (base / "in" / "tweets").mkdir(parents=True)
    rows = [{"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang")} for t in tweets]
    pq.write_table(to_table(rows, TWEETS), base / "in" / "tweets" / "part-00000-of-00001.parquet")
    (base / "corpus").mkdir()
    corpus = [{"tweet_id": r["tweet_id"], "text": r["text"], "lang": r["lang"] or "und", "normalizer": "t"} for r in rows]
    for i in range(4):  # several files: the bar moves file by file at least
        pq.write_table(to_table(corpus[i::4], CORPUS), base / "corpus" / f"part-{i:05d}-of-00004.parquet")
    lines = ["user_id,tweet_id,type,ts"] + [f"{u},{rows[(u * 7 + k) % len(rows)]['tweet_id']},fav," for u in range(1, 20_001) for k in range(10)]
    (base / "eng.csv").write_text("\n".join(lines) + "\n")
    return base


def test_prepare_draws_a_moving_bar_with_eta_on_a_terminal(inputs, tmp_path):
    drawn = _in_terminal(["prepare", f"--tweets={inputs / 'in'}", f"--output={tmp_path}", "--workers=2"])
    seen = _percentages(drawn, "prepare")
    assert seen[-1] == 100 and len(set(seen)) >= 3, seen  # it moved, it finished


def test_shard_and_graph_draw_bars_with_eta(inputs, tmp_path):
    drawn = _in_terminal(["shard", f"--corpus={inputs / 'corpus'}", f"--output={tmp_path / 's'}", "--workers=2"])
    seen = _percentages(drawn, "shard")
    assert seen[-1] == 100 and len(set(seen)) >= 2, seen
    drawn = _in_terminal(["graph", f"--engagements={inputs / 'eng.csv'}", f"--output={tmp_path / 'g'}"])
    assert _percentages(drawn, "graph")[-1] == 100


def test_a_benchmark_draws_a_bar(tmp_path):
    from tests.benchmark.fixtures import SAMPLE, hydrate_sample

    hydrated = hydrate_sample(tmp_path / "hydrated")
    labels = SAMPLE / "sample_hashtag_labels.csv"
    drawn = _in_terminal(["benchmark", "hashtag", f"--labels={labels}", f"--tweets={hydrated}", f"--output={tmp_path / 'b'}"])
    assert _percentages(drawn, "benchmark_hashtag")[-1] == 100


def test_without_a_terminal_progress_is_log_lines(inputs, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "twhin_data", "prepare", f"--tweets={inputs / 'in'}", f"--output={tmp_path}", "--workers=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if "twhin_data.progress" in line]
    assert lines and "\r" not in done.stderr
    assert re.search(r"prepare: 60,000/60,000 tweets \(100\.0%\), [\d,]+ tweets/s, [\d.]+ s elapsed, ETA 0 s$", lines[-1])


def test_hydrate_bar_counts_down_a_rate_limit_wait_and_ends_at_its_total(tmp_path):
    """The mock X API allows 2 requests per 2.5 s window: the bar says how long the wait lasts,
    second by second, and ends at 100% of the IDs it requested."""
    from tests.hydrate.test_command import TOKEN, make_corpus
    from twhin_data.xapi.mock.server import MockXApi

    ids, store, statuses = make_corpus(500, seed=5)
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    os.environ["X_BEARER_TOKEN"] = TOKEN
    with MockXApi(store, statuses=statuses, token=TOKEN, rate_limit=2, window_s=2.5) as mock:
        argv = ["hydrate", f"--ids={tmp_path / 'ids.txt'}", f"--api_base_url={mock.base_url}"]
        drawn = _in_terminal([*argv, f"--output={tmp_path / 'out'}", f"--pacing_dir={tmp_path / 'pacing'}"])
    assert re.search(r"X API wait: 0:0\d left", drawn), drawn[-3000:]
    assert _percentages(drawn, "hydrate")[-1] == 100
    assert "500/500" in drawn.replace("\x1b[K", "")
    assert "INFO" not in "".join(line for line in drawn.split("\r") if BAR.search(line))  # no log text in a bar
