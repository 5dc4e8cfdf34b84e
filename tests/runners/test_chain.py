"""The main job end to end on the bundled sample: accounting, schemas of every output, determinism."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from twhin_data import schemas
from twhin_data.runners import cli

#: Whole commands end to end: not in the fast suite (-m "not slow").
pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "twhin_data" / "data"

#: output folder (relative to the run's output) -> schema its Parquet files must have.
DATASETS = {
    "tweets": schemas.TWEETS,
    "unavailable": schemas.UNAVAILABLE,
    "corpus": schemas.CORPUS,
    "engagements": schemas.ENGAGEMENTS,
    "graph/edges": schemas.EDGES,
    "graph/users": schemas.USERS,
    "graph/tweets": schemas.TWEET_NODES,
    "graph/relations": schemas.RELATIONS,
    "pairs": schemas.PAIRS,
    "shards/mlm": schemas.MLM_SHARD,
    "shards/pairs": schemas.PAIR_SHARD,
}


def _run(out: Path, workers: int) -> None:
    code = cli.main(["run", "--output", str(out), "--workers", str(workers)])
    assert code == 0


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("run")
    _run(base / "one", 1)
    _run(base / "two", 2)
    return base / "one", base / "two"


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*.parquet"))
    }


def test_main_job_leaves_shards_manifest_and_completed(runs):
    out, _ = runs
    shards = out / "shards"
    assert (shards / "COMPLETED").is_file()
    manifest = json.loads((shards / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"stage1", "stage2"}  # run passes graph's tweets: two stages
    assert list((shards / "mlm").glob("stage1_train-*.parquet")) and list((shards / "mlm").glob("stage2_train-*.parquet"))


def test_shards_are_byte_identical_across_runs_and_worker_counts(runs):
    one, two = runs
    for split in ("mlm", "pairs"):
        first, second = _digests(one / "shards" / split), _digests(two / "shards" / split)
        assert first and first == second, split
    assert (one / "shards" / "manifest.json").read_bytes() == (two / "shards" / "manifest.json").read_bytes()


def test_every_writer_matches_its_schema(runs):
    out, _ = runs
    checked = 0
    for folder, schema in DATASETS.items():
        for path in sorted((out / folder).glob("*.parquet")):
            assert pq.read_schema(path).remove_metadata().equals(schema.remove_metadata()), path
            checked += 1
    for path in sorted((out / "errors").rglob("*.parquet")):
        assert pq.read_schema(path).remove_metadata().equals(schemas.ERRORS.remove_metadata()), path
        checked += 1
    assert checked >= 10


def test_every_sample_id_is_accounted_for(runs):
    out, _ = runs
    lines = (SAMPLE / "sample_ids.txt").read_text(encoding="utf-8").splitlines()
    cleaned = [line.strip().strip("\"'").strip() for line in lines]
    valid = {c for c in cleaned if re.fullmatch(r"[0-9]{1,19}", c)}
    tweets = {r["tweet_id"] for p in (out / "tweets").glob("*.parquet") for r in pq.read_table(p, columns=["tweet_id"]).to_pylist()}
    unavailable = [r for p in (out / "unavailable").glob("*.parquet") for r in pq.read_table(p).to_pylist()]
    settled = [r["tweet_id"] for r in unavailable if r["status"] != "invalid_id"]
    assert len(settled) == len(set(settled)), "an ID was settled twice"
    assert not tweets & set(settled), "an ID is both hydrated and unavailable"
    assert tweets | set(settled) == valid
    assert {r["status"] for r in unavailable} >= {"not_found", "not_authorized"}
    summary = json.loads((out / "reports" / "run" / "summary.json").read_text())
    assert "hydrate" in summary["stages"]


def test_rerun_without_overwrite_is_refused(runs, capsys):
    out, _ = runs
    assert cli.main(["run", "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def _config_with(tmp_path: Path, stage: str, key: str, value: object) -> Path:
    import yaml

    config = yaml.safe_load((SAMPLE / "sample_config.yaml").read_text())
    config[stage] = dict(config.get(stage) or {}, **{key: value})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    ("stage", "key", "value", "message"),
    [
        ("shard", "num_shardz", 3, "twhin-data shard: error: unrecognized arguments: --num_shardz=3"),
        ("prepare", "resample_alpha", 2.0, "config section prepare: --resample_alpha must be in (0, 1]"),
    ],
)
def test_every_stage_is_validated_before_the_first_runs(tmp_path, capsys, stage, key, value, message):
    """A mistake in a late section is found before hydrate spends API reads."""
    config = _config_with(tmp_path, stage, key, value)
    out = tmp_path / "out"
    try:
        code = cli.main(["run", "--config", str(config), "--output", str(out)])
    except SystemExit as exc:  # argparse's one-line error for an unknown flag
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (out / "tweets").exists() and not (out / "unavailable").exists()


def test_every_dataset_folder_is_marked_complete_after_its_files(runs):
    """_SUCCESS is written by the job's last step: it lists every Parquet file with its rows."""
    out = runs[0]
    marked = ["tweets", "unavailable", "corpus", "engagements", "graph", "graph/edges", "graph/users",
              "graph/tweets", "graph/relations", "pairs", "benchmarks/hashtag", "benchmarks/engagement"]  # fmt: skip
    for name in marked:
        folder = out / name
        assert not (folder / "_INCOMPLETE").exists(), name
        record = json.loads((folder / "_SUCCESS").read_text())
        parts = {p.name: pq.ParquetFile(p).metadata.num_rows for p in sorted(folder.glob("*.parquet"))}
        assert record["files"] == parts and record["rows"] == sum(parts.values()), name
    assert (out / "shards" / "COMPLETED").exists() and not (out / "shards" / ".partial").exists()
    assert not list(out.rglob(".twhin-data.lock")) and not list(out.rglob(".tmp-*"))


