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
4. **Merge.** The candidates go, as blocks, to their query's home bucket (tweet ID mod
   N / `HOME_SIZE`), where each query keeps its k best over the lists it probed (score, then tweet
   ID) and a neighbour's rank is its place there; the pairs then go to the home bucket of their
   smaller ID, where a pair found from both tweets keeps its best rank, as the one-worker path.
   Every shuffle moves numpy blocks, never one element per vector or pair.

Memory per worker is one list's vectors (about N / nlist: sqrt(N) / 4 up to 65536 lists, 15k
vectors at 1B) plus one block of the queries that probe it: the list's vectors and its queries are
two sides of a CoGroupByKey, and the queries are iterated, not held (Dataflow pages a large
group's values in; FnApiRunner holds every shuffle in memory anyway). Same input, same pairs, whatever
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
from twhin_data.core.tables import groups
from twhin_data.core.tags import ERRORS
from twhin_data.transforms.graph import pair_scoring as pcore

NAMESPACE = "graph"
#: `--knn auto` switches to the distributed search above this many vectors.
DISTRIBUTED_MIN = 1_000_000
SAMPLE_PER_LIST = 64
MIN_PROBE = 8
SEED = 1234
#: Queries (and pairs) per home bucket, where a query's candidates from its lists are merged.
HOME_SIZE = 20_000
Block = tuple[np.ndarray, np.ndarray]  # (tweet IDs uint64, L2-normalized float32 vectors)
_MAPS: dict = {}


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
    if not parts:  # no valid vector at all: nothing will be routed
        return np.zeros((0, 0), np.float32)
    ids = np.concatenate([b[0] for b in parts])
    x = np.concatenate([b[1] for b in parts])
    x = x[np.argsort(ids, kind="stable")]
    nlist = max(1, min(nlist, len(x)))
    kmeans = faiss.Kmeans(x.shape[1], nlist, niter=20, seed=SEED, spherical=True, verbose=False)
    kmeans.train(np.ascontiguousarray(x))
    return kmeans.centroids.copy()


def route(block: Block, centroids: np.ndarray, nprobe: int) -> Iterator:
    """``(list, vectors)`` on the ``base`` output for each vector's nearest list, and ``(list,
    queries)`` on the main output for each of its nprobe nearest lists, one block per list."""
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
            out = (int(flat[group[0]]), (ids[picked], x[picked]))
            yield out if role == "query" else beam.pvalue.TaggedOutput("base", out)


def search_list(item: tuple[int, dict], *, k: int, homes: int) -> Iterator[tuple[int, tuple]]:
    """One list: each query's k + 1 best base vectors by inner product, as blocks
    ``(home, (query IDs, neighbour IDs, scores))`` split by the queries' home bucket."""
    _, grouped = item
    base = list(grouped["base"])  # held: the list's own vectors (about N / nlist)
    queries = grouped["query"]  # streamed: on Dataflow a large group's values are paged in
    if not base:
        return
    base_ids = np.concatenate([b[0] for b in base])
    order = np.argsort(base_ids, kind="stable")
    base_ids, base_x = base_ids[order], np.concatenate([b[1] for b in base])[order]
    take = min(k + 1, base_ids.size)
    for q_ids, q_x in queries:
        scores = q_x @ base_x.T
        best = np.argsort(-scores, axis=1, kind="stable")[:, :take]
        found = np.take_along_axis(scores, best, axis=1).astype(np.float32).reshape(-1)
        query = np.repeat(q_ids, take)
        other = base_ids[best].reshape(-1)
        keep = other != query  # the query's own tweet is no neighbour
        query, other, found = query[keep], other[keep], found[keep]
        home = (query % np.uint64(homes)).astype(np.int64)
        for h, rows in groups(home):
            yield h, (query[rows], other[rows], found[rows])


def merge_home(item: tuple[int, Iterable[tuple]], *, k: int, min_score: float, homes: int) -> Iterator[tuple[int, tuple]]:
    """One home bucket's candidates -> each query's k best (score desc, tweet ID asc) with their rank,
    as pair edges ``(home of the pair, (a, b, rank, score))``, a < b."""
    _, parts = item
    parts = list(parts)
    query = np.concatenate([p[0] for p in parts])
    other = np.concatenate([p[1] for p in parts])
    score = np.concatenate([p[2] for p in parts])
    order = np.lexsort((-score, other, query))  # a neighbour found in two lists counts once
    query, other, score = query[order], other[order], score[order]
    first = np.concatenate([[True], (query[1:] != query[:-1]) | (other[1:] != other[:-1])])
    query, other, score = query[first], other[first], score[first]
    order = np.lexsort((other, -score, query))  # best first inside each query
    query, other, score = query[order], other[order], score[order]
    starts = np.flatnonzero(np.concatenate([[True], query[1:] != query[:-1]]))
    rank = np.arange(query.size) - np.repeat(starts, np.diff(np.append(starts, query.size))) + 1
    keep = (rank <= k) & (score >= min_score)
    query, other, score, rank = query[keep], other[keep], score[keep], rank[keep]
    a, b = np.minimum(query, other), np.maximum(query, other)
    for h, rows in groups((a % np.uint64(homes)).astype(np.int64)):
        yield h, (a[rows], b[rows], rank[rows].astype(np.int32), score[rows])


def canonical_pairs(item: tuple[int, Iterable[tuple]]) -> pa.Table:
    """One home bucket's pair edges -> one row per pair with its best rank (as the one-worker path)."""
    _, parts = item
    parts = list(parts)
    a = np.concatenate([p[0] for p in parts])
    b = np.concatenate([p[1] for p in parts])
    rank = np.concatenate([p[2] for p in parts])
    score = np.concatenate([p[3] for p in parts])
    pick = pcore.canonical_min_rank(a, b, rank)
    return pa.table(
        {
            "a": pa.array(a[pick], pa.uint64()),
            "b": pa.array(b[pick], pa.uint64()),
            "score": pa.array(score[pick], pa.float32()),
            "count": pa.nulls(int(pick.size), pa.int64()),
            "rank": pa.array(rank[pick], pa.int32()),
        },
        schema=pcore.PAIR_COLUMNS,
    )


def _read(path: str, duplicates: str | None, exclude: tuple[str, ...]) -> Iterator:
    from twhin_data.transforms.graph.pairs import file_vectors
    from twhin_data.transforms.graph.tweet_map import load_tweet_map

    key = (duplicates, exclude)
    if key not in _MAPS:  # read once per worker process, not once per file
        _MAPS[key] = load_tweet_map(duplicates, exclude) if duplicates or exclude else None
    ids, vecs, errors, counts = file_vectors(path, _MAPS[key])
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
        homes = max(1, self._n // HOME_SIZE)
        routed = (
            read.blocks
            | "Route"
            >> beam.FlatMap(route, centroids=beam.pvalue.AsSingleton(centroids), nprobe=self._nprobe).with_outputs(
                "base", main="query"
            )
        )
        pairs = (
            {"base": routed.base, "query": routed.query}
            | "GroupByList" >> beam.CoGroupByKey()
            | "SearchLists" >> beam.FlatMap(search_list, k=self._k, homes=homes)
            # Each query's candidates from every list it probed meet in its home bucket.
            | "GroupByQueryHome" >> beam.GroupByKey()
            | "TopK" >> beam.FlatMap(merge_home, k=self._k, min_score=self._min_score, homes=homes)
            # A pair found from both tweets keeps its best rank (as the one-worker path).
            | "GroupByPairHome" >> beam.GroupByKey()
            | "Canonical" >> beam.Map(canonical_pairs)
        )
        return pairs, read[ERRORS], {"vectors": self._n, "knn": "distributed", "nlist": self._nlist, "nprobe": self._nprobe}


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
