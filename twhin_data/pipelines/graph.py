"""`twhin-data graph`: engagement logs (+ hydrated tweets) -> engagement graph, PBG input, tweet pairs."""

from __future__ import annotations

import argparse
import json
import logging
import os
from dataclasses import dataclass, field

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics.metric import MetricsFilter

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.report import write_stats
from twhin_data.pipelines.graph_args import add_arguments as add_arguments  # the command's flags
from twhin_data.pipelines.plan import Plan, RunSettings
from twhin_data.schemas.graph import (
    EDGES,
    ENGAGEMENT_TYPES,
    ENGAGEMENTS,
    PAIRS,
    TWEET_NODES,
    USERS,
)
from twhin_data.transforms.graph import ann, ann_steps, logs, pbg
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph import engagements as eng
from twhin_data.transforms.graph import read_steps as rs
from twhin_data.transforms.graph.embedding_files import vector_dim
from twhin_data.transforms.graph.pairs import (
    CoEngagementPairs,
    EmbeddingPairs,
    check_embeddings,
    to_pairs_table,
)
from twhin_data.transforms.graph.report import build_stats, render_html
from twhin_data.transforms.graph.transform import SAMPLES_PER_SHARD, BuildGraph
from twhin_data.transforms.graph.write import WriteRelations
from twhin_data.transforms.graph.write_steps import GraphOutputs
from twhin_data.transforms.io import MarkComplete, WriteDataset, WriteErrors
from twhin_data.transforms.metrics import counters

NAME = "graph"
LOG = logging.getLogger("twhin_data.graph")
PAIR_METHODS = ("cooccurrence", "embeddings")
OUTPUT_DIRS = ("engagements", "graph", "pairs", os.path.join("errors", NAME), os.path.join("reports", NAME))
#: Input bytes per range partition: a task's memory follows its partition, so the partition count
#: grows with the input (1M engagements, ~46 MB of CSV: 16; 3M: 46). The cap bounds the
#: references of a round's shuffle (partitions x partitions).
BYTES_PER_PARTITION = 3 << 20
MIN_PARTITIONS, MAX_PARTITIONS = 16, 4096
BYTES_PER_OUTPUT_PART = 256 << 20
#: Modules of the pooled steps, imported once by the pool's fork server (core/pool.py).
POOL_PRELOAD = [
    "twhin_data.transforms.graph.read_steps",
    "twhin_data.transforms.graph.build_steps",
    "twhin_data.transforms.graph.pair_steps",
    "twhin_data.transforms.graph.ann_steps",
]


