"""Reading the corpus and pairs as Arrow tables, stats sums, joining pairs with tokens.

Tokenizing itself is a pure function (`tokenize_table`, transforms/tokenize_steps.py) run by
the shard stage's pooled steps (transforms/shard_steps.py); pool children cannot report metrics,
so `CountStatsFn` turns their stats dicts into counters in the main process.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from twhin_data.core.errors import ConfigError, error_record
from twhin_data.transforms.tokenize_steps import ERRORS, PAIR_COLUMNS, STAGE


def check_columns(path: str, columns: tuple[str, ...]) -> None:
    """Raises ConfigError when the Parquet file at `path` lacks one of `columns`."""
    with FileSystems.open(path) as handle:
        names = pq.ParquetFile(handle).schema_arrow.names
    missing = [c for c in columns if c not in names]
    if missing:
        raise ConfigError(f"{path} lacks column(s) {', '.join(missing)} (has {', '.join(names)})")


def _row_groups(item: tuple[int, str], columns: tuple[str, ...]) -> list[tuple[int, str, int]]:
    """(file index, path, row group) units of one file, after checking its columns (footer only)."""
    index, path = item
    check_columns(path, columns)
    with FileSystems.open(path) as handle:
        return [(index, path, i) for i in range(pq.ParquetFile(handle).metadata.num_row_groups)]


class _ReadTablesFn(beam.DoFn):
    """Reads one row group of a Parquet file as Arrow tables of at most `batch_rows` rows.

    With `named`, yields ``(name, table)``: the name (file index, row group, batch, zero-padded)
    orders the tables as the files are read, whatever the worker that read them.
    """

    def __init__(self, columns: tuple[str, ...], batch_rows: int, named: bool):
        self._columns = list(columns)
        self._batch_rows = batch_rows
        self._named = named

    def process(self, unit: tuple[int, str, int]) -> Iterator:
        index, path, row_group = unit
        with FileSystems.open(path) as handle:
            reader = pq.ParquetFile(handle)
            batches = reader.iter_batches(
                batch_size=self._batch_rows, columns=self._columns, row_groups=[row_group]
            )
            for number, batch in enumerate(batches):
                if batch.num_rows:
                    table = pa.Table.from_batches([batch]).append_column(
                        "source", pa.array([path] * batch.num_rows, pa.string())
                    )
                    yield (f"{index:06d}-{row_group:06d}-{number:06d}", table) if self._named else table


class ReadTables(beam.PTransform):
    """Reads Parquet files (a list of paths) as Arrow tables holding `columns` plus ``source``.

    With ``named=True`` the elements are ``(name, table)`` (see _ReadTablesFn).
    """

    def __init__(
        self, paths: list[str], columns: tuple[str, ...], batch_rows: int = 4096, named: bool = False
    ):
        super().__init__()
        self._paths = sorted(paths)
        self._columns = columns
        self._batch_rows = batch_rows
        self._named = named

    def expand(self, pbegin):
        return (
            pbegin
            | "Files" >> beam.Create(list(enumerate(self._paths)))
            | "RowGroups" >> beam.FlatMap(_row_groups, columns=tuple(self._columns))
            # A large file fans out into many row groups: spread them over workers before reading,
            # so one big file is not read and tokenized by a single worker.
            | "SpreadRowGroups" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadTablesFn(self._columns, self._batch_rows, self._named))
        )


class CountStatsFn(beam.DoFn):
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
