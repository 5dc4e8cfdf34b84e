"""PyTorch-BigGraph input: a config (the paper's TwHIN settings) and TSV edge lists for its importer.

PBG's ``torchbiggraph_import_from_tsv`` reads whitespace-separated lines and builds the entity
dictionaries itself (``entity_count_*.txt``, ``entity_names_*_*.json``, ``edges_*.h5``), so we
write names, not indices: users as ``u<user_id>`` and tweets as ``t<tweet_id>``. The prefixes keep
names unique across entity types, because ``torchbiggraph_export_to_tsv`` writes every entity
type into one file with no type column; `--pairs embeddings` reads ``t<id>`` names back.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.schemas.graph import ENGAGEMENT_TYPES

CONFIG_TEMPLATE = '''"""PyTorch-BigGraph config for the twhin-data engagement graph (TwHIN-BERT paper settings).

Paths are relative to this file, so the folder can be moved. Steps (run from any directory):

  torchbiggraph_import_from_tsv --lhs-col=0 --rel-col=1 --rhs-col=2 {here}/config.py {here}/edges/*.tsv
  torchbiggraph_train {here}/config.py
  torchbiggraph_export_to_tsv {here}/config.py \\
      --entities-output {here}/embeddings.tsv --relation-types-output {here}/relation_types.tsv

then mine pairs from the tweet embeddings:
  twhin-data graph ... --pairs embeddings --embeddings {here}/embeddings.tsv
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
RELATIONS = {relations!r}


def get_torchbiggraph_config():
    return dict(
        entity_path=os.path.join(HERE, "data"),
        edge_paths=[os.path.join(HERE, "data", "edges_partitioned")],
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
        # Negatives both uniform and proportional to prevalence (in-batch), trained with Adagrad.
        num_uniform_negs=1000,
        num_batch_negs=1000,
        loss_fn="softmax",
        lr=0.1,
        eval_fraction=0,
    )
'''


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


class WritePbgEdges(beam.PTransform):
    """Final edge tables (one per user partition, sorted by lhs) -> ``<dir>/edges/edges-<lhs>.tsv``.

    Each file is named after its first user index, so names and bytes are deterministic.
    """

    def __init__(self, directory: str, relation_names: list[str]):
        super().__init__()
        self._dir, self._relations = directory, relation_names

    def expand(self, edges):
        return edges | "WritePbgTsv" >> beam.FlatMap(
            _write_tsv, directory=self._dir, relations=self._relations
        )


def _write_tsv(edges: pa.Table, *, directory: str, relations: list[str]) -> Iterable[dict]:
    if edges.num_rows == 0:
        return
    first = int(edges.column("lhs")[0].as_py())
    path = files.join(directory, "edges", f"edges-{first:012d}.tsv")
    data = tsv_lines(edges, relations)
    files.write_bytes_atomic(path, data)
    yield {"path": path, "rows": edges.num_rows, "bytes": len(data)}
