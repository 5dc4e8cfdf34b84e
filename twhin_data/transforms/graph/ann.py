"""Distributed nearest-neighbour pairs over tweet embeddings (IVF routed through Beam shuffles).

`graph --pairs embeddings --knn distributed` (or `auto` above `DISTRIBUTED_MIN` vectors) mines
the same cosine top-k pairs as the one-worker FAISS search (pairs.EmbeddingPairs), without
ever holding every vector in one worker: train IVF centroids on a deterministic sample, route
each vector to its nearest list and each query to its nprobe nearest lists, search inside each
list, merge each query's top k in its home bucket, keep a pair's best rank. nlist and nprobe
follow the one-worker `auto` rule: a power of two near 4 sqrt(N), and the paper's 2000 of 65536
lists probed, scaled to nlist.

The steps are pure functions (ann_steps.py) run by `PoolMapFn` (``--workers N`` processes
locally, inline on Dataflow); they hand rows to each other through Arrow spill files under
``OUT/_tmp_graph/``, and the shuffles between them carry file references only, so neither a
worker nor the runner's process holds more than one list, one query slice and one bucket
(bounds in ann_steps.py). Same input, same pairs, whatever the runner or worker count.
"""

from __future__ import annotations

import functools

import apache_beam as beam

from twhin_data.core import files
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.transforms.graph import ann_steps as steps
from twhin_data.transforms.metrics import CountStatsFn
from twhin_data.transforms.parallel import PoolMapFn

NAMESPACE = "graph"
#: `--knn auto` switches to the distributed search above this many vectors.
DISTRIBUTED_MIN = 1_000_000
POOL = "graph"  # shared with the graph build steps (transform.POOL)


def _with_centroids(item: tuple[int, str], centroids: str) -> tuple[int, str, str]:
    return (*item, centroids)


class DistributedKnnPairs(beam.PTransform):
    """Embedding files -> internal pair tables (a, b, score, count, rank), errors, info (see module)."""

    def __init__(
        self,
        paths: list[str],
        *,
        n: int,
        top_k: int,
        min_score: float,
        nprobe: int,
        tmp: str,
        workers: int = 1,
        dim: int | None = None,
        duplicates=None,
        exclude=(),
    ):
        super().__init__()
        self._paths, self._tmp, self._workers = paths, tmp, workers
        self._plan = steps.ann_plan(n, k=top_k, nprobe=nprobe, min_score=min_score)
        # dim: the first vector's length (embedding_files.vector_dim); a vector of another length is a dead letter.
        self._reading = {"dim": dim, "duplicates": duplicates, "exclude": tuple(exclude)}

    def _pooled(self, fn, **kwargs) -> PoolMapFn:
        return PoolMapFn(functools.partial(fn, **kwargs), workers=self._workers, shared=POOL)

    def expand(self, pbegin):
        plan, tmp = self._plan, self._tmp
        inputs = (
            pbegin
            | "EmbeddingFiles" >> beam.Create(list(enumerate(self._paths)))
            | "SpreadFiles" >> beam.Reshuffle()
        )
        centroids = (
            inputs
            | "Sample" >> beam.ParDo(self._pooled(steps.sample_file, rate=plan.sample_rate, **self._reading))
            | "AllSamples" >> beam.combiners.ToList()
            | "TrainLists"
            >> beam.Map(steps.train_centroids, nlist=plan.nlist, path=files.join(tmp, "ann", "centroids.npy"))
        )
        routed = (
            inputs
            | "WithCentroids" >> beam.Map(_with_centroids, centroids=beam.pvalue.AsSingleton(centroids))
            | "Route"
            >> beam.ParDo(self._pooled(steps.route_file, plan=plan, tmp=tmp, **self._reading)).with_outputs(
                ERRORS, STATS, main="refs"
            )
        )
        pairs = (
            routed.refs
            # A list's vectors and the queries that probe it meet (file references only).
            | "GroupByList" >> beam.GroupByKey()
            | "SearchLists" >> beam.ParDo(self._pooled(steps.search_list, plan=plan, tmp=tmp))
            # Each query's candidates from every list it probed meet in its home bucket.
            | "GroupByQueryHome" >> beam.GroupByKey()
            | "TopK" >> beam.ParDo(self._pooled(steps.merge_home, plan=plan, tmp=tmp))
            # A pair found from both tweets keeps its best rank (as the one-worker path).
            | "GroupByPairHome" >> beam.GroupByKey()
            | "Canonical" >> beam.ParDo(self._pooled(steps.canonical_pairs))
        )
        _ = routed[STATS] | "CountVectors" >> beam.ParDo(CountStatsFn(NAMESPACE))
        info = {"vectors": plan.n, "knn": "distributed", "nlist": plan.nlist, "nprobe": plan.nprobe}
        return pairs, routed[ERRORS], info


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
