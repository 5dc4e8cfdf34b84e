"""TwHIN embeddings with PyTorch-BigGraph, the paper's way: import graph/pbg, train, export Parquet.

`twhin-data embed` (pipelines/embed.py) runs PyTorch-BigGraph's own importer and trainer on the
files `graph` wrote (``graph/pbg/config.py`` and ``graph/pbg/edges/*.tsv``), in this process,
then reads the trained checkpoint (``model/embeddings_<type>_0.v<N>.h5``, dataset
``embeddings``, with the entity names of ``data/entity_names_<type>_0.json``) and writes
``embeddings/tweets/`` (tweet_id, embedding) and ``embeddings/users/`` (user_id, embedding) as
Parquet, which ``graph --pairs embeddings`` and ``benchmark engagement`` read directly.

Training is not a Beam job (on Dataflow, run PyTorch-BigGraph's distributed mode on the exported
graph: docs/graph.md). PyTorch-BigGraph trains with HOGWILD threads, so two runs give different
vectors (same quality): embeddings are the one output of twhin-data that is not byte-stable.
Not a dependency of the package: ``pip install "twhin-data[pbg]"`` (torch, torchbiggraph, h5py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.schemas.graph import TWEET_EMBEDDINGS, USER_EMBEDDINGS
from twhin_data.transforms.graph.pbg import write_relation_names

INSTALL = (
    'twhin-data embed needs PyTorch-BigGraph: pip install "twhin-data[pbg]" (torch, torchbiggraph, h5py; '
    "for a CPU-only torch, pip install torch==2.13.0 first)"
)


def require_pbg() -> None:
    """A one-line ConfigError naming the install command when torch/torchbiggraph/h5py are missing."""
    import importlib.util

    missing = [m for m in ("torch", "torchbiggraph", "h5py") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"{INSTALL}; missing: {', '.join(missing)}")


def load_config(pbg_dir: str, overrides: list[str]):
    """graph/pbg/config.py parsed by PyTorch-BigGraph (it finds its folder through $TWHIN_PBG_DIR here)."""
    os.environ["TWHIN_PBG_DIR"] = os.path.abspath(pbg_dir)
    from torchbiggraph.config import ConfigFileLoader

    return ConfigFileLoader().load_config(os.path.join(pbg_dir, "config.py"), overrides)


def train(pbg_dir: str, *, dimension: int, epochs: int, workers: int) -> dict:
    """Fresh import + training of graph/pbg (its data/ and model/ are rebuilt); returns what ran."""
    from torchbiggraph.converters.import_from_tsv import convert_input_data
    from torchbiggraph.train import train as pbg_train
    from torchbiggraph.util import SubprocessInitializer, setup_logging

    edges = sorted(str(p) for p in Path(pbg_dir, "edges").glob("*.tsv"))
    if not edges:
        raise ConfigError(f"{pbg_dir}/edges holds no TSV: run twhin-data graph first")
    for sub in ("data", "model"):
        shutil.rmtree(os.path.join(pbg_dir, sub), ignore_errors=True)
    overrides = [f"dimension={dimension}", f"num_epochs={epochs}", f"workers={workers}"]
    config = load_config(pbg_dir, overrides)
    convert_input_data(
        config.entities,
        config.relations,
        config.entity_path,
        config.edge_paths,
        [Path(p) for p in edges],
        lhs_col=0,
        rhs_col=2,
        rel_col=1,
        dynamic_relations=config.dynamic_relations,
    )
    write_relation_names(pbg_dir, [r.name for r in config.relations])  # for PBG's own exporter
    setup_logging()
    pbg_train(config, subprocess_init=SubprocessInitializer())
    return {"edge_files": len(edges), "dimension": dimension, "epochs": epochs, "workers": workers}


def checkpoint_vectors(pbg_dir: str, entity: str) -> tuple[list[str], np.ndarray]:
    """(entity names, vectors) of the latest checkpoint of `entity` (partition 0)."""
    import h5py

    version = int(Path(pbg_dir, "model", "checkpoint_version.txt").read_text().strip())
    names = json.loads(Path(pbg_dir, "data", f"entity_names_{entity}_0.json").read_text())
    with h5py.File(Path(pbg_dir, "model", f"embeddings_{entity}_0.v{version}.h5"), "r") as h5:
        vectors = np.asarray(h5["embeddings"], dtype=np.float32)
    return [str(n) for n in names], vectors


def export(pbg_dir: str, output: str) -> dict:
    """embeddings/tweets/ and embeddings/users/ Parquet from the checkpoint; rows by ID."""
    counts = {}
    for entity, prefix, folder, schema, column in (
        ("tweet", "t", "tweets", TWEET_EMBEDDINGS, "tweet_id"),
        ("user", "u", "users", USER_EMBEDDINGS, "user_id"),
    ):
        names, vectors = checkpoint_vectors(pbg_dir, entity)
        ids = [n[len(prefix) :] if n.startswith(prefix) else n for n in names]
        order = sorted(range(len(ids)), key=lambda i: (len(ids[i]), ids[i]))  # numeric order of digit IDs
        table = pa.table(
            {
                column: pa.array([ids[i] for i in order], pa.string()),
                "embedding": pa.array([vectors[i] for i in order], pa.list_(pa.float32())),
            },
            schema=schema,
        )
        path = files.join(output, "embeddings", folder, "part-00000-of-00001.parquet")
        files.write_parquet_atomic(path, table)
        counts[folder] = table.num_rows
    return counts
