"""`twhin-data comply` on a whole `twhin-data run` output: every removed tweet leaves every output,
files that held none keep their bytes, shards and benchmarks stay loadable and match their
manifests, a second run changes nothing, and an X compliance job (slow, failed, killed) works."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.comply.scan import inventory
from twhin_data.runners import cli

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
#: Files that describe or count the data rather than hold tweets: they change with the rows they
#: describe (manifests, cards, completion markers, label counts, user degrees, edge indices).
DERIVED = ("manifest.json", "README.md", "_SUCCESS", "COMPLETED", "labels.parquet")
DERIVED_PATHS = ("graph/users/", "graph/edges/")


@pytest.fixture(scope="module")
def run_output(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("comply") / "run"
    assert cli.main(["run", "--output", str(out), "--workers", "1", "--log_level", "WARNING"]) == 0
    return out


def _copy(run_output: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(run_output, out)
    return out


def _stored_ids(out: Path) -> list[str]:
    return sorted(pq.read_table(out / "tweets", columns=["tweet_id"]).column("tweet_id").to_pylist(), key=int)


def _comply(out: Path, *flags: str) -> int:
    return cli.main(["comply", "--output", str(out), "--log_level", "WARNING", "--date", "2026-12-01", *flags])


def _check_manifests(out: Path) -> None:
    import hashlib

    from datasets import load_dataset

    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    for entry in manifest["shards"]:
        path = out / "shards" / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry["file"]
        table = pq.read_table(path)
        assert table.num_rows == entry["rows"]
        if entry["dataset"] == "mlm":
            assert sum(len(t) for t in table.column("tweet_ids").to_pylist()) == entry["tweets"]
            for row in table.to_pylist():  # packed rows stay well formed
                assert len(row["input_ids"]) == row["num_tokens"] and row["tweet_offsets"][0] == 0
                assert len(row["tweet_offsets"]) == len(row["tweet_ids"]) == len(row["langs"])
                starts = [row["input_ids"][o] for o in row["tweet_offsets"]]
                assert set(starts) == {0}  # every offset is a tweet's <s>
    counts = manifest["counts"]
    for dataset, by_split in manifest["splits"].items():
        for split, entry in by_split.items():
            assert counts[f"{dataset}_rows_{split}"] == entry["rows"]
    assert (out / "shards" / "COMPLETED").is_file()
    # run writes two-stage shards: the default config is stage 1; the stages section follows comply
    assert len(load_dataset(str(out / "shards"))["train"]) == manifest["stages"]["stage1"]["mlm"]["train"]["rows"]
    assert manifest["stages"]["stage2"]["mlm"]["train"] == manifest["splits"]["mlm"]["stage2_train"]
    assert len(load_dataset(str(out / "shards"), "pairs")["train"]) == manifest["splits"]["pairs"]["train"]["rows"]
    for bench in ("hashtag", "engagement"):
        files = json.loads((out / "benchmarks" / bench / "manifest.json").read_text())["files"]
        for entry in files:
            path = out / "benchmarks" / bench / entry["path"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], entry["path"]
            assert pq.read_metadata(path).num_rows == entry["rows"]
    assert not list(out.rglob("_INCOMPLETE")) and not (out / ".tmp_comply").exists()


def test_five_percent_removed_from_every_output(run_output, tmp_path):
    out = _copy(run_output, tmp_path)
    ids = _stored_ids(out)
    removed = set(random.Random(5).sample(ids, len(ids) // 20))
    (tmp_path / "remove.txt").write_text("\n".join(sorted(removed)) + "\n")
    before = inventory(out)
    assert _comply(out, f"--remove_ids={tmp_path / 'remove.txt'}") == 0
    after = inventory(out)
    still = {path: held & removed for path, (_, held) in after.items() if held & removed}
    assert still == {}, still
    held_some = [p for p, (_, held) in before.items() if held & removed]
    assert len(held_some) >= 20  # tweets, corpus, graph, pairs, shards, benchmarks, dead letters, TSVs
    for path, (digest, held) in before.items():
        if held & removed or path.endswith(DERIVED) or path.startswith(DERIVED_PATHS):
            continue
        assert after[path][0] == digest, f"{path} held no removed tweet but changed"
    _check_manifests(out)
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    assert manifest["version"] == 2 and manifest["compliance"][0]["date"] == "2026-12-01"
    stats = json.loads((out / "reports" / "comply" / "stats.json").read_text())
    assert stats["removals"]["ids"] == len(removed) and stats["by_output"]["corpus"]["rows_removed"] > 0
    assert stats["benchmark_splits"] and stats["languages_lost"]
    for key, shrink in stats["benchmark_splits"].items():
        if key.endswith("_candidates"):  # lists keep their size where a replacement negative exists
            assert shrink["negatives_replaced"] + shrink["short_candidate_lists"] > 0 or shrink["rows_after"] < shrink["rows_before"]

    # The same removals again: nothing changes, not even the report.
    again = inventory(out)
    assert _comply(out, f"--remove_ids={tmp_path / 'remove.txt'}") == 0
    assert inventory(out) == again


def test_unavailable_of_a_rehydration_and_bad_lines(run_output, tmp_path):
    from twhin_data.schemas import to_table
    from twhin_data.schemas.tweets import UNAVAILABLE

    out = _copy(run_output, tmp_path)
    ids = _stored_ids(out)
    rows = [
        {"tweet_id": ids[0], "status": "not_found", "detail": "deleted"},
        {"tweet_id": ids[1], "status": "not_authorized", "detail": "protected"},
        {"tweet_id": ids[2], "status": "failed", "detail": "a 503: not a verdict"},
    ]
    (tmp_path / "rehydrated" / "unavailable").mkdir(parents=True)
    pq.write_table(to_table(rows, UNAVAILABLE), tmp_path / "rehydrated" / "unavailable" / "part-0.parquet")
    (tmp_path / "ids.txt").write_text(f"# comment\n{ids[3]}\n12x\n\n")
    assert _comply(out, f"--unavailable={tmp_path / 'rehydrated'}", f"--remove_ids={tmp_path / 'ids.txt'}") == 0
    left = set(_stored_ids(out))
    assert ids[0] not in left and ids[1] not in left and ids[3] not in left and ids[2] in left
    errors = pq.read_table(out / "errors" / "comply").to_pylist()
    assert [e["input"] for e in errors] == ["12x"] and errors[0]["source"].endswith("ids.txt:3")
    _check_manifests(out)


def test_no_source_is_a_one_line_error(tmp_path, capsys):
    assert cli.main(["comply", "--output", str(tmp_path)]) == 2
    assert "nothing to remove" in capsys.readouterr().err
    assert cli.main(["comply", "--output", str(tmp_path), "--remove_ids", "x.txt", "--overwrite"]) == 2
    assert "in place" in capsys.readouterr().err


def test_a_failure_half_way_leaves_markers_and_a_rerun_finishes(run_output, tmp_path, monkeypatch):
    from twhin_data.transforms.comply import transform

    out = _copy(run_output, tmp_path)
    ids = _stored_ids(out)
    (tmp_path / "remove.txt").write_text("\n".join(ids[::10]) + "\n")
    calls = {"n": 0}
    real = transform.rewrite_unit

    def dies_on_the_fifth(unit, ctx):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device", unit.path)
        return real(unit, ctx)

    monkeypatch.setattr(transform, "rewrite_unit", dies_on_the_fifth)
    assert _comply(out, f"--remove_ids={tmp_path / 'remove.txt'}") == 1
    assert list(out.rglob("_INCOMPLETE")) and not (out / "shards" / "COMPLETED").exists()
    monkeypatch.setattr(transform, "rewrite_unit", real)
    assert _comply(out, f"--remove_ids={tmp_path / 'remove.txt'}") == 0
    _check_manifests(out)
    removed = set(ids[::10])
    assert not [p for p, (_, held) in inventory(out).items() if held & removed]


# ---- X batch compliance jobs against the local mock API -----------------------------------------

TOKEN = "comply-test-token-9Xq2"


def _mock(run_output: Path, deleted: list[str], **kwargs):
    from twhin_data.xapi.mock.server import MockXApi

    events = {tweet_id: "deleted" for tweet_id in deleted}
    return MockXApi({}, token=TOKEN, compliance_events=events, **kwargs)


def test_slow_job_killed_while_polling_resumes_the_same_job(run_output, tmp_path):
    out = _copy(run_output, tmp_path)
    ids = _stored_ids(out)
    deleted = ids[5:12]
    env = {**os.environ, "X_BEARER_TOKEN": TOKEN}
    with _mock(run_output, deleted, job_delay_s=6.0) as mock:
        argv = [sys.executable, "-m", "twhin_data", "comply", f"--output={out}", "--compliance_job"]
        argv += [f"--api_base_url={mock.base_url}", "--poll_s=0.2", "--progress=none"]
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        state = out / "reports" / "comply" / "job.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (state.exists() and json.loads(state.read_text())["uploaded"]):
            assert proc.poll() is None
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # killed while the job is in progress
        proc.wait()
        assert mock.compliance.created == 1
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert mock.compliance.created == 1  # the same job, polled again, not a new one
        assert len(mock.compliance.uploads) == 1 and set(ids) <= set(next(iter(mock.compliance.uploads.values())))
    left = set(_stored_ids(out))
    assert not left & set(deleted) and len(left) <= len(ids) - len(deleted)  # retweets of them go too
    assert json.loads((out / "reports" / "comply" / "job.json").read_text())["applied"] is True
    for path in out.rglob("*"):  # the token is nowhere in the output
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in done.stderr and TOKEN not in done.stdout
    _check_manifests(out)


def test_a_failed_job_is_one_line_and_new_job_starts_another(run_output, tmp_path, capsys, monkeypatch):
    out = _copy(run_output, tmp_path)
    ids = _stored_ids(out)
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    with _mock(run_output, ids[:3], job_fail=True) as mock:
        flags = ["--compliance_job", f"--api_base_url={mock.base_url}", "--poll_s=0.05"]
        assert _comply(out, *flags) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "ended failed" in err and "--new_job" in err
        assert _comply(out, *flags) == 2  # the saved job failed: the user must choose --new_job
        assert "--new_job" in capsys.readouterr().err
        mock.compliance.fail = False
        assert _comply(out, *flags, "--new_job") == 0
        assert mock.compliance.created == 2
    assert not set(_stored_ids(out)) & set(ids[:3])


def test_a_damaged_file_is_one_line_and_nothing_changes(run_output, tmp_path, capsys):
    out = _copy(run_output, tmp_path)
    (out / "pairs" / "part-00000-of-00001.parquet").write_bytes(b"garbage")
    import hashlib

    def digests() -> dict[str, str]:
        return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}

    before = digests()
    (tmp_path / "remove.txt").write_text("\n".join(_stored_ids(out)[:20]) + "\n")
    assert _comply(out, f"--remove_ids={tmp_path / 'remove.txt'}") == 1
    err = capsys.readouterr().err.strip()
    assert "pairs/part-00000-of-00001.parquet is unreadable" in err and "Traceback" not in err
    assert {p: v for p, v in digests().items() if not p.startswith(".tmp_comply")} == before
