"""Distributed nearest-neighbour pairs: the pure steps (no Beam; pool processes import this).

`ann.DistributedKnnPairs` wires them with shuffles that carry file references only
(core/spill.py); every row moves through Arrow IPC spill files under the job's temporary folder,
so no worker holds more than the bounds below (the runner's process passes references only). Slices
are read, not memory-mapped: a merge reads a few rows from each of nlist files, and mapped pages
would count in its RSS.

1. `sample_file`: a deterministic sample of each embeddings file (a salted hash of the tweet
   ID below a rate: `SAMPLE_PER_LIST` vectors per list, at most `TRAIN_MAX` in all).
2. `train_centroids`: spherical k-means (FAISS, fixed seed) on the sample, in tweet-ID order;
   the centroids go to one ``.npy`` file that the route tasks read.
3. `route_file`: each vector of a file to its nearest list (the base side) and, as a query, to
   its `nprobe` nearest lists: one spill file per side, one slice per list.
4. `search_list`, per list (after a shuffle on the list ID): the list's base vectors are held,
   its query slices are read one at a time, and each query's ``k + 1`` best base vectors by inner
   product are written out, by the query's home bucket, whenever `FLUSH_ROWS` are pending.
5. `merge_home`, per home bucket: each query's k best over every list it probed (score, then
   tweet ID), a neighbour's rank is its place there; the pairs go out by the home of their
   smaller ID.
6. `canonical_pairs`, per pair home: a pair found from both tweets keeps its best rank, as the
   one-worker search does.

Memory per task: the sample (step 2, at most TRAIN_MAX vectors), one file's vectors and its
routing table (step 3), one list's base vectors plus one query slice plus FLUSH_ROWS candidates
(step 4: N / nlist vectors, about sqrt(N) / 4 up to 65536 lists, then N / 65536: 15k vectors at
1B), `HOME_ROWS` candidates (step 5) and `PAIR_ROWS` pair edges (step 6): as N grows, the number
of buckets grows, not their size. Same input, same pairs, whatever the worker count or runner:
every step sorts by tweet ID before it computes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from twhin_data.core import files
from twhin_data.core.hashing import id_unit_interval
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, SliceWriter, read_slices
from twhin_data.core.tables import groups
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.transforms.graph import pair_scoring as pcore
from twhin_data.transforms.graph.embedding_files import file_vectors
from twhin_data.transforms.graph.tweet_map import cached_tweet_map

SAMPLE_PER_LIST = 64
#: Training vectors at most (1 GB at 256 dimensions), whatever nlist.
TRAIN_MAX = 1 << 20
MIN_PROBE = 8
SEED = 1234
#: Candidate rows a merge task holds (a home bucket's share; more vectors -> more buckets).
HOME_ROWS = 1 << 20
#: Pair edges a canonical task holds.
PAIR_ROWS = 1 << 18
#: Candidate rows a search task holds before it writes them out.
FLUSH_ROWS = 1 << 20
#: Scores computed at once (4 MB of float32): vectors x centroids when routing, queries x a
#: list's vectors when searching.
SCORE_CELLS = 1 << 20
BASE, QUERY = "b", "q"
CANDIDATES = pa.schema([("query", pa.uint64()), ("other", pa.uint64()), ("score", pa.float32())])
PAIR_EDGES = pa.schema([("a", pa.uint64()), ("b", pa.uint64()), ("rank", pa.int32()), ("score", pa.float32())])
_CENTROIDS: dict = {}


@dataclass(frozen=True)
class AnnPlan:
    """Everything the steps derive from N: lists, probes and bucket counts."""

    n: int
    k: int
    min_score: float
    nlist: int
    nprobe: int
    homes: int  # buckets where a query's candidates meet
    pair_homes: int  # buckets where a pair's two directions meet

    @property
    def sample_rate(self) -> float:
        return min(1.0, min(TRAIN_MAX, SAMPLE_PER_LIST * self.nlist) / max(1, self.n))


def ivf_plan(n: int, nprobe: int) -> tuple[int, int]:
    """(nlist, nprobe) for n vectors: the one-worker rule (pair_scoring.resolve_factory)."""
    _, probes = pcore.resolve_factory("IVF65536,Flat", n, 8, nprobe)
    target = 1 << max(0, int(np.log2(max(1.0, 4 * np.sqrt(n)))))
    nlist = max(1, min(65536, target, max(1, n // 39)))
    return nlist, max(1, min(nlist, max(MIN_PROBE, probes)))


def ann_plan(n: int, *, k: int, nprobe: int, min_score: float) -> AnnPlan:
    nlist, probes = ivf_plan(n, nprobe)
    homes = max(1, -(-n * probes * (k + 1) // HOME_ROWS))
    pair_homes = max(1, -(-n * k // PAIR_ROWS))
    return AnnPlan(n=n, k=k, min_score=min_score, nlist=nlist, nprobe=probes, homes=homes, pair_homes=pair_homes)


def normalized(vectors: list) -> np.ndarray:
    x = np.ascontiguousarray(np.stack(vectors).astype(np.float32)) if vectors else np.zeros((0, 1), np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _load(path: str, duplicates: str | None, exclude: tuple[str, ...], dim: int | None) -> tuple[np.ndarray, np.ndarray, list, dict]:
    """A file's valid vectors, normalized; one of another length than `dim` is a dead letter."""
    ids, vecs, errors, counts = file_vectors(path, cached_tweet_map(duplicates, exclude), dim)
    return np.array(ids, np.uint64), normalized(vecs), errors, counts


