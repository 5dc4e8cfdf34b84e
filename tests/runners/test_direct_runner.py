"""`--runner DirectRunner` (the local runner Beam users name) works offline and writes the same bytes
as the default FnApiRunner."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from twhin_data.data import synth
from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS

pytestmark = pytest.mark.slow


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.rglob("*")
        if p.is_file() and not {"reports", "errors"} & set(p.relative_to(folder).parts)
    }


def test_direct_runner_gives_the_same_bytes_as_fnapi_runner(tmp_path):
    (tmp_path / "in" / "tweets").mkdir(parents=True)
    rows = [{"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang")} for t in synth.generate_tweets(2000, seed=4)]
    pq.write_table(to_table(rows, TWEETS), tmp_path / "in" / "tweets" / "part-00000-of-00001.parquet")
    lines = ["user_id,tweet_id,type,ts"] + [f"{u},{r['tweet_id']},fav," for u in range(1, 40) for r in rows[u : u + 30]]
    (tmp_path / "eng.csv").write_text("\n".join(lines) + "\n")
    outs = {}
    for runner in ("FnApiRunner", "DirectRunner"):
        out = tmp_path / runner
        for argv in (
            ["prepare", f"--tweets={tmp_path / 'in'}", f"--output={out}"],
            ["graph", f"--engagements={tmp_path / 'eng.csv'}", f"--output={out}", "--min_per_tweet=1"],
            ["shard", f"--corpus={out / 'corpus'}", f"--pairs={out / 'pairs'}", f"--output={out / 'shards'}"],
        ):
            assert cli.main([*argv, "--workers=1", f"--runner={runner}", "--log_level=WARNING"]) == 0, argv
        outs[runner] = _digests(out)
    assert any(k.startswith("shards/mlm/") for k in outs["FnApiRunner"])
    assert outs["DirectRunner"] == outs["FnApiRunner"]
