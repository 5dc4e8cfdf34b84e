"""Socially-similar tweet pairs: co-engagement counts over the graph, or kNN over tweet embeddings."""

from __future__ import annotations

import functools
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
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph import pair_scoring as pcore
from twhin_data.transforms.graph import pair_steps as ps
from twhin_data.transforms.graph.embedding_files import (
    EMBEDDING_COUNTS,
    EMBEDDING_SUFFIXES,
    ID_COLUMNS,
    VECTOR_COLUMNS,
    columns_of,
    file_vectors,
)
from twhin_data.transforms.graph.transform import POOL
from twhin_data.transforms.graph.tweet_map import load_tweet_map
from twhin_data.transforms.metrics import CountStatsFn
from twhin_data.transforms.parallel import PoolMapFn

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


class CoEngagementPairs(beam.PTransform):
    """Final graph edges (``(user shard, SliceRef)``, whole users per shard, with `engagers`) ->
    PAIRS tables, through the pooled steps of pair_steps.py (spill files under `tmp`).

    A pair is kept when it is among the `top_k` best-scored neighbours of either tweet (rank =
    the better of the two), has count >= `min_count` and score >= `min_score`.
    """

    def __init__(
        self,
        splits,
        *,
        top_k: int,
        min_score: float,
        min_count: int,
        gap_s: int,
        fanout_cap: int,
        tmp: str,
        workers: int = 1,
    ):
        super().__init__()
        self._splits = splits
        self._top_k, self._min_score, self._min_count = top_k, min_score, min_count
        self._gap_ms, self._fanout = gap_s * 1000, fanout_cap
        self._tmp, self._workers = tmp, workers

    def _pooled(self, fn, **kwargs) -> PoolMapFn:
        return PoolMapFn(functools.partial(fn, **kwargs), workers=self._workers, shared=POOL)

    def expand(self, edges):
        side = beam.pvalue.AsSingleton(self._splits)
        directed = (
            edges
            | "WithSplits" >> beam.Map(lambda item, splits: (*item, splits), side)
            | "UserPairs"
            >> beam.ParDo(
                self._pooled(ps.directed_pairs, gap_ms=self._gap_ms, fanout_cap=self._fanout, tmp=self._tmp)
            ).with_outputs(STATS, main="refs")
        )
        ranked = (
            directed.refs
            | "GroupPairsByTweet" >> beam.GroupByKey()
            | "TweetShards" >> beam.Map(lambda kv, splits: (kv[0], list(kv[1]), splits), side)
            | "ScoreTopK"
            >> beam.ParDo(
                self._pooled(
                    ps.score_top_k,
                    top_k=self._top_k,
                    min_score=self._min_score,
                    min_count=self._min_count,
                    tmp=self._tmp,
                )
            )
        )
        pairs = (
            ranked
            | "GroupCanonical" >> beam.GroupByKey()
            | "PairShards" >> beam.Map(lambda kv: (kv[0], list(kv[1])))
            | "CanonicalPairs" >> beam.ParDo(self._pooled(ps.canonical_pairs)).with_outputs(STATS, main="pairs")
        )
        _ = (
            (directed[STATS], pairs[STATS])
            | "PairStats" >> beam.Flatten()
            | "CountPairs" >> beam.ParDo(CountStatsFn(NAMESPACE))
        )
        return pairs.pairs | "PairRows" >> beam.Map(to_pairs_table, "cooccurrence")


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
