"""twhin-data embed: TwHIN embeddings with PyTorch-BigGraph on graph's files, then embedding pairs.

Runs only where the pbg extra is installed (torch, torchbiggraph, h5py): skipped with that reason
otherwise. The missing-extra message is tested everywhere."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tests.graph.test_pairs import planted, precision, write_csv
from twhin_data.runners.cli import main

HAVE_PBG = all(importlib.util.find_spec(m) for m in ("torch", "torchbiggraph", "h5py"))
needs_pbg = pytest.mark.skipif(not HAVE_PBG, reason='needs the pbg extra: pip install "twhin-data[pbg]" (torch, torchbiggraph, h5py)')


@pytest.mark.skipif(HAVE_PBG, reason="the pbg extra is installed here: the missing-extra message cannot show")
def test_embed_without_the_extra_says_how_to_install(tmp_path, capsys):
    rows, _ = planted(seed=3)
    out = tmp_path / "out"
    assert main(["graph", f"--engagements={write_csv(tmp_path / 'e.csv', rows)}", f"--output={out}", "--log_level=WARNING"]) == 0
    assert main(["embed", f"--output={out}"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "twhin-data[pbg]"' in err and "Traceback" not in err


def test_embed_without_a_graph_is_one_line(tmp_path, capsys):
    assert main(["embed", f"--output={tmp_path}"]) == 2
    assert "run twhin-data graph" in capsys.readouterr().err


@needs_pbg
@pytest.mark.slow
def test_embed_then_embedding_pairs_recover_planted_communities(tmp_path):
    rows, community = planted(seed=5)
    log = write_csv(tmp_path / "e.csv", rows)
    out = tmp_path / "out"
    quiet = ["--log_level=WARNING"]
    assert main(["graph", f"--engagements={log}", f"--output={out}", "--min_per_tweet=2", *quiet]) == 0
    assert main(["embed", f"--output={out}", "--dimension=32", "--epochs=8"]) == 0
    tweets = pq.read_table(out / "embeddings" / "tweets")
    assert tweets.num_rows == pq.read_table(out / "graph" / "tweets").num_rows
    assert pq.read_table(out / "embeddings" / "users").num_rows > 0
    pairs_out = tmp_path / "pairs"
    argv = ["graph", f"--engagements={log}", f"--output={pairs_out}", "--min_per_tweet=2", "--pairs=embeddings"]
    assert main([*argv, f"--embeddings={out / 'embeddings' / 'tweets'}", "--top_k=5", *quiet]) == 0
    value, n = precision(pq.read_table(pairs_out / "pairs"), community, "embeddings")
    assert n >= 100 and value >= 0.9, (value, n)


@needs_pbg
@pytest.mark.slow
def test_pytorch_biggraph_cli_runs_on_graphs_files_as_documented(tmp_path):
    """docs/graph.md's three commands, verbatim, from another working directory."""
    rows, _ = planted(seed=6)
    out = tmp_path / "out"
    assert main(["graph", f"--engagements={write_csv(tmp_path / 'e.csv', rows)}", f"--output={out}", "--min_per_tweet=2", "--log_level=WARNING"]) == 0
    here = out / "graph" / "pbg"
    assert len(list((here / "edges").glob("*.tsv"))) > 1  # one per partition: the config must list them all
    bindir = os.path.dirname(sys.executable)
    tools = {name: shutil.which(name, path=bindir) or shutil.which(name) for name in ("torchbiggraph_import_from_tsv", "torchbiggraph_train", "torchbiggraph_export_to_tsv")}
    assert all(tools.values()), tools
    edges = sorted(str(p) for p in (here / "edges").glob("*.tsv"))
    run = {"cwd": str(tmp_path), "check": True, "capture_output": True, "env": {**os.environ, "PYTHONWARNINGS": "ignore"}}
    subprocess.run([tools["torchbiggraph_import_from_tsv"], "--lhs-col=0", "--rel-col=1", "--rhs-col=2", str(here / "config.py"), *edges], **run)
    subprocess.run([tools["torchbiggraph_train"], str(here / "config.py"), "-p", "num_epochs=1", "-p", "dimension=16"], **run)
    subprocess.run([tools["torchbiggraph_export_to_tsv"], str(here / "config.py"), "-p", "dimension=16", "--entities-output", str(here / "embeddings.tsv"), "--relation-types-output", str(here / "relation_types.tsv")], **run)
    lines = (here / "embeddings.tsv").read_text().splitlines()
    assert any(line.startswith("t") for line in lines) and any(line.startswith("u") for line in lines)
    assert len(lines[0].split("\t")) == 17  # name + 16 values
    assert (here / "relation_types.tsv").read_text().strip()
