"""ShardCorpus: the MLM shards from named corpus tables, shard's pooled steps wired with one shuffle.

Tokenize + spill per corpus table, routing per spilled slice (once the shard plan is known from
the summed size stats), and sort + dedupe + pack + Parquet write per shard, all in one shared
`PoolMapFn` pool of ``--workers`` processes (inline with one worker or on Dataflow). Tokens move
between the steps as Arrow IPC files under a temporary directory of the output; the shuffle
carries only file references and shard numbers, so the main process does little per tweet
(transforms/shard/steps.py, docs/scale-up.md).
"""

from __future__ import annotations

import functools

import apache_beam as beam

from twhin_data.core.pool import usable_cores
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.transforms.combiners import SetUnion, SumDicts
from twhin_data.transforms.metrics import CountStatsFn
from twhin_data.transforms.parallel import PoolMapFn
from twhin_data.transforms.shard.steps import (
    plan_shards,
    renumber,
    route_slice,
    spill_tokens,
    write_mlm_shard,
)
from twhin_data.transforms.shard.tokenize import STAGE, limit_tokenizer_threads


def _with_count(item: tuple, plan: dict[str, int]) -> tuple:
    split, ref = item
    return split, ref, plan[split]


def _numbered(item: tuple, nonempty: list) -> tuple:
    key, pieces = item
    return (key[0], *renumber(key, nonempty)), list(pieces)


def pooled(fn, workers: int, progress: tuple[str, str] | None = None) -> PoolMapFn:
    """`fn` in shard's shared pool of `workers` processes: N > 1 processes get ceil(cores / N) Rust
    tokenizer threads each (1: inline, the tokenizer using every core)."""
    cores = usable_cores()
    init = functools.partial(limit_tokenizer_threads, -(-cores // workers)) if workers > 1 else None
    return PoolMapFn(fn, workers=workers, initializer=init, shared=STAGE, progress=progress)


class WriteSplitShards(beam.PTransform):
    """``(split, SliceRef)`` spilled rows (each with a ``key`` column) + a plan ``{split: shards}``
    -> what `write` returns per shard.

    Each row goes to shard ``key % n`` of its split (`route_slice`); the one shuffle gathers each
    shard's slice references (not its rows) for one `write` call, ``((split, index, count),
    pieces)``. A shard index that got no rows is never written: the non-empty shards of a split are
    numbered 0..m-1 "-of-m" (`renumber`).
    """

    def __init__(self, plan, write, workers: int):
        super().__init__()
        self._plan, self._write, self._workers = plan, write, workers

    def expand(self, slices):
        routed = (
            slices
            | "WithShardCount" >> beam.Map(_with_count, plan=beam.pvalue.AsSingleton(self._plan))
            | "Route" >> beam.ParDo(pooled(route_slice, self._workers))
        )
        grouped = routed | "GroupByShard" >> beam.GroupByKey()
        nonempty = routed | "ShardKeys" >> beam.Map(lambda kv: [tuple(kv[0])]) | "NonEmpty" >> beam.CombineGlobally(SetUnion(sort=True))
        return (
            grouped
            | "Number" >> beam.Map(_numbered, nonempty=beam.pvalue.AsSingleton(nonempty))
            | "WriteShard" >> beam.ParDo(pooled(self._write, self._workers)).with_outputs(STATS, main="infos")
        )


class ShardCorpus(beam.PTransform):
    """``(name, corpus table)`` -> (MLM shard infos, dead letters, stats dicts, ``(split, SliceRef)``).

    Args:
      tokenizer, max_length, valid_fraction, seed, engaged, stages: as `tokenize_table`.
      tmp: the spill folder (removed by the pipeline's finish()).
      path: the ``DIR/mlm`` folder; num_shards, target_bytes, pack: as `plan_shards` / `mlm_shard`.
      workers: pool processes (1 = inline, the Rust tokenizer using every core); N > 1 processes
        get ceil(cores / N) tokenizer threads each.
    The last output (the spilled token slices) lets the pairs join read the tokens back.
    """

    def __init__(
        self,
        *,
        tokenizer: str,
        max_length: int,
        valid_fraction: float,
        seed: int,
        tmp: str,
        path: str,
        num_shards: int | None,
        target_bytes: int,
        pack: bool = True,
        workers: int = 1,
        engaged: str | None = None,
        stages: tuple[int, ...] = (1, 2),
    ):
        super().__init__()
        self._tokenize = dict(
            tokenizer=tokenizer,
            max_length=max_length,
            valid_fraction=valid_fraction,
            seed=seed,
            engaged=engaged,
            stages=stages,
        )
        self._tmp, self._path, self._pack = tmp, path, pack
        self._num_shards, self._target_bytes = num_shards, target_bytes
        self._workers = workers

    def expand(self, tables):
        spilled = tables | "TokenizeSpill" >> beam.ParDo(
            pooled(
                functools.partial(spill_tokens, tmp=self._tmp, **self._tokenize),
                self._workers,
                (STAGE, "tweets_in"),
            )
        ).with_outputs(ERRORS, STATS, main="slices")
        stats = spilled[STATS] | "CountStats" >> beam.ParDo(CountStatsFn(STAGE))
        plan = (
            stats
            | "SumMlmSizes" >> beam.CombineGlobally(SumDicts())
            | "PlanMlm"
            >> beam.Map(
                plan_shards, prefix="mlm_", num_shards=self._num_shards, target_bytes=self._target_bytes
            )
        )
        write = functools.partial(
            write_mlm_shard, path=self._path, max_length=self._tokenize["max_length"], pack=self._pack, tmp=self._tmp
        )
        infos = spilled.slices | "WriteShards" >> WriteSplitShards(plan, write, self._workers)
        return infos.infos, spilled[ERRORS], stats, spilled.slices
