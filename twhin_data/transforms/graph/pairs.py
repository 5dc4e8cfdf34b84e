"""Socially-similar tweet pairs: co-engagement counts over the graph, or kNN over tweet embeddings."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.tables import split_table
from twhin_data.core.tags import ERRORS
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph import pair_scoring as pcore
from twhin_data.transforms.graph.embedding_files import (
    EMBEDDING_COUNTS,
    EMBEDDING_SUFFIXES,
    ID_COLUMNS,
    VECTOR_COLUMNS,
    columns_of,
    file_vectors,
)
from twhin_data.transforms.graph.transform import key_by
from twhin_data.transforms.graph.tweet_map import load_tweet_map

NAMESPACE = "graph"


def to_pairs_table(table: pa.Table, method: str) -> pa.Table:
    """Internal (a, b uint64, score, count, rank) -> the PAIRS schema (string IDs, method)."""
    return pa.table(
        {
            "tweet_id_a": gc.ids_to_strings(table.column("a").to_numpy()),
            "tweet_id_b": gc.ids_to_strings(table.column("b").to_numpy()),
            "score": table.column("score"),
            "count": table.column("count"),
            "rank": table.column("rank"),
            "method": pa.array([method] * table.num_rows, pa.string()),
        }
    )


def _directed(edges: pa.Table, *, gap_ms: int, fanout_cap: int, splits) -> Iterable:
    """Final edges of whole users -> (tweet shard, directed pair counts with engagers)."""
    left, right, counts = pcore.user_pairs(edges, gap_ms=gap_ms, fanout_cap=fanout_cap)
    for name, value in counts.items():
        if value:
            Metrics.counter(NAMESPACE, name).inc(value)
    Metrics.counter(NAMESPACE, "pairs_generated").inc(len(left))
    if len(left) == 0:
        return
    tweets = edges.column("tweet").to_numpy()
    _, first = np.unique(tweets, return_index=True)
    keys, engagers = tweets[first], edges.column("engagers").to_numpy()[first]
    # Both directions, pre-aggregated here so the shuffle carries each (focal, other) once per partition.
    focal, other, count = pcore.aggregate_directed(
        np.r_[left, right], np.r_[right, left], np.ones(2 * len(left), dtype=np.int64)
    )
    table = pa.table(
        {
            "tweet": pa.array(focal, pa.uint64()),
            "other": pa.array(other, pa.uint64()),
            "count": pa.array(count, pa.int64()),
            "deg_f": pa.array(gc.lookup(keys, engagers, focal), pa.int64()),
            "deg_o": pa.array(gc.lookup(keys, engagers, other), pa.int64()),
        }
    )
    yield from key_by(table, "tweet", splits)


def _score_top_k(item, *, top_k: int, min_score: float, min_count: int, splits) -> Iterable:
    """(tweet shard, directed tables) -> (shard of a, canonical pairs in some tweet's top-k)."""
    _, tables = item
    table = pa.concat_tables(list(tables)).combine_chunks()
    focal, other, count = pcore.aggregate_directed(*gc.cols(table, "tweet", "other", "count"))
    deg = {}
    for name, col in (("f", "tweet"), ("o", "other")):
        keys = table.column(col).to_numpy()
        _, first = np.unique(keys, return_index=True)
        deg[name] = gc.lookup(
            keys[first], table.column(f"deg_{name}").to_numpy()[first], focal if name == "f" else other
        )
    score = (count / np.sqrt(np.maximum(deg["f"] * deg["o"], 1))).astype(np.float32)
    ok = (count >= min_count) & (score >= min_score)
    focal, other, count, score = focal[ok], other[ok], count[ok], score[ok]
    rank = pcore.top_k(focal, other, score, count, top_k)
    keep = rank > 0
    a = np.minimum(focal[keep], other[keep])
    out = pa.table(
        {
            "a": pa.array(a, pa.uint64()),
            "b": pa.array(np.maximum(focal[keep], other[keep]), pa.uint64()),
            "score": pa.array(score[keep], pa.float32()),
            "count": pa.array(count[keep], pa.int64()),
            "rank": pa.array(rank[keep], pa.int32()),
        }
    )
    yield from split_table(out, gc.range_shard(a, splits["tweet"]))


def _canonical(item) -> Iterable[pa.Table]:
    _, tables = item
    table = pa.concat_tables(list(tables)).combine_chunks()
    a, b, rank = gc.cols(table, "a", "b", "rank")
    pick = pcore.canonical_min_rank(a, b, rank)
    Metrics.counter(NAMESPACE, "pairs_cooccurrence").inc(len(pick))
    yield to_pairs_table(table.take(pa.array(pick)), "cooccurrence")


class CoEngagementPairs(beam.PTransform):
    """Final graph edge tables (whole users per table, with `engagers`) -> PAIRS tables.

    A pair is kept when it is among the `top_k` best-scored neighbours of either tweet (rank =
    the better of the two), has count >= `min_count` and score >= `min_score`.
    """

    def __init__(self, splits, *, top_k: int, min_score: float, min_count: int, gap_s: int, fanout_cap: int):
        super().__init__()
        self._splits = splits
        self._top_k, self._min_score, self._min_count = top_k, min_score, min_count
        self._gap_ms, self._fanout = gap_s * 1000, fanout_cap

    def expand(self, edges):
        side = beam.pvalue.AsSingleton(self._splits)
        return (
            edges
            | "UserPairs"
            >> beam.FlatMap(_directed, gap_ms=self._gap_ms, fanout_cap=self._fanout, splits=side)
            | "GroupPairsByTweet" >> beam.GroupByKey()
            | "ScoreTopK"
            >> beam.FlatMap(
                _score_top_k,
                top_k=self._top_k,
                min_score=self._min_score,
                min_count=self._min_count,
                splits=side,
            )
            | "GroupCanonical" >> beam.GroupByKey()
            | "CanonicalPairs" >> beam.FlatMap(_canonical)
        )


# --- embeddings -------------------------------------------------------------------------------


def check_embeddings(pattern: str) -> list[str]:
    """Submit-time check: the files exist and can be read here (HDF5 needs h5py)."""
    paths = files.expand_inputs(pattern, suffixes=EMBEDDING_SUFFIXES)
    for path in paths:
        if path.endswith(".parquet"):
            with FileSystems.open(path) as handle:
                names = pq.ParquetFile(handle).schema_arrow.names
            if None in columns_of(names):
                raise ConfigError(
                    f"{path}: needs an id column ({'/'.join(ID_COLUMNS)}) and a vector column "
                    f"({'/'.join(VECTOR_COLUMNS)}); found {', '.join(names)}"
                )
    if any(p.endswith(".h5") for p in paths):
        if importlib.util.find_spec("h5py") is None:
            raise ConfigError(
                "--embeddings: HDF5 (.h5) files need h5py, which is not installed; pip install h5py, or "
                "export TSV with torchbiggraph_export_to_tsv and pass that"
            )
    return paths


def _load_and_search(
    pattern: str,
    *,
    top_k: int,
    min_score: float,
    factory: str,
    nprobe: int,
    duplicates: str | None = None,
    exclude: tuple[str, ...] = (),
) -> Iterable:
    ids, vecs, seen = [], [], set()
    counts = dict.fromkeys(EMBEDDING_COUNTS, 0)
    tweet_map = load_tweet_map(duplicates, exclude) if duplicates or exclude else None
    dim = None
    for path in files.expand_inputs(pattern, suffixes=EMBEDDING_SUFFIXES):
        file_ids, file_vecs, errors, file_counts = file_vectors(path, tweet_map, dim)
        for error in errors:
            yield beam.pvalue.TaggedOutput(ERRORS, error)
        for name, value in file_counts.items():
            counts[name] += value
        for value, vec in zip(file_ids, file_vecs, strict=True):
            dim = dim or len(vec)
            if value in seen:
                counts["embeddings_duplicate"] += 1
                continue
            seen.add(value)
            ids.append(value)
            vecs.append(vec)
    matrix = np.stack(vecs) if vecs else np.zeros((0, dim or 1), np.float32)
    table, info = pcore.knn_pairs(
        np.array(ids, dtype=np.uint64), matrix, k=top_k, min_score=min_score, factory=factory, nprobe=nprobe
    )
    for name, value in counts.items():
        Metrics.counter(NAMESPACE, name).inc(value)
    Metrics.counter(NAMESPACE, "pairs_embeddings").inc(table.num_rows)
    yield beam.pvalue.TaggedOutput("info", info)
    yield to_pairs_table(table, "embeddings")


class EmbeddingPairs(beam.PTransform):
    """Tweet embeddings (Parquet id + vector, PBG TSV export, or PBG HDF5 with h5py) -> PAIRS tables.

    Every vector is held by one worker: memory ~ N x dim x 4 bytes (x2 with the normalized copy),
    e.g. 10M x 256 -> ~20 GB. Outputs: main (tables), ``errors`` (bad vectors), ``info`` (one dict:
    vectors, dim, factory and nprobe used).
    """

    def __init__(
        self,
        pattern: str,
        *,
        top_k: int,
        min_score: float,
        factory: str,
        nprobe: int,
        duplicates: str | None = None,
        exclude: tuple[str, ...] = (),
    ):
        super().__init__()
        self._pattern, self._top_k, self._min_score = pattern, top_k, min_score
        self._factory, self._nprobe = factory, nprobe
        self._duplicates, self._exclude = duplicates, exclude

    def expand(self, pbegin):
        return (
            pbegin
            | "EmbeddingPattern" >> beam.Create([self._pattern])
            | "KnnPairs"
            >> beam.FlatMap(
                _load_and_search,
                top_k=self._top_k,
                min_score=self._min_score,
                factory=self._factory,
                nprobe=self._nprobe,
                duplicates=self._duplicates,
                exclude=self._exclude,
            ).with_outputs(ERRORS, "info", main="pairs")
        )
