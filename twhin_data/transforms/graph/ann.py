"""Distributed nearest-neighbour pairs over tweet embeddings (IVF routed through Beam shuffles).

`graph --pairs embeddings --knn distributed` (or `auto` above `DISTRIBUTED_MIN` vectors) mines
the same cosine top-k pairs as the one-worker FAISS search (pairs.EmbeddingPairs), without
ever holding every vector in one worker:

1. **Train.** A deterministic sample (a salted hash of the tweet ID below a rate: at most
   `SAMPLE_PER_LIST` vectors per list) trains `nlist` spherical k-means centroids (FAISS
   k-means, fixed seed). nlist and nprobe follow the one-worker `auto` rule: a power of two near
   4 sqrt(N), and the paper's 2000 of 65536 lists probed, scaled to nlist (at least `MIN_PROBE`).
2. **Route.** Each vector goes to its nearest list (the base side) and, as a query, to its nprobe
   nearest lists; one GroupByKey on the list ID brings a list's vectors and the queries that probe
   it together (blocks of vectors, not single rows).
3. **Search.** Inside each list: exact inner products of its queries with its vectors, the best
   k + 1 per query (the query itself and repeats of its tweet are dropped).
4. **Merge.** A CombinePerKey keeps each query's k best over the lists it probed (score, then
   tweet ID); a neighbour's rank is its place there, and a pair found from both of its tweets
   keeps its best rank (a second CombinePerKey on the pair), as the one-worker path ranks them.

Memory per worker is one list's vectors plus the queries that probe it: about
N (1 + nprobe) / nlist vectors, which grows as sqrt(N), not N. Same input, same pairs, whatever
the runner or worker count: every step sorts by tweet ID before it computes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.core.hashing import id_unit_interval
from twhin_data.core.tags import ERRORS
from twhin_data.transforms.graph import pair_scoring as pcore

NAMESPACE = "graph"
#: `--knn auto` switches to the distributed search above this many vectors.
DISTRIBUTED_MIN = 1_000_000
SAMPLE_PER_LIST = 64
MIN_PROBE = 8
SEED = 1234
Block = tuple[np.ndarray, np.ndarray]  # (tweet IDs uint64, L2-normalized float32 vectors)


def ivf_plan(n: int, nprobe: int) -> tuple[int, int]:
    """(nlist, nprobe) for n vectors: the one-worker rule (pair_scoring.resolve_factory)."""
    _, probes = pcore.resolve_factory("IVF65536,Flat", n, 8, nprobe)
    target = 1 << max(0, int(np.log2(max(1.0, 4 * np.sqrt(n)))))
    nlist = max(1, min(65536, target, max(1, n // 39)))
    return nlist, max(1, min(nlist, max(MIN_PROBE, probes)))


def normalized(vectors: list) -> np.ndarray:
    x = np.ascontiguousarray(np.stack(vectors).astype(np.float32)) if vectors else np.zeros((0, 1), np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def sample(block: Block, rate: float) -> Block:
    ids, x = block
    keep = id_unit_interval(pa.array(ids, pa.uint64()), salt="ann-sample") < rate
    return ids[keep], x[keep]


def train_centroids(blocks: Iterable[Block], nlist: int) -> np.ndarray:
    """Spherical k-means centroids (nlist x dim) of the sample, in tweet-ID order (deterministic)."""
    import faiss

    parts = [b for b in blocks if len(b[0])]
    ids = np.concatenate([b[0] for b in parts])
    x = np.concatenate([b[1] for b in parts])
    x = x[np.argsort(ids, kind="stable")]
    nlist = max(1, min(nlist, len(x)))
    kmeans = faiss.Kmeans(x.shape[1], nlist, niter=20, seed=SEED, spherical=True, verbose=False)
    kmeans.train(np.ascontiguousarray(x))
    return kmeans.centroids.copy()


def route(block: Block, centroids: np.ndarray, nprobe: int) -> Iterator[tuple[int, tuple[str, Block]]]:
    """``(list, ("base", vectors))`` for each vector's nearest list and ``(list, ("query", ...))``
    for each of its nprobe nearest lists, one block per list."""
    ids, x = block
    if len(ids) == 0:
        return
    near = np.argsort(-(x @ centroids.T), axis=1, kind="stable")[:, :nprobe]
    for role, lists in (("base", near[:, :1]), ("query", near)):
        rows = np.repeat(np.arange(len(ids)), lists.shape[1])
        flat = lists.reshape(-1)
        order = np.argsort(flat, kind="stable")
        bounds = np.flatnonzero(np.diff(flat[order])) + 1
        for group in np.split(order, bounds):
            picked = rows[group]
            yield int(flat[group[0]]), (role, (ids[picked], x[picked]))


def search_list(item: tuple[int, Iterable[tuple[str, Block]]], k: int) -> Iterator[tuple[int, Block]]:
    """One list: each query's k + 1 best base vectors by inner product -> ``(query, (ids, scores))``."""
    _, blocks = item
    base = [b for role, b in blocks if role == "base"]
    queries = [b for role, b in blocks if role == "query"]
    if not base or not queries:
        return
    base_ids = np.concatenate([b[0] for b in base])
    order = np.argsort(base_ids, kind="stable")
    base_ids, base_x = base_ids[order], np.concatenate([b[1] for b in base])[order]
    for q_ids, q_x in queries:
        scores = q_x @ base_x.T
        scores[q_ids[:, None] == base_ids[None, :]] = -np.inf  # the query's own tweet is no neighbour
        take = min(k + 1, base_ids.size)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :take]
        for row, query in enumerate(q_ids.tolist()):
            found = scores[row, best[row]]
            ok = np.isfinite(found)
            yield query, (base_ids[best[row][ok]], found[ok].astype(np.float32))


