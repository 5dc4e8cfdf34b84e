"""kill -9 in the middle of a stage: the next consumer refuses the partial output, never reads it
as a whole dataset."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twhin_data.data import synth
from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.corpus import CORPUS
from twhin_data.schemas.tweets import TWEETS

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _kill_when(argv: list[str], ready, timeout_s: float = 120) -> None:
    """Starts `twhin-data argv` in its own process group and kills the whole group with SIGKILL as
    soon as `ready()` holds; fails if the command finished first."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "twhin_data", *argv],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    try:
        while not ready():
            assert proc.poll() is None, f"finished before the kill: {argv}"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _tweets(folder: Path, n: int) -> None:
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    rows = [{"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang")} for t in synth.generate_tweets(n, seed=3)]
    pq.write_table(to_table(rows, TWEETS), folder / "part-00000-of-00001.parquet")


def test_killed_prepare_leaves_a_corpus_that_shard_refuses(tmp_path, capsys):
    _tweets(tmp_path / "in" / "tweets", 20_000)
    out = tmp_path / "out"
    marker = out / "corpus" / "_INCOMPLETE"
    _kill_when(["prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}", "--workers=1"], marker.exists)
    assert marker.exists() and not (out / "corpus" / "_SUCCESS").exists()
    code = cli.main(["shard", f"--corpus={out / 'corpus'}", f"--output={tmp_path / 'shards'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "is incomplete: twhin-data prepare" in err
    assert not (tmp_path / "shards" / "COMPLETED").exists()
    # The documented rerun: --overwrite replaces the partial corpus, which shard then accepts.
    assert cli.main(["prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}", "--overwrite"]) == 0
    assert (out / "corpus" / "_SUCCESS").exists() and not marker.exists()


def test_killed_shard_leaves_nothing_load_dataset_reads(tmp_path):
    import datasets
    import pyarrow.parquet as pq

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = [
        {"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang") or "und", "normalizer": "test"}
        for t in synth.generate_tweets(30_000, seed=5)
    ]
    pq.write_table(to_table(rows, CORPUS), corpus / "part-00000-of-00001.parquet")
    out = tmp_path / "shards"
    staged = out / ".partial" / "mlm"

    def some_shard_written() -> bool:
        return staged.is_dir() and any(p.suffix == ".parquet" for p in staged.iterdir())

    argv = ["shard", f"--corpus={corpus}", f"--output={out}", "--workers=1", "--num_shards=8"]
    _kill_when(argv, some_shard_written)
    assert not (out / "COMPLETED").exists() and not (out / "mlm").exists()
    # Shards of an unfinished run sit under the hidden .partial/ (and tokens under .tmp_shard/).
    with pytest.raises(datasets.data_files.EmptyDatasetError):
        datasets.load_dataset(str(out))


def test_killed_graph_leaves_pairs_that_shard_refuses(tmp_path, capsys):
    import random

    rng = random.Random(1)
    lines = ["user_id,tweet_id,type,ts"]
    lines += [f"{u},{1000 + rng.randrange(400)},fav,2022-01-01T00:00:00Z" for u in range(1, 4000) for _ in range(8)]
    (tmp_path / "eng.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "g"
    marker = out / "pairs" / "_INCOMPLETE"
    _kill_when(["graph", f"--engagements={tmp_path / 'eng.csv'}", f"--output={out}", "--min_per_tweet=1"], marker.exists)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    import pyarrow.parquet as pq

    rows = [{"tweet_id": "1001", "text": "hello world", "lang": "en", "normalizer": "test"}]
    pq.write_table(to_table(rows, CORPUS), corpus / "part-00000-of-00001.parquet")
    code = cli.main(["shard", f"--corpus={corpus}", f"--pairs={out / 'pairs'}", f"--output={tmp_path / 's'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "is incomplete: twhin-data graph" in err


def test_killed_benchmark_leaves_nothing_load_dataset_reads(tmp_path):
    import datasets

    from tests.benchmark.fixtures import SAMPLE, hydrate_sample

    hydrated = hydrate_sample(tmp_path / "hydrated")
    out = tmp_path / "bench"
    staged = out / ".partial"

    def some_file_written() -> bool:
        return staged.is_dir() and any(p.suffix == ".parquet" for p in staged.rglob("*"))

    argv = ["benchmark", "hashtag", f"--labels={SAMPLE / 'sample_hashtag_labels.csv'}", f"--tweets={hydrated}",
            f"--output={out}"]  # fmt: skip
    _kill_when(argv, some_file_written)
    assert not (out / "README.md").exists() and not (out / "manifest.json").exists()
    with pytest.raises((datasets.data_files.EmptyDatasetError, datasets.exceptions.DataFilesNotFoundError)):
        datasets.load_dataset(str(out))


def test_a_second_run_on_the_same_output_is_refused_and_the_first_finishes(tmp_path, capsys):
    _tweets(tmp_path / "in" / "tweets", 20_000)
    out = tmp_path / "out"
    first = subprocess.Popen(
        [sys.executable, "-m", "twhin_data", "prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}", "--workers=1"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out / ".twhin-data.lock").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        code = cli.main(["prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}", "--overwrite"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.count("\n") == 0 and "is being written by twhin-data prepare" in err
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
        first.wait()
    assert (out / "corpus" / "_SUCCESS").exists() and not (out / "corpus" / "_INCOMPLETE").exists()
    assert not (out / ".twhin-data.lock").exists()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_prepare_killed_at_a_random_moment_is_complete_or_refused(tmp_path, capsys, seed):
    import random

    _tweets(tmp_path / "in" / "tweets", 20_000)
    out = tmp_path / "out"
    delay = random.Random(seed).uniform(0.5, 6.0)  # start-up to well past the first corpus part
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "twhin_data", "prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}", "--workers=2"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    while proc.poll() is None and time.monotonic() - started < delay:
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its pool must not live on
    proc.wait()
    code = cli.main(["shard", f"--corpus={out / 'corpus'}", f"--output={tmp_path / 'shards'}", "--workers=1"])
    err = capsys.readouterr().err
    if (out / "corpus" / "_SUCCESS").exists():
        assert code == 0 and (tmp_path / "shards" / "COMPLETED").exists()
    else:
        assert code == 2 and ("is incomplete" in err or "no input files match" in err), err
        assert not (tmp_path / "shards" / "COMPLETED").exists()