def sample_file(item: tuple[int, str], *, rate: float, dim: int | None = None, duplicates=None, exclude=()) -> list:
    """Step 1: ``[(ids, vectors)]`` of the file's sampled rows."""
    ids, x, _, _ = _load(item[1], duplicates, exclude, dim)
    keep = id_unit_interval(pa.array(ids, pa.uint64()), salt="ann-sample") < rate
    return [(ids[keep], x[keep])]


def train_centroids(blocks: Iterable[tuple[np.ndarray, np.ndarray]], *, nlist: int, path: str) -> str:
    """Step 2: spherical k-means centroids (nlist x dim) of the sample, saved to `path` (.npy)."""
    import faiss

    parts = [b for b in blocks if len(b[0])]
    centroids = np.zeros((0, 0), np.float32)  # no valid vector at all: nothing will be routed
    if parts:
        ids = np.concatenate([b[0] for b in parts])
        x = np.concatenate([b[1] for b in parts])
        x = np.ascontiguousarray(x[np.argsort(ids, kind="stable")])
        kmeans = faiss.Kmeans(x.shape[1], max(1, min(nlist, len(x))), niter=20, seed=SEED, spherical=True, verbose=False)
        kmeans.train(x)
        centroids = kmeans.centroids.copy()
    with files.open_write_atomic(path) as handle:
        np.save(handle, centroids)
    return path


def _centroids(path: str) -> np.ndarray:
    if path not in _CENTROIDS:
        with files.open_read(path) as handle:
            _CENTROIDS[path] = np.load(handle)
    return _CENTROIDS[path]


def vector_layout(dim: int) -> pa.Schema:
    return pa.schema([("id", pa.uint64()), ("vec", pa.list_(pa.float32(), dim))])


def _vector_table(ids: np.ndarray, x: np.ndarray) -> pa.Table:
    flat = pa.array(np.ascontiguousarray(x, np.float32).reshape(-1))
    return pa.table({"id": pa.array(ids, pa.uint64()), "vec": pa.FixedSizeListArray.from_arrays(flat, x.shape[1])})


