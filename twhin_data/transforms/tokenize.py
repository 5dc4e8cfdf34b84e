"""Reading the corpus and pairs as Arrow tables, tokenizing tweets, joining pairs with tokens.

The CPU-heavy step is `tokenize_table` (transforms/tokenize_steps.py), a pure function over one
Arrow table, so it runs inline or in the `transforms.parallel.PoolMapFn` processes of
``--workers``. Its outputs are one tokenized table, dead letters (tag ``errors``) and one stats
dict (tag ``stats``); counters are incremented from the stats dicts in the main process (pool
children cannot report metrics).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from twhin_data.core.errors import ConfigError, error_record
from twhin_data.transforms.parallel import PoolMapFn
from twhin_data.transforms.tokenize_steps import (  # noqa: F401 - re-exported for the shard stage
    CORPUS_COLUMNS,
    ERRORS,
    PAIR_COLUMNS,
    STAGE,
    STATS,
    TOKENS,
    limit_tokenizer_threads,
    tokenize_table,
)


def check_columns(path: str, columns: tuple[str, ...]) -> None:
    """Raises ConfigError when the Parquet file at `path` lacks one of `columns`."""
    with FileSystems.open(path) as handle:
        names = pq.ParquetFile(handle).schema_arrow.names
    missing = [c for c in columns if c not in names]
    if missing:
        raise ConfigError(f"{path} lacks column(s) {', '.join(missing)} (has {', '.join(names)})")


def _row_groups(path: str, columns: tuple[str, ...]) -> list[tuple[str, int]]:
    """(path, row group) units of one file, after checking its columns (footer only)."""
    check_columns(path, columns)
    with FileSystems.open(path) as handle:
        return [(path, i) for i in range(pq.ParquetFile(handle).metadata.num_row_groups)]


class _ReadTablesFn(beam.DoFn):
    """Reads one row group of a Parquet file as Arrow tables of at most `batch_rows` rows."""

    def __init__(self, columns: tuple[str, ...], batch_rows: int):
        self._columns = list(columns)
        self._batch_rows = batch_rows

    def process(self, unit: tuple[str, int]) -> Iterator[pa.Table]:
        path, row_group = unit
        with FileSystems.open(path) as handle:
            reader = pq.ParquetFile(handle)
            batches = reader.iter_batches(
                batch_size=self._batch_rows, columns=self._columns, row_groups=[row_group]
            )
            for batch in batches:
                if batch.num_rows:
                    yield pa.Table.from_batches([batch]).append_column(
                        "source", pa.array([path] * batch.num_rows, pa.string())
                    )


class ReadTables(beam.PTransform):
    """Reads Parquet files (a list of paths) as Arrow tables holding `columns` plus ``source``."""

    def __init__(self, paths: list[str], columns: tuple[str, ...], batch_rows: int = 4096):
        super().__init__()
        self._paths = sorted(paths)
        self._columns = columns
        self._batch_rows = batch_rows

    def expand(self, pbegin):
        return (
            pbegin
            | "Files" >> beam.Create(self._paths)
            | "RowGroups" >> beam.FlatMap(_row_groups, columns=tuple(self._columns))
            # A large file fans out into many row groups: spread them over workers before reading,
            # so one big file is not read and tokenized by a single worker.
            | "SpreadRowGroups" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadTablesFn(self._columns, self._batch_rows))
        )


class _CountStatsFn(beam.DoFn):
    """Turns stats dicts into Beam counters (namespace ``shard``) and passes them on."""

    def process(self, stats: dict) -> Iterator[dict]:
        for name, value in stats.items():
            Metrics.counter(STAGE, name).inc(int(value))
        yield stats


class SumDicts(beam.CombineFn):
    """Adds dicts of numbers key by key (small, bounded)."""

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, acc: dict, item: dict) -> dict:
        for key, value in item.items():
            acc[key] = acc.get(key, 0) + value
        return acc

    def merge_accumulators(self, accs: Iterable[dict]) -> dict:
        out: dict = {}
        for acc in accs:
            self.add_input(out, acc)
        return out

    def extract_output(self, acc: dict) -> dict:
        return dict(sorted(acc.items()))


class TokenizeTweets(beam.PTransform):
    """Corpus tables -> tokenized tables (`TOKENS`), plus ``errors`` and summed ``stats``.

    Args:
      tokenizer: path or Hub name (loaded once per process, see text.tokenize.load_tokenizer).
      max_length: most ids per tweet, ``<s>`` and ``</s>`` included.
      valid_fraction, seed: the hashed train/validation split.
      workers: processes of the PoolMapFn (1 = inline, the Rust tokenizer using every core);
        N > 1 processes get ceil(cores / N) tokenizer threads each.
    """

    def __init__(
        self, *, tokenizer: str, max_length: int, valid_fraction: float, seed: int, workers: int = 1
    ):
        super().__init__()
        self._fn = functools.partial(
            tokenize_table,
            tokenizer=tokenizer,
            max_length=max_length,
            valid_fraction=valid_fraction,
            seed=seed,
        )
        self._workers = workers

    def expand(self, tables):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        init = (
            functools.partial(limit_tokenizer_threads, -(-cores // self._workers))
            if self._workers > 1
            else None
        )
        pool = PoolMapFn(self._fn, workers=self._workers, initializer=init)
        results = tables | "Tokenize" >> beam.ParDo(pool).with_outputs(ERRORS, STATS, main="tokens")
        stats = results[STATS] | "CountStats" >> beam.ParDo(_CountStatsFn())
        return results.tokens, results[ERRORS], stats


def pair_tweet_ids(table: pa.Table) -> list[str]:
    return pc.unique(
        pa.concat_arrays([table.column(c).combine_chunks() for c in PAIR_COLUMNS[:2]])
    ).to_pylist()


def _token_rows(table: pa.Table, wanted: set[str]) -> Iterator[tuple[str, tuple]]:
    """(tweet_id, (input_ids, lang, split)) for the tweets of `table` that some pair uses."""
    mask = pc.is_in(table.column("tweet_id"), value_set=pa.array(sorted(wanted), pa.string()))
    for row in table.filter(mask).to_pylist():
        yield row["tweet_id"], (row["input_ids"], row["lang"], row["split"])


def _pair_rows(table: pa.Table) -> Iterator[tuple[str, dict]]:
    for row in table.to_pylist():
        yield row["tweet_id_a"], row


def _attach(item: tuple[str, dict], side: str) -> Iterator:
    """Joins one tweet's tokens to its pairs; pairs whose tweet is not in the corpus are dead letters."""
    tweet_id, grouped = item
    tokens, pairs = list(grouped["tokens"]), list(grouped["pairs"])
    for pair in pairs:
        if not tokens:
            message = f"tweet_{side} {tweet_id} is not in the tokenized corpus"
            yield beam.pvalue.TaggedOutput(
                ERRORS,
                error_record(
                    STAGE,
                    {k: pair[k] for k in PAIR_COLUMNS},
                    "pair_tweet_missing",
                    message,
                    pair.get("source"),
                ),
            )
            continue
        ids, lang, split = tokens[0]
        out = dict(pair, **{f"input_ids_{side}": ids, f"lang_{side}": lang})
        out["split"] = "validation" if split == "validation" or pair.get("split") == "validation" else "train"
        yield (out["tweet_id_b"], out) if side == "a" else out