class TopK(beam.CombineFn):
    """A query's k best (score desc, tweet ID asc) over the lists it probed."""

    def __init__(self, k: int):
        self._k = k

    def create_accumulator(self) -> Block:
        return np.zeros(0, np.uint64), np.zeros(0, np.float32)

    def add_input(self, acc: Block, item: Block) -> Block:
        return self.merge_accumulators([acc, item])

    def merge_accumulators(self, accs) -> Block:
        accs = list(accs)
        ids = np.concatenate([a[0] for a in accs])
        scores = np.concatenate([a[1] for a in accs])
        ids, first = np.unique(ids, return_index=True)  # a neighbour found in two lists counts once
        scores = scores[first]
        order = np.lexsort((ids, -scores))[: self._k]
        return ids[order], scores[order]

    def extract_output(self, acc: Block) -> Block:
        return acc


def ranked_edges(item: tuple[int, Block], *, k: int, min_score: float) -> Iterator[tuple[tuple[int, int], tuple]]:
    """One query's neighbours (best first) -> ``((a, b), (rank, -score))`` with a < b, rank 1..k."""
    query, (ids, scores) = item
    rank = 0
    for other, score in zip(ids.tolist(), scores.tolist(), strict=True):
        if other == query:
            continue
        rank += 1
        if rank > k:
            break
        if score >= min_score:
            yield (min(query, other), max(query, other)), (rank, -float(score))


def pairs_table(rows: list[tuple[tuple[int, int], tuple]]) -> pa.Table:
    """``((a, b), (best rank, -score))`` rows -> the internal pairs table (pair_scoring.PAIR_COLUMNS)."""
    return pa.table(
        {
            "a": pa.array([r[0][0] for r in rows], pa.uint64()),
            "b": pa.array([r[0][1] for r in rows], pa.uint64()),
            "score": pa.array([-r[1][1] for r in rows], pa.float32()),
            "count": pa.nulls(len(rows), pa.int64()),
            "rank": pa.array([r[1][0] for r in rows], pa.int32()),
        },
        schema=pcore.PAIR_COLUMNS,
    )


def _read(path: str, duplicates: str | None, exclude: tuple[str, ...]) -> Iterator:
    from twhin_data.transforms.graph.pairs import file_vectors
    from twhin_data.transforms.graph.tweet_map import load_tweet_map

    tweet_map = load_tweet_map(duplicates, exclude) if duplicates or exclude else None
    ids, vecs, errors, counts = file_vectors(path, tweet_map)
    for error in errors:
        yield beam.pvalue.TaggedOutput(ERRORS, error)
    for name, value in counts.items():
        Metrics.counter(NAMESPACE, name).inc(value)
    yield np.array(ids, np.uint64), normalized(vecs)


class DistributedKnnPairs(beam.PTransform):
    """Embedding files -> internal pair tables (a, b, score, count, rank), errors, info (see module)."""

    def __init__(self, paths: list[str], *, n: int, top_k: int, min_score: float, nprobe: int, duplicates=None, exclude=()):
        super().__init__()
        self._paths, self._n, self._k, self._min_score = paths, n, top_k, min_score
        self._nlist, self._nprobe = ivf_plan(n, nprobe)
        self._duplicates, self._exclude = duplicates, tuple(exclude)

    def expand(self, pbegin):
        read = (
            pbegin
            | "EmbeddingFiles" >> beam.Create(self._paths)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadVectors"
            >> beam.FlatMap(_read, duplicates=self._duplicates, exclude=self._exclude).with_outputs(ERRORS, main="blocks")
        )
        rate = min(1.0, SAMPLE_PER_LIST * self._nlist / max(1, self._n))
        centroids = (
            read.blocks
            | "Sample" >> beam.Map(sample, rate=rate)
            | "AllSamples" >> beam.combiners.ToList()
            | "TrainLists" >> beam.Map(train_centroids, nlist=self._nlist)
        )
        neighbours = (
            read.blocks
            | "Route" >> beam.FlatMap(route, centroids=beam.pvalue.AsSingleton(centroids), nprobe=self._nprobe)
            | "GroupByList" >> beam.GroupByKey()
            | "SearchLists" >> beam.FlatMap(search_list, k=self._k)
            | "MergeTopK" >> beam.CombinePerKey(TopK(self._k + 1))
        )
        pairs = (
            neighbours
            | "RankedEdges" >> beam.FlatMap(ranked_edges, k=self._k, min_score=self._min_score)
            # A pair found from both tweets keeps its best rank (as the one-worker path).
            | "Canonical" >> beam.CombinePerKey(min)
            | "Batch" >> beam.BatchElements(min_batch_size=1024, max_batch_size=65536)
            | "PairTables" >> beam.Map(pairs_table)
        )
        info = {"vectors": self._n, "knn": "distributed", "nlist": self._nlist, "nprobe": self._nprobe}
        return pairs, read[ERRORS], info


def count_vectors(paths: list[str]) -> int | None:
    """Rows of the Parquet embedding files (footers only); None when another format is among them."""
    if not all(p.endswith(".parquet") for p in paths):
        return None
    import pyarrow.parquet as pq

    total = 0
    for path in paths:
        with files.open_read(path) as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total
