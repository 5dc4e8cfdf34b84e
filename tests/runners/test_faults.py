"""Faults a user meets end in one line (exit 2 for a mistake, 1 for the environment) or a dead
letter for a bad record: damaged or garbage Parquet, bytes that are not UTF-8, a full disk, a
read-only output, a stage that rejects everything."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from twhin_data.data import synth
from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.corpus import CORPUS
from twhin_data.schemas.tweets import TWEETS

pytestmark = pytest.mark.slow


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def _damage(path: Path, column: str) -> None:
    """Overwrites bytes in the middle of `column`'s first data page (the footer stays readable)."""
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(0).column(meta.schema.names.index(column))
    data = bytearray(path.read_bytes())
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    middle = start + chunk.total_compressed_size // 2
    data[middle : middle + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))


def _tweets(folder: Path, n: int = 6000) -> Path:
    folder.mkdir(parents=True)
    rows = [{"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang")} for t in synth.generate_tweets(n, seed=3)]
    path = folder / "part-00000-of-00001.parquet"
    pq.write_table(to_table(rows, TWEETS), path, row_group_size=n // 2, compression="zstd")
    return path


def _corpus(folder: Path, n: int = 4000) -> Path:
    folder.mkdir(parents=True)
    rows = [
        {"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang") or "und", "normalizer": "test"}
        for t in synth.generate_tweets(n, seed=5)
    ]
    path = folder / "part-00000-of-00001.parquet"
    pq.write_table(to_table(rows, CORPUS), path, compression="zstd")
    return path


def test_damaged_pages_in_prepare_are_dead_letters_and_counted(tmp_path):
    _damage(_tweets(tmp_path / "in" / "tweets"), "text")
    out = tmp_path / "out"
    assert cli.main(["prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}", "--log_level=WARNING"]) == 0
    stats = json.loads((out / "reports" / "prepare" / "stats.json").read_text())
    assert stats["in"] == 6000 and stats["rejected"]["unreadable_parquet"] == 3000 and stats["balanced"]
    errors = pq.read_table(out / "errors" / "prepare").to_pylist()
    assert [e["error_type"] for e in errors if e["error_type"] == "unreadable_parquet"] == ["unreadable_parquet"]


def test_damaged_pages_in_shard_are_one_line(tmp_path, capsys):
    _damage(_corpus(tmp_path / "corpus"), "text")
    code = cli.main(["shard", f"--corpus={tmp_path / 'corpus'}", f"--output={tmp_path / 'shards'}"])
    err = _one_line(capsys)
    assert code == 1 and "row group 0 is unreadable" in err and "part-00000-of-00001.parquet" in err
    assert not (tmp_path / "shards" / "COMPLETED").exists()


@pytest.mark.parametrize("content", [b"", b"PAR1garbage", b"not parquet at all\n"])
def test_garbage_parquet_inputs_are_one_line(tmp_path, capsys, content):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "part-0.parquet").write_bytes(content)
    assert cli.main(["shard", f"--corpus={tmp_path / 'corpus'}", f"--output={tmp_path / 's'}"]) == 2
    assert "not a readable Parquet file" in _one_line(capsys)
    (tmp_path / "eng.parquet").write_bytes(content)
    assert cli.main(["graph", f"--engagements={tmp_path / 'eng.parquet'}", f"--output={tmp_path / 'g'}"]) == 2
    assert "eng.parquet" in _one_line(capsys)


def test_engagement_csv_with_bytes_that_are_not_utf8(tmp_path):
    rows = [f"{u},{t},fav,2022-01-0{1 + u % 5}T00:00:00Z" for u in range(1, 30) for t in range(1000, 1006)]
    data = ("user_id,tweet_id,type,ts\n" + "\n".join(rows) + "\n").encode() + b"7,10\xff01,fav,\n"
    (tmp_path / "eng.csv").write_bytes(data)
    out = tmp_path / "g"
    assert cli.main(["graph", f"--engagements={tmp_path / 'eng.csv'}", f"--output={out}", "--min_per_tweet=1"]) == 0
    errors = pq.read_table(out / "errors" / "graph").to_pylist()
    assert [e["error_type"] for e in errors] == ["invalid_utf8"]
    stats = json.loads((out / "reports" / "graph" / "stats.json").read_text())
    assert stats["accounting"]["in"] == len(rows) + 1 and stats["accounting"]["rejected"] == 1


def test_archive_lines_that_are_not_utf8_are_dead_letters(tmp_path):
    good = json.dumps({"id": "1001", "text": "hello", "lang": "en", "author_id": "7"})
    (tmp_path / "a.jsonl").write_bytes(good.encode() + b"\n" + b'{"id": "1002", "text": "caf\xe9"}\n')
    out = tmp_path / "h"
    assert cli.main(["hydrate", f"--archive={tmp_path / 'a.jsonl'}", f"--output={out}", "--log_level=WARNING"]) == 0
    errors = pq.read_table(out / "errors" / "hydrate").to_pylist()
    assert [e["error_type"] for e in errors] == ["invalid_utf8"]
    assert pq.read_table(out / "tweets").column("tweet_id").to_pylist() == ["1001"]


def test_a_stage_that_rejects_everything_fails_loudly(tmp_path, capsys):
    # User IDs that are not decimal IDs (hashed keys): every row is rejected.
    (tmp_path / "eng.csv").write_text("user_id,tweet_id,type\nabc,1001,fav\nxyz,1002,fav\n")
    code = cli.main(["graph", f"--engagements={tmp_path / 'eng.csv'}", f"--output={tmp_path / 'g'}"])
    err = _one_line(capsys)
    assert code == 1 and "graph rejected 2 of 2 input records" in err and "errors/graph/" in err


@contextlib.contextmanager
def _tmpfs(path: Path, options: str):
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'mount failed'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_is_one_line_and_leaves_no_temporary_files(tmp_path, capsys):
    _tweets(tmp_path / "in" / "tweets", 20_000)
    with _tmpfs(tmp_path / "small", "size=256k") as small:
        code = cli.main(["prepare", f"--tweets={tmp_path / 'in'}", f"--output={small / 'out'}", "--workers=1"])
        err = _one_line(capsys)
        assert code == 1 and "No space left on device" in err
        assert [p.name for p in small.rglob(".tmp-*")] == []
        # What was written is not a corpus: shard refuses it.
        code = cli.main(["shard", f"--corpus={small / 'out' / 'corpus'}", f"--output={tmp_path / 'shards'}"])
        assert code == 2 and not (tmp_path / "shards" / "COMPLETED").exists()
        capsys.readouterr()


def test_a_read_only_output_is_one_line(tmp_path, capsys):
    _tweets(tmp_path / "in" / "tweets", 100)
    with _tmpfs(tmp_path / "ro", "ro,size=64k") as ro:
        code = cli.main(["prepare", f"--tweets={tmp_path / 'in'}", f"--output={ro / 'out'}"])
        err = _one_line(capsys)
        assert code == 1 and "Read-only file system" in err


def test_shard_of_a_corpus_whose_every_text_is_blank_fails_loudly(tmp_path, capsys):
    (tmp_path / "corpus").mkdir()
    rows = [{"tweet_id": str(1000 + i), "text": "  ", "lang": "en", "normalizer": "t"} for i in range(3)]
    pq.write_table(to_table(rows, CORPUS), tmp_path / "corpus" / "part-00000-of-00001.parquet")
    code = cli.main(["shard", f"--corpus={tmp_path / 'corpus'}", f"--output={tmp_path / 's'}"])
    err = _one_line(capsys)
    assert code == 1 and "shard rejected 3 of 3 input records" in err