class JoinPairs(beam.PTransform):
    """Pairs tables + tokenized tables -> pair dicts carrying both tweets' ids, langs and a split.

    Only tweets that some pair names are shuffled (a side-input set filters the tokens first). A
    pair is in validation when either tweet is, so no train pair shares a tweet with validation.
    Outputs: (pairs, errors).
    """

    def expand(self, inputs):
        pair_tables, token_tables = inputs
        wanted = (
            pair_tables
            | "PairIds" >> beam.FlatMap(pair_tweet_ids)
            | "DistinctIds" >> beam.Distinct()
            | "IdSet" >> beam.combiners.ToSet()
        )
        tokens = token_tables | "PairTokens" >> beam.FlatMap(
            _token_rows, wanted=beam.pvalue.AsSingleton(wanted)
        )
        by_a = pair_tables | "KeyByA" >> beam.FlatMap(_pair_rows)
        with_a = (
            {"tokens": tokens, "pairs": by_a}
            | "JoinA" >> beam.CoGroupByKey()
            | "AttachA" >> beam.FlatMap(_attach, side="a").with_outputs(ERRORS, main="pairs")
        )
        both = (
            {"tokens": tokens, "pairs": with_a.pairs}
            | "JoinB" >> beam.CoGroupByKey()
            | "AttachB" >> beam.FlatMap(_attach, side="b").with_outputs(ERRORS, main="pairs")
        )
        errors = (with_a[ERRORS], both[ERRORS]) | "PairErrors" >> beam.Flatten()
        return both.pairs, errors
