"""Writing the graph: output rows and part files (pure, no Beam; the pool processes import this).

The index steps (build_steps.py) turn their shard's final edges and nodes into the rows of each
output dataset (engagements, graph/edges, graph/users, graph/tweets) and spill them a slice per
output part (`add_parts`); after a shuffle of the references on (dataset, part), `write_graph_part`
writes each part file with `parts.write_part`: the same part choice, row order and bytes as
`io.WriteDataset`. The PBG edge list of a user shard is written by its index step
(`write_pbg_tsv`), named after its first user index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, read_slices, write_split
from twhin_data.core.tags import PARTS, STATS, WRITTEN
from twhin_data.schemas import conform
from twhin_data.schemas.graph import EDGES, ENGAGEMENT_TYPES, ENGAGEMENTS, TWEET_NODES, USERS
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph.pbg import tsv_lines
from twhin_data.transforms.parts import PartSpec, part_keys, write_part


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


@dataclass(frozen=True)
class GraphOutputs:
    """Where and how the graph's datasets are written (picklable: the pooled steps get it)."""

    output: str
    types: tuple[str, ...]  # the relations, in index order
    num_shards: int = 1

    def spec(self, dataset: str) -> PartSpec:
        path, schema, key, sort_by = {
            "engagements": (("engagements",), ENGAGEMENTS, "tweet_id", ("user_id", "tweet_id", "type")),
            "edges": (("graph", "edges"), EDGES, "lhs", ("lhs", "rhs", "rel")),
            "users": (("graph", "users"), USERS, "user_id", ("index",)),
            "tweets": (("graph", "tweets"), TWEET_NODES, "tweet_id", ("index",)),
        }[dataset]
        return PartSpec(files.join(self.output, *path), schema, key, sort_by, self.num_shards, "_".join(path))

    def rows(self, dataset: str, table: pa.Table) -> pa.Table:
        """Internal rows (final edges or nodes) -> the dataset's output rows."""
        if dataset == "engagements":
            return engagements_table(table)
        if dataset == "edges":
            relation_index = {ENGAGEMENT_TYPES.index(t): i for i, t in enumerate(self.types)}
            return edges_table(table, relation_index)
        return vocab_table(table, "user" if dataset == "users" else "tweet")


def add_parts(outputs: GraphOutputs, dataset: str, table: pa.Table, tmp: str, name: str) -> list:
    """`table`'s output rows to ONE spill file, a slice per part: ``Tagged(PARTS, ((dataset, part), ref))``."""
    spec = outputs.spec(dataset)
    rows = outputs.rows(dataset, table)
    path = files.join(tmp, "out", f"{name}.arrow")
    refs = write_split(path, spec.schema, conform(rows, spec.schema), part_keys(rows, spec))
    return [Tagged(PARTS, ((dataset, part), ref)) for part, ref in refs]


def write_graph_part(item: tuple[tuple[str, int], list[SliceRef]], *, outputs: GraphOutputs) -> list:
    """One part file of one dataset from its slices: the file's info dict and a `<name>_rows` stat."""
    (dataset, part), refs = item
    spec = outputs.spec(dataset)
    info = write_part(spec, part, [read_slices(refs, spec.schema)])
    return [info, Tagged(STATS, {f"{spec.name}_rows": info["rows"]})]


def write_pbg_tsv(edges: pa.Table, outputs: GraphOutputs) -> list:
    """A user shard's final edges (sorted by lhs) -> ``graph/pbg/edges/edges-<first lhs>.tsv``."""
    if edges.num_rows == 0:
        return []
    first = int(edges.column("lhs")[0].as_py())
    path = files.join(outputs.output, "graph", "pbg", "edges", f"edges-{first:012d}.tsv")
    data = tsv_lines(edges, list(outputs.types))
    files.write_bytes_atomic(path, data)
    return [Tagged(WRITTEN, {"path": path, "rows": edges.num_rows, "bytes": len(data)})]
