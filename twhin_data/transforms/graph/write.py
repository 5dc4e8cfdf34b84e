"""Writing the graph's relation names (one tiny table); the other datasets: write_steps.py."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa

from twhin_data.core import files
from twhin_data.schemas.graph import RELATIONS
from twhin_data.transforms.io import WriteDataset


class WriteRelations(beam.PTransform):
    """OUT/graph/relations/: (index, name) of `types`, the relations in index order."""

    def __init__(self, output: str, types: list[str]):
        super().__init__()
        self._out, self._types = output, types

    def expand(self, pbegin):
        relations = pa.table({"index": pa.array(range(len(self._types)), pa.int32()), "name": self._types})
        return (
            pbegin
            | "Relations" >> beam.Create([relations])
            | "WriteRelations"
            >> WriteDataset(
                files.join(self._out, "graph", "relations"),
                RELATIONS,
                key="name",
                sort_by=["index"],
                name="graph_relations",
            )
        )
