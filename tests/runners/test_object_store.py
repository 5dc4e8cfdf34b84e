"""gs:// inputs and outputs against a local GCS emulator (gcp-storage-emulator on 127.0.0.1): the
same bytes as local paths, completion markers included."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from twhin_data.data import synth
from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS

pytestmark = pytest.mark.slow
BUCKET = "twhin-test"


@pytest.fixture(scope="module")
def gcs():
    server_module = pytest.importorskip("gcp_storage_emulator.server", reason="the test extra installs it")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = server_module.create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    patch = pytest.MonkeyPatch()
    # The documented setup: the emulator's address, no metadata-server probe, a project name.
    patch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    patch.setenv("NO_GCE_CHECK", "True")
    patch.setenv("GOOGLE_CLOUD_PROJECT", "twhin-test")
    from twhin_data.core import files

    assert files.use_storage_emulator()  # what every command does first (this test's uploads too)
    try:
        yield f"gs://{BUCKET}"
    finally:
        patch.undo()
        server.stop()


def _upload(local: Path, url: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        with FileSystems.create(f"{url}/{path.relative_to(local).as_posix()}") as handle:
            handle.write(path.read_bytes())


def _remote_digests(url: str) -> dict[str, str]:
    from apache_beam.io.filesystems import FileSystems

    out = {}
    for meta in FileSystems.match([f"{url}/**"])[0].metadata_list:
        with FileSystems.open(meta.path) as handle:
            out[meta.path[len(url) + 1 :]] = hashlib.sha256(handle.read()).hexdigest()
    return out


def _local_digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def _data(digests: dict[str, str]) -> dict[str, str]:
    """What must match byte for byte: datasets, markers, manifests and cards (not the reports, whose
    timings differ, nor dead letters, which name their source path)."""
    return {k: v for k, v in digests.items() if not {"reports", "errors"} & set(k.split("/"))}


def test_prepare_graph_shard_and_hydrate_on_gs_match_local_paths(gcs, tmp_path):
    inputs = tmp_path / "in"
    (inputs / "tweets").mkdir(parents=True)
    rows = [{"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang")} for t in synth.generate_tweets(3000, seed=4)]
    pq.write_table(to_table(rows, TWEETS), inputs / "tweets" / "part-00000-of-00001.parquet")
    lines = ["user_id,tweet_id,type,ts"] + [f"{u},{r['tweet_id']},fav," for u in range(1, 60) for r in rows[u : u + 40]]
    (inputs / "eng.csv").write_text("\n".join(lines) + "\n")
    archive = [json.dumps({"id": r["tweet_id"], "text": r["text"], "lang": r["lang"], "author_id": "7"}) for r in rows[:50]]
    (inputs / "archive.jsonl").write_text("\n".join(archive) + "\n")
    labels = ["ID,label,lang"] + [
        f"{r['tweet_id']},{tags[0] if tags else 'missing'},{r['lang']}"
        for r in rows[:50]
        for tags in [re.findall(r"#(\w+)", r["text"])]
    ]
    (inputs / "labels.csv").write_text("\n".join([*labels, "42,absent,en"]) + "\n")
    _upload(inputs, f"{gcs}/in")
    local, remote = tmp_path / "local", f"{gcs}/out"
    for out in (str(local), remote):
        src = str(inputs) if out == str(local) else f"{gcs}/in"
        # One worker each: a pool's fork server started by an earlier test of this session would not
        # have the emulator's environment (a command run from a shell has it from the start).
        steps = [
            ["prepare", f"--tweets={src}", f"--output={out}", "--workers=1"],
            ["graph", f"--engagements={src}/eng.csv", f"--output={out}", "--min_per_tweet=1", "--workers=1"],
            ["shard", f"--corpus={out}/corpus", f"--pairs={out}/pairs", f"--output={out}/shards", "--workers=1"],
            ["hydrate", f"--archive={src}/archive.jsonl", f"--output={out}/hydrated"],
            # Its join hands rows over in spill files under hashtag/.partial/.spill: on gs:// too.
            ["benchmark", "hashtag", f"--labels={src}/labels.csv", f"--tweets={out}/hydrated", f"--output={out}/hashtag"],
        ]
        for argv in steps:
            assert cli.main([*argv, "--log_level=WARNING"]) == 0, argv
    want, got = _data(_local_digests(local)), _data(_remote_digests(remote))
    assert any(k.startswith("shards/mlm/") for k in want) and "corpus/_SUCCESS" in want
    assert "hashtag/manifest.json" in want and any(k.startswith("hashtag/en/") for k in want)
    assert not any(".partial" in k for k in [*want, *_remote_digests(remote)])  # the spill files went
    assert got == want