def _vectors(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 matrix) of a vector_layout table."""
    dim = table.schema.field("vec").type.list_size
    chunks = table.column("vec").chunks
    x = np.concatenate([c.flatten().to_numpy().reshape(-1, dim) for c in chunks]) if chunks else np.zeros((0, dim), np.float32)
    return table.column("id").to_numpy(), x


def nearest_lists(x: np.ndarray, centroids: np.ndarray, probes: int) -> np.ndarray:
    """Each row's `probes` nearest lists, nearest first (ties: lower list), int32; computed a
    block of rows at a time, so memory is one block's scores (SCORE_CELLS), not rows x nlist."""
    near = np.zeros((len(x), probes), np.int32)
    block = max(16, SCORE_CELLS // max(1, len(centroids)))
    for start in range(0, len(x), block):
        scores = x[start : start + block] @ centroids.T
        if probes < scores.shape[1]:
            part = np.sort(np.argpartition(-scores, probes - 1, axis=1)[:, :probes], axis=1)
        else:
            part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        near[start : start + block] = np.take_along_axis(part, order, axis=1)
    return near


def route_file(
    item: tuple[int, str, str], *, plan: AnnPlan, tmp: str, dim: int | None = None, duplicates=None, exclude=()
) -> list:
    """Step 3: ``(list, (BASE | QUERY, SliceRef))`` for the file's rows; dead letters and counts."""
    index, path, centroids_path = item
    ids, x, errors, counts = _load(path, duplicates, exclude, dim)
    out: list = [Tagged(ERRORS, e) for e in errors]
    out.append(Tagged(STATS, counts))
    centroids = _centroids(centroids_path)
    if ids.size == 0 or centroids.size == 0:
        return out
    order = np.argsort(ids, kind="stable")
    ids, x = ids[order], x[order]
    near = nearest_lists(x, centroids, min(plan.nprobe, len(centroids)))
    layout = vector_layout(x.shape[1])
    for role, lists in ((BASE, near[:, :1]), (QUERY, near)):
        rows = np.repeat(np.arange(ids.size), lists.shape[1])
        writer = SliceWriter(files.join(tmp, "ann", f"route-{index:06d}-{role}.arrow"), layout)
        for lst, picked in groups(lists.reshape(-1)):
            writer.add(lst, _vector_table(ids[rows[picked]], x[rows[picked]]))
        out.extend((lst, (role, ref)) for lst, ref in writer.close())
    return out


class _Candidates:
    """A search task's pending candidates, written out by home bucket every FLUSH_ROWS rows."""

    def __init__(self, path: str, homes: int):
        self._writer, self._homes = SliceWriter(path, CANDIDATES), homes
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._rows = 0

    def add(self, query: np.ndarray, other: np.ndarray, score: np.ndarray) -> None:
        self._parts.append((query, other, score))
        self._rows += query.size
        if self._rows >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._parts:
            return
        query, other, score = (np.concatenate(c) for c in zip(*self._parts, strict=True))
        self._parts, self._rows = [], 0
        for home, rows in groups((query % np.uint64(self._homes)).astype(np.int64)):
            self._writer.add(home, pa.table({"query": query[rows], "other": other[rows], "score": score[rows]}, schema=CANDIDATES))

    def close(self) -> list:
        self.flush()
        return self._writer.close()


def search_list(item: tuple[int, Iterable[tuple[str, SliceRef]]], *, plan: AnnPlan, tmp: str) -> list:
    """Step 4: one list's queries against its vectors -> ``(home, SliceRef)`` of candidates."""
    lst, refs = item
    refs = list(refs)
    base_refs = sorted(ref for role, ref in refs if role == BASE)
    if not base_refs:
        return []
    base_ids, base_x = _vectors(read_slices(base_refs, vector_layout(1), mmap=False))
    order = np.argsort(base_ids, kind="stable")
    base_ids, base_x = base_ids[order], np.ascontiguousarray(base_x[order])
    take = min(plan.k + 1, base_ids.size)
    block = max(16, SCORE_CELLS // base_ids.size)  # queries scored at once
    pending = _Candidates(files.join(tmp, "ann", f"candidates-{lst:06d}.arrow"), plan.homes)
    for ref in sorted(ref for role, ref in refs if role == QUERY):  # one slice held at a time
        q_ids, q_x = _vectors(read_slices([ref], vector_layout(1), mmap=False))
        for start in range(0, q_ids.size, block):
            ids, scores = q_ids[start : start + block], q_x[start : start + block] @ base_x.T
            if take < scores.shape[1]:
                part = np.sort(np.argpartition(-scores, take - 1, axis=1)[:, :take], axis=1)  # ties: lower ID
                best = np.take_along_axis(part, np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable"), axis=1)
            else:
                best = np.argsort(-scores, axis=1, kind="stable")
            found = np.take_along_axis(scores, best, axis=1).astype(np.float32).reshape(-1)
            query, other = np.repeat(ids, take), base_ids[best].reshape(-1)
            keep = other != query  # the query's own tweet is no neighbour
            pending.add(query[keep], other[keep], found[keep])
    return pending.close()


def merge_home(item: tuple[int, Iterable[SliceRef]], *, plan: AnnPlan, tmp: str) -> list:
    """Step 5: one home bucket's candidates -> each query's k best with their rank, as pair edges
    (a < b) by pair home: ``(pair home, SliceRef)``."""
    home, refs = item
    table = read_slices(sorted(refs), CANDIDATES, mmap=False)
    query, other, score = (table.column(c).to_numpy() for c in ("query", "other", "score"))
    order = np.lexsort((-score, other, query))  # a neighbour found in two lists counts once
    query, other, score = query[order], other[order], score[order]
    first = np.concatenate([[True], (query[1:] != query[:-1]) | (other[1:] != other[:-1])])
    query, other, score = query[first], other[first], score[first]
    order = np.lexsort((other, -score, query))  # best first inside each query
    query, other, score = query[order], other[order], score[order]
    starts = np.flatnonzero(np.concatenate([[True], query[1:] != query[:-1]]))
    rank = np.arange(query.size) - np.repeat(starts, np.diff(np.append(starts, query.size))) + 1
    keep = (rank <= plan.k) & (score >= plan.min_score)
    query, other, score, rank = query[keep], other[keep], score[keep], rank[keep]
    a, b = np.minimum(query, other), np.maximum(query, other)
    writer = SliceWriter(files.join(tmp, "ann", f"edges-{home:06d}.arrow"), PAIR_EDGES)
    for pair_home, rows in groups((a % np.uint64(plan.pair_homes)).astype(np.int64)):
        writer.add(pair_home, pa.table({"a": a[rows], "b": b[rows], "rank": rank[rows].astype(np.int32), "score": score[rows]}, schema=PAIR_EDGES))
    return writer.close()


def canonical_pairs(item: tuple[int, Iterable[SliceRef]]) -> list[pa.Table]:
    """Step 6: one pair home's edges -> one row per pair with its best rank (as the one-worker path)."""
    _, refs = item
    table = read_slices(sorted(refs), PAIR_EDGES, mmap=False)
    a, b, rank, score = (table.column(c).to_numpy() for c in ("a", "b", "rank", "score"))
    pick = pcore.canonical_min_rank(a, b, rank)
    return [
        pa.table(
            {
                "a": pa.array(a[pick], pa.uint64()),
                "b": pa.array(b[pick], pa.uint64()),
                "score": pa.array(score[pick], pa.float32()),
                "count": pa.nulls(int(pick.size), pa.int64()),
                "rank": pa.array(rank[pick], pa.int32()),
            },
            schema=pcore.PAIR_COLUMNS,
        )
    ]


def tmp_dir(output: str) -> str:
    """Where the steps hand spill files to each other (removed when the job ends)."""
    return files.join(output, "_tmp_graph")


def remove_tmp(output: str) -> None:
    files.remove(tmp_dir(output))
