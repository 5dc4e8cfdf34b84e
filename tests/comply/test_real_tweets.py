"""comply on an output built from real tweets: tweepy's recorded X API responses (v1.1 timelines with
retweets and quotes, v2 lookups), hydrated from the archive, prepared, graphed and sharded. Skips
when ../shared is absent (a user's clone)."""

from __future__ import annotations

import hashlib
import json
import random

import pyarrow.parquet as pq
import pytest

from tests.comply.scan import inventory
from tests.hydrate.test_archives import v1_statuses, v2_bodies
from twhin_data.runners import cli

pytestmark = pytest.mark.slow


def test_removals_leave_every_output_built_from_real_tweets(cassettes_dir, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "v1.jsonl").write_text("".join(json.dumps(s) + "\n" for s in v1_statuses(cassettes_dir)))
    tweets = [t for b in v2_bodies(cassettes_dir) for t in ([b["data"]] if isinstance(b["data"], dict) else b["data"])]
    (archive / "v2.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tweets))
    out = tmp_path / "out"
    quiet = ["--log_level=WARNING", "--progress=none"]
    assert cli.main(["hydrate", "--archive", str(archive), "--output", str(out), *quiet]) == 0
    assert cli.main(["prepare", f"--tweets={out}", f"--output={out}", "--workers=1", *quiet]) == 0
    assert cli.main(["graph", f"--tweets={out}", f"--output={out}", "--min_per_tweet=1", *quiet]) == 0
    assert cli.main(["shard", f"--corpus={out / 'corpus'}", f"--pairs={out / 'pairs'}", f"--output={out / 'shards'}", *quiet]) == 0
    stored = pq.read_table(out / "tweets").to_pylist()
    assert len(stored) >= 50
    originals = {r["id"] for row in stored for r in (row["referenced_tweets"] or []) if r["type"] == "retweeted"}
    assert originals  # real retweets: removing an original must take its retweets along
    removed = set(random.Random(1).sample([r["tweet_id"] for r in stored], len(stored) // 5)) | set(sorted(originals)[:3])
    (tmp_path / "remove.txt").write_text("\n".join(sorted(removed)) + "\n")
    before = inventory(out)
    assert cli.main(["comply", f"--output={out}", f"--remove_ids={tmp_path / 'remove.txt'}", *quiet]) == 0
    after = inventory(out)
    assert {p: held & removed for p, (_, held) in after.items() if held & removed} == {}
    for path, (digest, held) in before.items():
        derived = path.endswith(("manifest.json", "README.md", "_SUCCESS", "COMPLETED")) or path.startswith(("graph/users/", "graph/edges/"))
        if not held & removed and not derived:
            assert after[path][0] == digest, path
    kept = pq.read_table(out / "tweets").to_pylist()
    assert not any(r["id"] in removed for row in kept for r in (row["referenced_tweets"] or []) if r["type"] == "retweeted")
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    for entry in manifest["shards"]:
        assert hashlib.sha256((out / "shards" / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["version"] == 2 and (out / "shards" / "COMPLETED").is_file()
