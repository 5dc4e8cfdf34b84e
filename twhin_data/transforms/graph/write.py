"""Writing the graph: engagements, edges, user/tweet vocabularies, relations and PBG edge lists."""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam
import numpy as np
import pyarrow as pa

from twhin_data.core import files
from twhin_data.schemas.graph import EDGES, ENGAGEMENT_TYPES, ENGAGEMENTS, RELATIONS, TWEET_NODES, USERS
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph import pbg
from twhin_data.transforms.io import WriteDataset


def engagements_table(edges: pa.Table) -> pa.Table:
    """Internal final edges -> ENGAGEMENTS rows (string IDs, type names, UTC timestamps)."""
    names = np.array(ENGAGEMENT_TYPES, dtype=object)
    sources = np.array(gc.SOURCES, dtype=object)
    ts = edges.column("ts").to_numpy()
    return pa.table(
        {
            "user_id": gc.ids_to_strings(edges.column("user").to_numpy()),
            "tweet_id": gc.ids_to_strings(edges.column("tweet").to_numpy()),
            "type": pa.array(names[edges.column("rel").to_numpy().astype(np.int64)], pa.string()),
            "ts": pa.array(ts, pa.int64(), mask=ts == gc.NO_TS).cast(pa.timestamp("ms", tz="UTC")),
            "source": pa.array(sources[edges.column("source").to_numpy()], pa.string()),
        }
    )


def edges_table(edges: pa.Table, relation_index: dict[int, int]) -> pa.Table:
    """Internal final edges -> EDGES rows; rel = position of the type in --types."""
    remap = np.array([relation_index.get(i, -1) for i in range(len(ENGAGEMENT_TYPES))], dtype=np.int32)
    return pa.table(
        {
            "lhs": edges.column("lhs"),
            "rel": pa.array(remap[edges.column("rel").to_numpy().astype(np.int64)], pa.int32()),
            "rhs": edges.column("rhs"),
            "ts": gc.ts_to_arrow(edges.column("ts").to_numpy()),
        }
    )


def vocab_table(nodes: pa.Table, side: str) -> pa.Table:
    """Internal nodes (index, user|tweet, degree) -> USERS / TWEET_NODES rows."""
    ids = gc.ids_to_strings(nodes.column(side).to_numpy())
    return pa.table({"index": nodes.column("index"), f"{side}_id": ids, "degree": nodes.column("degree")})


class WriteGraph(beam.PTransform):
    """BuildGraph's outputs (dict with edges, users, tweets) -> the graph datasets under `output`.

    Writes OUT/engagements/, OUT/graph/{edges,users,tweets,relations}/ (deterministic Parquet
    parts) and OUT/graph/pbg/edges/*.tsv. `types` are the relations, in index order.
    """

    def __init__(self, output: str, *, types: list[str], num_shards: int = 1):
        super().__init__()
        self._out, self._types, self._parts = output, types, num_shards

    def _write(
        self,
        pcoll,
        label: str,
        *,
        path: tuple[str, ...],
        schema: pa.Schema,
        key: str,
        sort_by: list[str],
        rows: Callable[..., pa.Table],
        args: tuple = (),
    ):
        """Maps `pcoll` through ``rows(element, *args)`` and writes the tables to OUT/<path>/."""
        return (
            pcoll
            | f"{label}Rows" >> beam.Map(rows, *args)
            | f"Write{label}"
            >> WriteDataset(
                files.join(self._out, *path),
                schema,
                key=key,
                sort_by=sort_by,
                num_shards=self._parts,
                name="_".join(path),
            )
        )

    def expand(self, graph):
        edges = graph["edges"]
        relation_index = {ENGAGEMENT_TYPES.index(t): i for i, t in enumerate(self._types)}
        written = [
            self._write(edges, "Engagements", path=("engagements",), schema=ENGAGEMENTS, key="tweet_id",
                    sort_by=["user_id", "tweet_id", "type"], rows=engagements_table),
            self._write(edges, "Edges", path=("graph", "edges"), schema=EDGES, key="lhs",
                    sort_by=["lhs", "rhs", "rel"], rows=edges_table, args=(relation_index,)),
            self._write(graph["users"], "Users", path=("graph", "users"), schema=USERS, key="user_id",
                    sort_by=["index"], rows=vocab_table, args=("user",)),
            self._write(graph["tweets"], "Tweets", path=("graph", "tweets"), schema=TWEET_NODES, key="tweet_id",
                    sort_by=["index"], rows=vocab_table, args=("tweet",)),
        ]  # fmt: skip
        relations = pa.table({"index": pa.array(range(len(self._types)), pa.int32()), "name": self._types})
        written.append(
            edges.pipeline
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
        written.append(edges | "PbgEdges" >> pbg.WritePbgEdges(files.join(self._out, "graph", "pbg"), self._types))
        return written | "AllWritten" >> beam.Flatten()
