"""Two-stage shards (shard --engaged): stage 1 = tweets without engagement (MLM), stage 2 = the
engaged tweets (MLM) and the pair batches, each a dataset-card config."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twhin_data.data import synth
from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.corpus import CORPUS
from twhin_data.schemas.graph import PAIRS
from twhin_data.transforms.shard.stages import labels, stage_of

pytestmark = pytest.mark.slow


def test_stage_of_and_labels():
    import numpy as np

    engaged = np.array([5, 9], np.uint64)
    stage = stage_of(np.array([5, 6, 9], np.uint64), engaged)
    assert stage.tolist() == [2, 1, 2]
    assert labels(np.array([False, True, False]), stage).tolist() == ["stage2_train", "stage1_validation", "stage2_train"]
    assert labels(np.array([True]), None).tolist() == ["validation"]


def _inputs(base: Path) -> tuple[Path, set[str]]:
    rows = [
        {"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang") or "und", "normalizer": "test"}
        for t in synth.generate_tweets(600, seed=4)
    ]
    (base / "corpus").mkdir(parents=True)
    pq.write_table(to_table(rows, CORPUS), base / "corpus" / "part-00000-of-00001.parquet")
    engaged = [r["tweet_id"] for r in rows[::3]]
    (base / "graph" / "tweets").mkdir(parents=True)
    pq.write_table(pa.table({"tweet_id": engaged, "index": list(range(len(engaged)))}), base / "graph" / "tweets" / "part-0.parquet")
    pairs = [{"tweet_id_a": a, "tweet_id_b": b, "score": 0.5, "method": "cooccurrence"} for a, b in zip(engaged[::2], engaged[1::2], strict=False)]
    (base / "pairs").mkdir()
    pq.write_table(to_table(pairs, PAIRS), base / "pairs" / "part-00000-of-00001.parquet")
    return base, set(engaged)


def test_engaged_tweets_are_stage_two_and_each_stage_loads(tmp_path):
    base, engaged = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    argv = ["shard", f"--corpus={base}", f"--pairs={base}", f"--engaged={base}", f"--output={out}"]
    assert cli.main([*argv, "--valid_fraction=0.1", "--pair_batch_size=4", "--log_level=WARNING"]) == 0
    names = sorted(p.name.split("-")[0] for p in (out / "mlm").glob("*.parquet"))
    assert set(names) == {"stage1_train", "stage1_validation", "stage2_train", "stage2_validation"}
    for path in (out / "mlm").glob("*.parquet"):
        ids = {i for row in pq.read_table(path).column("tweet_ids").to_pylist() for i in row}
        assert (ids <= engaged) if path.name.startswith("stage2") else not (ids & engaged), path.name
    manifest = json.loads((out / "manifest.json").read_text())
    stages = manifest["stages"]
    assert stages["stage2"]["mlm"]["train"]["tweets"] + stages["stage2"]["mlm"]["validation"]["tweets"] == len(engaged)
    assert stages["stage1"]["mlm"]["train"]["tweets"] + stages["stage1"]["mlm"]["validation"]["tweets"] == 600 - len(engaged)
    assert "pairs" in stages["stage2"] and manifest["parameters"]["stages"] == [1, 2]
    cache = str(tmp_path / "cache")
    for config, stage in (("stage1", "stage1"), ("stage2", "stage2")):
        loaded = datasets.load_dataset(str(out), config, cache_dir=cache)
        assert {s: loaded[s].num_rows for s in loaded} == {s: e["rows"] for s, e in stages[stage]["mlm"].items()}
    pairs = datasets.load_dataset(str(out), "pairs", cache_dir=cache)
    assert pairs["train"].num_rows == manifest["splits"]["pairs"]["train"]["rows"]
    assert datasets.load_dataset(str(out), cache_dir=cache)["train"].num_rows == stages["stage1"]["mlm"]["train"]["rows"]


def test_one_stage_only_and_its_errors(tmp_path, capsys):
    base, engaged = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    argv = ["shard", f"--corpus={base}", f"--engaged={base}", f"--output={out}", "--stages=2", "--log_level=WARNING"]
    assert cli.main(argv) == 0
    assert {p.name.split("-")[0] for p in (out / "mlm").glob("*.parquet")} <= {"stage2_train", "stage2_validation"}
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert counts["rejected_stage_not_selected"] == 600 - len(engaged) and counts["tweets_out"] == len(engaged)
    bad = ["shard", f"--corpus={base}", f"--pairs={base}", f"--engaged={base}", f"--output={tmp_path / 'x'}", "--stages=1"]
    assert cli.main(bad) == 2
    assert "pairs are stage 2's" in capsys.readouterr().err
    assert cli.main(["shard", f"--corpus={base}", f"--engaged={base}", f"--output={tmp_path / 'y'}", "--stages=3"]) == 2
