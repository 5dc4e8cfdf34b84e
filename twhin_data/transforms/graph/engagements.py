"""Reading engagement logs (CSV/TSV/JSONL/Parquet) and hydrated tweets: read_steps.py, pooled.

Every input row ends up in exactly one place: a cleaned edge row, a dead letter (rejected, with
the reason), or a `filtered_type` / `filtered_time_window` count. Counters live in the "graph"
namespace so `pipelines.graph.finish` can check in = out + rejected + filtered.
"""

from __future__ import annotations

import functools

import apache_beam as beam

from twhin_data.core import files
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.transforms.graph import read_steps as rs
from twhin_data.transforms.graph.transform import POOL, CountGraphStatsFn
from twhin_data.transforms.parallel import PoolMapFn

NAMESPACE = "graph"


def input_files(engagements: str | None, tweets: str | None) -> list[tuple[int, str, str]]:
    """``(index, path, kind)`` of every input file: the engagement logs, then the hydrated tweets."""
    paths = [(p, rs.LOG) for p in (files.expand_inputs(engagements) if engagements else [])]
    paths += [(p, rs.TWEETS) for p in (files.expand_inputs(tweets_pattern(tweets)) if tweets else [])]
    return [(i, path, kind) for i, (path, kind) in enumerate(paths)]


class ReadEngagements(beam.PTransform):
    """Engagement log files (a glob/dir/comma list, any Beam filesystem) and hydrated tweets (a
    folder, `tweets`) -> read results ``(file index, [SliceRef], sample)`` (read_steps.read_input)
    and dead letters. The files are listed when the job is built."""

    def __init__(
        self,
        pattern: str,
        *,
        spec: rs.WindowSpec,
        mapping: dict[str, str],
        tmp: str,
        sample_k: int,
        tweets: str | None = None,
        workers: int = 1,
        duplicates: str | None = None,
        exclude: tuple[str, ...] = (),
    ):
        super().__init__()
        self._inputs = input_files(pattern, tweets)
        self._read = functools.partial(
            rs.read_input,
            spec=spec,
            mapping=mapping,
            tmp=tmp,
            sample_k=sample_k,
            duplicates=duplicates,
            exclude=tuple(exclude),
        )
        self._workers = workers

    def expand(self, pbegin):
        read = (
            pbegin
            | "InputFiles" >> beam.Create(self._inputs)
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadFiles"
            >> beam.ParDo(
                PoolMapFn(self._read, workers=self._workers, shared=POOL, progress=(NAMESPACE, "rows_in"))
            ).with_outputs(ERRORS, STATS, main="read")
        )
        _ = read[STATS] | "CountRead" >> beam.ParDo(CountGraphStatsFn())
        return read.read, read[ERRORS]


def tweets_pattern(directory: str) -> str:
    """The Parquet files of hydrated tweets: DIR/tweets/*.parquet when present, else DIR/*.parquet."""
    sub = directory.rstrip("/") + "/tweets"
    if files.exists(sub):
        return sub + "/*.parquet"
    return directory.rstrip("/") + "/*.parquet"
