"""Reading and writing datasets: deterministic Parquet parts, dead letters, Parquet read by row group."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.core.errors import InputRejectedError
from twhin_data.core.parquet import check_input_schema, row_group_sizes
from twhin_data.schemas import conform, to_table
from twhin_data.schemas.errors import ERRORS
from twhin_data.transforms.parts import SALT, PartSpec, split_parts, write_part

ROWS_PER_TABLE = 2000


class _WriteShardFn(beam.DoFn):
    """Writes one part from its tables (parts.write_part: conformed, sorted, atomic)."""

    def __init__(self, spec: PartSpec):
        self._spec = spec
        self._rows = Metrics.counter("write", f"{spec.name}_rows")

    def process(self, item: tuple[int, Iterable[pa.Table]]) -> Iterable[dict]:
        shard, tables = item
        info = write_part(self._spec, shard, list(tables))
        self._rows.inc(info["rows"])
        yield info


class WriteDataset(beam.PTransform):
    """Writes a PCollection of ``pa.Table`` (or dict rows) as deterministic Parquet parts.

    Rows go to ``part-{i:05d}-of-{n:05d}.parquet`` by a salted stable hash of `key`, and are sorted
    by `sort_by` inside each part, so the same rows give the same bytes on every runner. Parts
    that receive no rows are not written. Output: one dict per file (path, rows, bytes, sha256).

    Args:
      path: output directory (local or gs://).
      schema: the pyarrow schema every part is written with (tables are conformed to it).
      key: column whose hash picks the part.
      sort_by: columns that order rows inside a part (default: `key`).
      num_shards: number of parts.
      name: dataset name for counters (default: the last path component).
      salt: hash salt for part assignment (fixed, so the output path does not change membership).
    """

    def __init__(
        self,
        path: str,
        schema: pa.Schema,
        *,
        key: str = "tweet_id",
        sort_by: list[str] | None = None,
        num_shards: int = 1,
        name: str | None = None,
        salt: str = SALT,
    ):
        super().__init__()
        if num_shards < 1:
            raise ValueError("num_shards must be at least 1")
        self._path = path
        self._schema = schema
        self._key = key
        self._sort_by = sort_by or [key]
        self._num_shards = num_shards
        self._name = name or path.rstrip("/").split("/")[-1]
        # The salt must not depend on the output path: the same rows go to the same part anywhere.
        self._salt = salt

    def expand(self, pcoll):
        spec = PartSpec(
            self._path, self._schema, self._key, tuple(self._sort_by), self._num_shards, self._name, self._salt
        )
        return (
            pcoll
            | "ToTables" >> ToTables(self._schema)
            | "SplitByShard" >> beam.FlatMap(split_parts, spec)
            # One shuffle: gathers each part's rows on one worker so it can be sorted and written once.
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShardFn(spec))
        )


def _rows_to_table(rows: list, schema: pa.Schema) -> pa.Table:
    return to_table(rows, schema)


class ToTables(beam.PTransform):
    """Turns a PCollection of dict rows and/or ``pa.Table`` into ``pa.Table`` batches of `schema`."""

    def __init__(self, schema: pa.Schema, batch_size: int = ROWS_PER_TABLE):
        super().__init__()
        self._schema = schema
        self._batch_size = batch_size

    def expand(self, pcoll):
        tagged = pcoll | "SplitKinds" >> beam.Map(
            lambda x: beam.pvalue.TaggedOutput("table" if isinstance(x, pa.Table) else "row", x)
        ).with_outputs("table", "row")
        batched = (
            tagged.row
            | "BatchRows"
            >> beam.BatchElements(min_batch_size=self._batch_size, max_batch_size=self._batch_size)
            | "RowsToTable" >> beam.Map(_rows_to_table, schema=self._schema)
        )
        conformed = tagged.table | "Conform" >> beam.Map(conform, schema=self._schema)
        return (conformed, batched) | "MergeTables" >> beam.Flatten()


class WriteErrors(beam.PTransform):
    """Writes dead-letter dicts (schemas.errors.ERRORS) to ``<output>/errors/<stage>/``."""

    def __init__(self, output: str, stage: str, num_shards: int = 1):
        super().__init__()
        self._path = files.join(output, "errors", stage)
        self._num_shards = num_shards
        self._stage = stage

    def expand(self, errors):
        return errors | WriteDataset(
            self._path,
            ERRORS,
            key="input",
            sort_by=["error_type", "input", "message"],
            num_shards=self._num_shards,
            name=f"errors_{self._stage}",
        )


def count_by(pcoll, label: str, key_fn) -> beam.PCollection:
    """Counts elements per key into one dict (a small, bounded side result)."""
    return (
        pcoll
        | f"{label}Key" >> beam.Map(lambda x: (key_fn(x), 1))
        | f"{label}Sum" >> beam.CombinePerKey(sum)
        | f"{label}Dict" >> beam.combiners.ToDict()
    )


def _row_groups(item: tuple[int, str], columns: tuple[str, ...]) -> list[tuple[int, str, int]]:
    """(file index, path, row group) units of one file, after checking its columns (footer only)."""
    index, path = item
    check_input_schema(path, columns)
    return [(index, path, i) for i in range(len(row_group_sizes(path)))]


class _ReadTablesFn(beam.DoFn):
    """Reads one row group of a Parquet file as Arrow tables of at most `batch_rows` rows.

    With `named`, yields ``(name, table)``: the name (file index, row group, batch, zero-padded)
    orders the tables as the files are read, whatever the worker that read them.
    """

    def __init__(
        self, columns: tuple[str, ...], batch_rows: int, named: bool, optional: tuple[str, ...] = ()
    ):
        self._columns = list(columns)
        self._optional = tuple(optional)
        self._batch_rows = batch_rows
        self._named = named

    def process(self, unit: tuple[int, str, int]) -> Iterator:
        index, path, row_group = unit
        try:
            yield from self._read(index, path, row_group)
        except (OSError, pa.ArrowException) as exc:  # damaged pages: say which file, in one line
            message = f"{path}: row group {row_group} is unreadable ({type(exc).__name__}: {exc})"
            raise InputRejectedError(message) from None

    def _read(self, index: int, path: str, row_group: int) -> Iterator:
        with FileSystems.open(path) as handle:
            reader = pq.ParquetFile(handle)
            present = set(reader.schema_arrow.names)
            columns = self._columns + [c for c in self._optional if c in present]
            batches = reader.iter_batches(
                batch_size=self._batch_rows, columns=columns, row_groups=[row_group]
            )
            for number, batch in enumerate(batches):
                if batch.num_rows:
                    table = pa.Table.from_batches([batch]).append_column(
                        "source", pa.array([path] * batch.num_rows, pa.string())
                    )
                    yield (f"{index:06d}-{row_group:06d}-{number:06d}", table) if self._named else table


class ReadTables(beam.PTransform):
    """Reads Parquet files (a list of paths) as Arrow tables holding `columns` plus ``source``.

    With ``named=True`` the elements are ``(name, table)`` (see _ReadTablesFn). `optional` columns
    are read from the files that have them (older outputs may not).
    """

    def __init__(
        self,
        paths: list[str],
        columns: tuple[str, ...],
        batch_rows: int = 4096,
        named: bool = False,
        optional: tuple[str, ...] = (),
    ):
        super().__init__()
        self._optional = tuple(optional)
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
            | "Read"
            >> beam.ParDo(_ReadTablesFn(self._columns, self._batch_rows, self._named, self._optional))
        )


def _mark_complete(_count: int, *, folders: dict[str, pa.Schema | None], stage: str, empty_name: str) -> list:
    out = []
    for folder, schema in folders.items():
        if schema is not None and not files.list_parquet(folder):  # no rows at all: still a readable dataset
            files.write_parquet_atomic(files.join(folder, empty_name), schema.empty_table())
        out.append(files.finish_output(folder, stage))
    return out


class MarkComplete(beam.PTransform):
    """Writes ``_SUCCESS`` into each of `folders` (and removes ``_INCOMPLETE``) once every element of
    the input exists: give it what the writers of those folders emit (flattened into one
    PCollection). The marker is a step of the job itself, so a job launched and left to run (Dataflow,
    a Flex Template) marks its own output; a job that dies leaves ``_INCOMPLETE`` behind.

    `folders` maps each folder to its schema: a folder that got no rows gets one zero-row part
    named `empty_name` first, so it still reads as an (empty) dataset. None: no such part.
    """

    def __init__(
        self,
        folders: dict[str, pa.Schema | None] | list[str],
        stage: str,
        *,
        empty_name: str = "part-00000-of-00001.parquet",
    ):
        super().__init__()
        self._folders = dict(folders) if isinstance(folders, dict) else dict.fromkeys(folders)
        self._stage = stage
        self._empty_name = empty_name

    def expand(self, written):
        return (
            written
            # A global count finishes only after its last input: every file is written by then.
            | "CountWritten" >> beam.combiners.Count.Globally()
            | "WriteSuccess"
            >> beam.Map(_mark_complete, folders=self._folders, stage=self._stage, empty_name=self._empty_name)
        )
