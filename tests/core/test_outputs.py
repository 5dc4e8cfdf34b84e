"""Completion markers, the output lock and pool children that die with their job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.lock import LOCK, OutputLock

REPO = Path(__file__).resolve().parents[2]


def _part(folder: Path, name: str, rows: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"tweet_id": [str(i + 1) for i in range(rows)]}), folder / name)


def test_markers_refuse_an_unfinished_folder_and_record_a_finished_one(tmp_path):
    corpus = tmp_path / "corpus"
    files.begin_output(str(corpus), "prepare")
    _part(corpus, "part-00000-of-00002.parquet", 3)
    with pytest.raises(ConfigError, match=r"incomplete: twhin-data prepare is still writing it, or was killed"):
        files.expand_inputs(str(corpus), suffixes=(".parquet",))
    with pytest.raises(ConfigError, match="incomplete"):  # a glob inside it too
        files.expand_inputs(str(corpus / "*.parquet"), suffixes=(".parquet",))
    _part(corpus, "part-00001-of-00002.parquet", 2)
    record = files.finish_output(str(corpus), "prepare")
    assert record == {"stage": "prepare", "rows": 5, "files": {"part-00000-of-00002.parquet": 3, "part-00001-of-00002.parquet": 2}}
    assert json.loads((corpus / files.SUCCESS).read_text()) == record
    assert not (corpus / files.INCOMPLETE).exists()
    assert len(files.expand_inputs(str(corpus), suffixes=(".parquet",))) == 2
    files.begin_output(str(corpus), "prepare")  # a new run: the old _SUCCESS goes first
    assert not (corpus / files.SUCCESS).exists() and (corpus / files.INCOMPLETE).exists()


def test_folders_without_markers_are_read_as_before(tmp_path):
    _part(tmp_path / "mine", "part-00000-of-00001.parquet", 1)  # a user's own files
    assert len(files.expand_inputs(str(tmp_path / "mine"), suffixes=(".parquet",))) == 1


def test_publish_moves_a_staged_folder_into_place(tmp_path):
    _part(tmp_path / ".partial" / "mlm", "train-00000-of-00001.parquet", 2)
    _part(tmp_path / "mlm", "stale.parquet", 1)
    files.publish(str(tmp_path / ".partial" / "mlm"), str(tmp_path / "mlm"))
    assert sorted(p.name for p in (tmp_path / "mlm").iterdir()) == ["train-00000-of-00001.parquet"]
    assert not (tmp_path / ".partial" / "mlm").exists()


def test_lock_is_exclusive_reentrant_and_taken_over_when_stale(tmp_path):
    out = str(tmp_path / "out")
    with OutputLock(out, "prepare"):
        holder = json.loads((tmp_path / "out" / LOCK).read_text())
        assert holder["pid"] == os.getpid() and holder["command"] == "prepare"
        with OutputLock(out, "prepare"):  # the same process: re-entrant
            pass
        assert (tmp_path / "out" / LOCK).exists()
    assert not (tmp_path / "out" / LOCK).exists()
    # A lock whose holder is gone is stale and taken over.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = {"host": os.uname().nodename, "pid": int(dead.stdout), "started": "2026-01-01T00:00:00Z", "command": "graph"}
    (tmp_path / "out" / LOCK).write_text(json.dumps(stale))
    with OutputLock(out, "prepare"):
        assert json.loads((tmp_path / "out" / LOCK).read_text())["pid"] == os.getpid()


def test_a_second_writer_gets_a_one_line_error(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from twhin_data.core.lock import OutputLock
            with OutputLock({str(out)!r}, "shard"):
                print("held", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError) as info:
            with OutputLock(str(out), "prepare"):
                pass
        message = str(info.value)
        assert "\n" not in message and "twhin-data shard" in message and f"pid {holder.pid}" in message
    finally:
        holder.kill()
        holder.wait()


def test_cli_refuses_an_output_held_by_another_run(tmp_path, capsys):
    from twhin_data.runners import cli

    (tmp_path / "out").mkdir()
    other = {"host": os.uname().nodename, "pid": os.getppid(), "started": "2026-01-01T00:00:00Z", "command": "prepare"}
    (tmp_path / "out" / LOCK).write_text(json.dumps(other))  # our parent (pytest's) is alive
    code = cli.main(["prepare", "--tweets", str(tmp_path), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "is being written by twhin-data prepare" in err


def test_output_naming_a_file_is_a_one_line_error(tmp_path, capsys):
    from twhin_data.runners import cli

    (tmp_path / "out").write_text("not a folder")
    code = cli.main(["prepare", "--tweets", str(tmp_path), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "is a file, not a folder" in err


@pytest.mark.slow
def test_pool_children_die_with_a_killed_job(tmp_path):
    """Busy children too: without the parent-death signal and the watch they finish their task."""
    script = textwrap.dedent("""
        import os, sys, time
        from twhin_data.core import pool
        p = pool.make_pool(2)
        pids = sorted(p._processes)  # make_pool starts every child up front
        busy = [p.submit(time.sleep, 60) for _ in range(2)]  # both children in the middle of a task
        time.sleep(0.5)
        import multiprocessing.forkserver as fs
        print(" ".join(map(str, pids + [fs._forkserver._forkserver_pid])), flush=True)
        time.sleep(120)
    """)
    job = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    children = [int(x) for x in job.stdout.readline().split()]
    assert len(children) == 3
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    deadline = time.monotonic() + 5
    from twhin_data.core.pool import _alive

    while time.monotonic() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.1)
    assert [pid for pid in children if _alive(pid)] == []