def test_reports_index_links_one_report_per_stage(runs):
    out = runs[0]
    index = (out / "reports" / "index.html").read_text()
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', index)
    assert [name for _href, name in links] == [
        "hydrate", "benchmark hashtag", "benchmark engagement", "prepare", "graph", "shard"
    ]  # fmt: skip
    for href, _name in links:
        page = (out / "reports" / href).resolve()
        assert page.name == "report.html" and page.is_file(), href
        assert "<table" in page.read_text(), href


def test_dataset_cards_are_ready_for_the_hub(runs):
    """Every card parses as a Hub dataset card with license, languages, size, configs and the
    paper's citation, and its configs load with `datasets`."""
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    out = runs[0]
    for folder in (out / "shards", out / "benchmarks" / "hashtag", out / "benchmarks" / "engagement"):
        card = DatasetCard((folder / "README.md").read_text(encoding="utf-8"))
        data = card.data.to_dict()
        assert data["license"] == "other" and data["license_name"] and data["license_link"].startswith("https://")
        assert data["language"] and "und" not in data["language"], folder
        assert data["size_categories"] and data["task_categories"] and data["pretty_name"]
        assert "arXiv:2209.07562" in card.text and "@article{zhang2022twhin" in card.text
        config = data["configs"][0]
        loaded = load_dataset(str(folder), config["config_name"])
        assert set(loaded) == {entry["split"] for entry in config["data_files"]}, folder


def test_shared_outputs_hold_no_local_paths(runs):
    """stats.json, report.html, manifests, cards and the run summary name files relative to the
    output (inputs outside it by their name): nothing of this machine's layout."""
    out = runs[0]
    local = (str(out), str(SAMPLE), str(Path.home()))
    shared = [p for p in out.rglob("*") if p.suffix in (".json", ".html", ".md", ".py") and p.is_file()]
    assert len(shared) >= 15
    for path in shared:
        text = path.read_text(encoding="utf-8")
        assert not any(prefix in text for prefix in local), path


def test_every_flag_of_the_sample_config_is_an_input_or_the_default(runs):
    """`run` on the bundled config uses each command's own defaults: the same flag has the same
    value standalone and in `run`."""
    import importlib

    import yaml

    from twhin_data.runners import options
    from twhin_data.runners.chain import STAGES
    from twhin_data.runners.commands import COMMANDS

    config = yaml.safe_load((SAMPLE / "sample_config.yaml").read_text())
    for stage, command in STAGES.items():
        parser = options.command_parser(command, importlib.import_module(COMMANDS[command].module))
        for key, value in (config.get(stage) or {}).items():
            if key == "mock_api" or (isinstance(value, str) and value.startswith("sample:")):
                continue  # the sample's input files and its local mock API
            assert value == parser.get_default(key), (stage, key, value, parser.get_default(key))


def test_sample_inputs_run_their_stages_without_a_failure(tmp_path, caplog):
    """The sample inputs of dataflow-check run each needed stage through `run` (a failed stage is
    only logged there, so this checks the log)."""
    import logging

    from twhin_data.runners import local

    with caplog.at_level(logging.WARNING, logger="twhin_data.local"):
        out = local.sample_inputs(str(tmp_path / "sample"), ["prepare"])
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    assert (Path(out) / "tweets" / "_SUCCESS").is_file()