def _window(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """--start and --end in ms since the epoch (None when not given)."""
    try:
        start_ms = gc.iso_to_ms(args.start) if args.start else None
        end_ms = gc.iso_to_ms(args.end) if args.end else None
    except ValueError as exc:
        raise ConfigError(f"--start/--end: {exc}") from None
    return start_ms, end_ms


def validate(args: argparse.Namespace) -> None:
    if not args.engagements and not args.tweets:
        raise ConfigError("give --engagements and/or --tweets")
    bad = [t for t in args.types if t not in ENGAGEMENT_TYPES]
    if bad or not args.types:
        raise ConfigError(
            f"--types: unknown {', '.join(bad) or '(empty)'}; choose from {', '.join(ENGAGEMENT_TYPES)}"
        )
    start_ms, end_ms = _window(args)
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise ConfigError("--start must be before --end")
    unknown = [m for m in args.pairs if m != "none" and m not in PAIR_METHODS]
    if unknown:
        raise ConfigError(
            f"--pairs: unknown method {', '.join(unknown)}; choose from cooccurrence, embeddings, none"
        )
    if "embeddings" in args.pairs and not args.embeddings:
        raise ConfigError("--pairs embeddings needs --embeddings GLOB")
    if not -1.0 <= args.min_score <= 1.0:
        raise ConfigError(f"--min_score must be in [-1, 1], got {args.min_score}")
    logs.parse_column_map(args.column_map)  # ConfigError on a malformed --column_map
    if args.duplicates and not files.list_parquet(args.duplicates):
        raise ConfigError(f"--duplicates {args.duplicates}: no Parquet files (expected prepare's duplicates/ folder)")
    for folder in args.exclude or ():
        if not files.exists(files.join(folder, "manifest.json")):
            raise ConfigError(f"--exclude {folder}: not a built benchmark (no manifest.json there)")


@dataclass(frozen=True)
class GraphPlan(Plan):
    types: list[str]  # --types in ENGAGEMENT_TYPES order
    start_ms: int | None
    end_ms: int | None
    pair_methods: list[str]  # --pairs in PAIR_METHODS order, without none
    mapping: dict[str, str]  # --column_map parsed: our column name -> input column
    input_bytes: int  # engagement files plus hydrated tweets
    num_partitions: int  # range partitions of the graph
    output_parts: int  # Parquet parts of each output dataset
    knn_paths: list[str] = field(default_factory=list)  # --embeddings files
    knn_vectors: int | None = None  # their rows (Parquet footers); None for TSV/HDF5
    knn_dim: int | None = None  # the first Parquet vector's length (the distributed search's check)


def plan(args: argparse.Namespace, run: RunSettings) -> GraphPlan:
    start_ms, end_ms = _window(args)
    pair_methods = [m for m in PAIR_METHODS if m in args.pairs]
    knn_paths, knn_vectors, knn_dim = [], None, None
    if "embeddings" in pair_methods:
        knn_paths = check_embeddings(args.embeddings)
        knn_vectors = ann.count_vectors(knn_paths)
        knn_dim = vector_dim(knn_paths) if knn_vectors is not None else None
        if getattr(args, "knn", "auto") == "distributed" and knn_vectors is None:
            raise ConfigError("--knn distributed reads Parquet embeddings only (export PBG's TSV/HDF5 to Parquet)")
    mapping = logs.parse_column_map(args.column_map)
    paths = []
    if args.engagements:
        paths = files.expand_inputs(args.engagements)
        known = [p for p in paths if logs.file_format(p)]
        if not known:
            raise ConfigError(f"--engagements {args.engagements!r}: no .csv/.tsv/.jsonl/.parquet files")
        for path in known[:5]:
            logs.check_header(path, mapping)
    if args.tweets:
        paths += files.expand_inputs(eng.tweets_pattern(args.tweets))
    size = files.total_size(paths)
    return GraphPlan(
        args=args,
        run=run,
        types=[t for t in ENGAGEMENT_TYPES if t in args.types],
        start_ms=start_ms,
        end_ms=end_ms,
        pair_methods=pair_methods,
        mapping=mapping,
        input_bytes=size,
        num_partitions=args.partitions or min(MAX_PARTITIONS, max(MIN_PARTITIONS, -(-size // BYTES_PER_PARTITION))),
        output_parts=max(1, -(-size // BYTES_PER_OUTPUT_PART)),
        knn_paths=knn_paths,
        knn_vectors=knn_vectors,
        knn_dim=knn_dim,
    )


def progress_total(plan: GraphPlan) -> tuple[int | None, str]:
    """Rows of the engagement logs (unknown for compressed or remote files, or with --tweets)."""
    if plan.args.tweets or not plan.args.engagements:
        return None, "rows"
    counts = [logs.count_rows(p) for p in files.expand_inputs(plan.args.engagements) if logs.file_format(p)]
    return (None if None in counts else sum(counts)), "rows"


def prepare_output(plan: GraphPlan) -> None:
    output = plan.output
    existing = [d for d in ("graph", "pairs", "engagements") if files.exists(files.join(output, d))]
    if existing and not plan.args.overwrite:
        raise ConfigError(f"{files.join(output, existing[0])} exists: pass --overwrite to replace it")
    if plan.args.overwrite:
        for name in OUTPUT_DIRS:
            files.remove(files.join(output, name))
    ann_steps.remove_tmp(output)  # left by a failed run: never read again
    for name in _datasets(plan):
        files.begin_output(files.join(output, name), NAME)


def _datasets(plan: GraphPlan) -> dict[str, pa.Schema | None]:
    """The folders graph publishes (each gets _INCOMPLETE while written, _SUCCESS when done), and the
    schema of the empty part a folder that got no rows receives."""
    graph = {"graph": None, "graph/edges": EDGES, "graph/users": USERS, "graph/tweets": TWEET_NODES}
    return {"engagements": ENGAGEMENTS, **graph, "graph/relations": None, **({"pairs": PAIRS} if plan.pair_methods else {})}


def _distributed(plan: GraphPlan) -> bool:
    """--knn distributed, or auto above ann.DISTRIBUTED_MIN Parquet vectors."""
    knn = plan.args.knn
    return plan.knn_vectors is not None and (
        knn == "distributed" or (knn == "auto" and plan.knn_vectors > ann.DISTRIBUTED_MIN)
    )


def build(p: beam.Pipeline, plan: GraphPlan) -> None:
    args, out, parts = plan.args, plan.output, plan.output_parts
    tmp, workers = ann_steps.tmp_dir(out), plan.run.workers
    spec = rs.WindowSpec(types=plan.types, start_ms=plan.start_ms, end_ms=plan.end_ms)
    read, errors = p | "ReadEngagements" >> eng.ReadEngagements(
        args.engagements or "",
        spec=spec,
        mapping=plan.mapping,
        tmp=tmp,
        sample_k=SAMPLES_PER_SHARD * plan.num_partitions,
        tweets=args.tweets,
        workers=workers,
        duplicates=args.duplicates,
        exclude=tuple(args.exclude or ()),
    )
    graph = read | "BuildGraph" >> BuildGraph(
        num_shards=plan.num_partitions,
        max_per_user=args.max_per_user,
        min_per_tweet=args.min_per_tweet,
        iterations=args.filter_iterations,
        cap_policy=args.cap_policy,
        outputs=GraphOutputs(out, tuple(plan.types), parts),
        tmp=tmp,
        workers=workers,
        keep_edges="cooccurrence" in plan.pair_methods,
    )
    written = [graph["written"], p | "WriteRelations" >> WriteRelations(out, plan.types)]
    pair_tables = []
    if "cooccurrence" in plan.pair_methods:
        pair_tables.append(
            graph["edges"]
            | "CoEngagement"
            >> CoEngagementPairs(
                graph["splits"],
                top_k=args.top_k,
                min_score=args.min_score,
                min_count=args.min_count,
                gap_s=args.pair_time_gap_s,
                fanout_cap=args.max_fanout_per_user,
                tmp=tmp,
                workers=workers,
            )
        )
    if "embeddings" in plan.pair_methods and _distributed(plan):
        tables, knn_errors, _ = p | "DistributedKnn" >> ann.DistributedKnnPairs(
            plan.knn_paths,
            n=plan.knn_vectors,
            top_k=args.top_k,
            min_score=args.min_score,
            nprobe=args.nprobe,
            tmp=ann_steps.tmp_dir(out),
            workers=plan.run.workers,
            dim=plan.knn_dim,
            duplicates=args.duplicates,
            exclude=tuple(args.exclude or ()),
        )
        pair_tables.append(tables | "EmbeddingPairTables" >> beam.Map(to_pairs_table, "embeddings"))
        errors = (errors, knn_errors) | "AllErrors" >> beam.Flatten()
    elif "embeddings" in plan.pair_methods:
        knn = p | "EmbeddingPairs" >> EmbeddingPairs(
            args.embeddings,
            top_k=args.top_k,
            min_score=args.min_score,
            factory=args.index_factory,
            nprobe=args.nprobe,
            duplicates=args.duplicates,
            exclude=tuple(args.exclude or ()),
        )
        pair_tables.append(knn.pairs)
        errors = (errors, knn.errors) | "AllErrors" >> beam.Flatten()
        _ = knn.info | "WriteKnnInfo" >> beam.Map(
            lambda info: files.write_json(files.join(out, "reports", NAME, "embeddings_index.json"), info)
        )
    if pair_tables:
        written.append(
            pair_tables
            | "AllPairs" >> beam.Flatten()
            | "WritePairs"
            >> WriteDataset(
                files.join(out, "pairs"),
                PAIRS,
                key="tweet_id_a",
                sort_by=["tweet_id_a", "tweet_id_b", "method"],
                num_shards=parts,
                name="pairs",
            )
        )
    _ = errors | "WriteErrors" >> WriteErrors(out, NAME)
    datasets = {files.join(out, *name.split("/")): schema for name, schema in _datasets(plan).items()}
    _ = tuple(written) | "AllWritten" >> beam.Flatten() | "MarkComplete" >> MarkComplete(datasets, NAME)


def params(plan: GraphPlan) -> dict:
    keys = (
        "engagements",
        "tweets",
        "types",
        "start",
        "end",
        "max_per_user",
        "min_per_tweet",
        "filter_iterations",
        "cap_policy",
        "pair_methods",
        "embeddings",
        "top_k",
        "min_score",
        "min_count",
        "max_fanout_per_user",
        "pair_time_gap_s",
        "index_factory",
        "nprobe",
        "knn",
        "column_map",
        "duplicates",
        "exclude",
        "num_partitions",
        "pbg_dimension",
        "pbg_epochs",
    )
    derived = {"types": plan.types, "pair_methods": plan.pair_methods, "num_partitions": plan.num_partitions}
    return {k: derived[k] if k in derived else getattr(plan.args, k) for k in keys}


def _max_degrees(result) -> dict[str, int]:
    """Largest user and tweet degree (Beam distributions `degree_user`, `degree_tweet`)."""
    out = {"user": 0, "tweet": 0}
    try:
        found = result.metrics().query(MetricsFilter().with_namespace("graph"))["distributions"]
    except (NotImplementedError, AttributeError):
        return out
    for dist in found:
        side = dist.key.metric.name.removeprefix("degree_")
        value = dist.committed if dist.committed is not None else dist.attempted
        if side in out and value is not None and value.count:
            out[side] = max(out[side], int(value.max))
    return out


def finish(result, plan: GraphPlan, elapsed_s: float) -> dict:
    args, out = plan.args, plan.output
    ann_steps.remove_tmp(out)
    report_dir = files.join(out, "reports", NAME)
    pbg_dir = files.join(out, "graph", "pbg")
    files.write_bytes_atomic(
        files.join(pbg_dir, "config.py"),
        pbg.config_text(plan.types, dimension=args.pbg_dimension, epochs=args.pbg_epochs).encode("utf-8"),
    )
    pbg.write_relation_names(pbg_dir, plan.types)
    extra = {"degree_max": _max_degrees(result)}
    knn_info = files.join(report_dir, "embeddings_index.json")
    if "embeddings" in plan.pair_methods and _distributed(plan):  # known from the plan
        nlist, nprobe = ann_steps.ivf_plan(plan.knn_vectors, args.nprobe)
        extra["embeddings_index"] = {"vectors": plan.knn_vectors, "knn": "distributed", "nlist": nlist, "nprobe": nprobe}
    elif files.exists(knn_info):
        extra["embeddings_index"] = json.loads(files.read_bytes(knn_info))
    stats = build_stats(
        counters(result, "graph"), params=params(plan), rounds=args.filter_iterations, extra=extra
    )
    write_stats(out, NAME, stats, render_html)
    if not stats["accounting"]["balanced"]:
        LOG.error("graph: counts do not balance: %s", stats["accounting"])
    return {
        "stage": NAME,
        "in": stats["accounting"]["in"],
        "edges": stats["edges"],
        "users": stats["users"],
        "tweets": stats["tweets"],
        "rejected": stats["accounting"]["rejected"],
        "filtered": stats["filtered"],
        "duplicates": stats["duplicates"],
        "pairs": {m: stats["pairs"][m] for m in plan.pair_methods},
        "balanced": stats["accounting"]["balanced"],
        "graph": files.join(out, "graph"),
        "pbg_config": files.join(pbg_dir, "config.py"),
        "report": files.join(report_dir, "report.html"),
        "elapsed_s": round(elapsed_s, 2),
    }
