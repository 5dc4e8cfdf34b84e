"""PyTorch-BigGraph input: a config (the paper's TwHIN settings) and TSV edge lists for its importer.

PBG's ``torchbiggraph_import_from_tsv`` reads whitespace-separated lines and builds the entity
dictionaries itself (``entity_count_*.txt``, ``entity_names_*_*.json``, ``edges_*.h5``), so we
write names, not indices: users as ``u<user_id>`` and tweets as ``t<tweet_id>``. The prefixes keep
names unique across entity types, because ``torchbiggraph_export_to_tsv`` writes every entity
type into one file with no type column; `--pairs embeddings` reads ``t<id>`` names back.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.schemas.graph import ENGAGEMENT_TYPES

CONFIG_TEMPLATE = '''"""PyTorch-BigGraph config for the twhin-data engagement graph (TwHIN-BERT paper settings).

The paths derive from this folder, so it can be moved. PyTorch-BigGraph copies a config to a
temporary folder before loading it, so the folder is found from the command line (the config.py
argument) or, failing that, from $TWHIN_PBG_DIR. Steps (any working directory):

  torchbiggraph_import_from_tsv --lhs-col=0 --rel-col=1 --rhs-col=2 {here}/config.py {here}/edges/*.tsv
  torchbiggraph_train {here}/config.py
  torchbiggraph_export_to_tsv {here}/config.py \\
      --entities-output {here}/embeddings.tsv --relation-types-output {here}/relation_types.tsv

or all of it, with Parquet embeddings for `graph --pairs embeddings`: twhin-data embed --output OUT
"""

import glob
import os
import sys


def _here():
    for arg in sys.argv[1:]:
        folder = os.path.dirname(os.path.abspath(arg))
        if arg.endswith(".py") and os.path.isfile(arg) and os.path.isdir(os.path.join(folder, "edges")):
            return folder
    return os.environ.get("TWHIN_PBG_DIR") or os.path.dirname(os.path.abspath(__file__))


HERE = _here()
RELATIONS = {relations!r}
# One edge path per TSV in edges/ (graph writes one per user partition), in the shell's glob order.
EDGE_FILES = sorted(glob.glob(os.path.join(HERE, "edges", "*.tsv")))


def get_torchbiggraph_config():
    return dict(
        entity_path=os.path.join(HERE, "data"),
        edge_paths=[os.path.join(HERE, "data", "edges_" + os.path.basename(f)[:-4]) for f in EDGE_FILES],
        checkpoint_path=os.path.join(HERE, "model"),
        entities={{"user": {{"num_partitions": 1}}, "tweet": {{"num_partitions": 1}}}},
        relations=[
            {{"name": name, "lhs": "user", "rhs": "tweet", "operator": "translation"}} for name in RELATIONS
        ],
        dynamic_relations=False,
        # Score (u + r)^T t: translation operator and dot comparator (paper 2.1.2).
        dimension={dimension},
        comparator="dot",
        num_epochs={epochs},
        # Negatives both uniform and from the batch (prevalence), logistic loss, Adagrad (the paper's TwHIN).
        num_uniform_negs=1000,
        num_batch_negs=1000,
        loss_fn="logistic",
        lr=0.1,
        eval_fraction=0,
    )
'''


#: PyTorch-BigGraph 1.0's exporter loads relation names from data/ even for static relations.
RELATION_NAMES = "dynamic_rel_names.json"


def write_relation_names(pbg_dir: str, names: list[str]) -> None:
    """``data/dynamic_rel_names.json`` (the relation names in config order), so that
    torchbiggraph_export_to_tsv also exports static relations' parameters (its 1.0 release reads
    this file whatever the config says; its importer writes it only for dynamic relations)."""
    files.write_bytes_atomic(files.join(pbg_dir, "data", RELATION_NAMES), json.dumps(list(names)).encode("utf-8"))


def config_text(relations: list[str], *, dimension: int = 256, epochs: int = 10) -> str:
    """The PBG config.py text (deterministic: no absolute paths, no dates)."""
    return CONFIG_TEMPLATE.format(
        relations=list(relations), dimension=dimension, epochs=epochs, here="<DIR>/graph/pbg"
    )


def tsv_lines(edges: pa.Table, relation_names: list[str]) -> bytes:
    """Final edge table (user, tweet, rel) -> 'u<user>\\t<relation>\\tt<tweet>\\n' lines."""
    names = np.array([ENGAGEMENT_TYPES[i] for i in range(len(ENGAGEMENT_TYPES))], dtype=object)
    rel = names[edges.column("rel").to_numpy().astype(np.int64)]
    text = pc.binary_join_element_wise(
        pc.binary_join_element_wise("u", pc.cast(edges.column("user"), pa.string()), ""),
        pa.array(rel, pa.string()),
        pc.binary_join_element_wise("t", pc.cast(edges.column("tweet"), pa.string()), ""),
        "\t",
    )
    return ("\n".join(text.to_pylist()) + "\n").encode("utf-8") if len(text) else b""
