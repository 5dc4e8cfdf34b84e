"""Reading hydrate output for prepare: planned row-group tasks, so the pool processes read too.

`plan_file_tasks` cuts an input file into tasks of about `rows_per_task` rows along row groups
(metadata only, deterministic); `read_task` reads one task as Arrow tables of `ROWS_PER_TABLE`
rows, cast to the tweets schema types. A task is small and picklable, so the parent process
never reads or ships the tweets themselves: the pool processes read their own tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from twhin_data.core.files import open_read
from twhin_data.core.parquet import row_group_sizes
from twhin_data.schemas.tweets import TWEETS

ROWS_PER_TABLE = 2000
ROWS_PER_TASK = 10_000
#: Columns prepare reads from hydrate output; only REQUIRED_COLUMNS must be present.
REQUIRED_COLUMNS = ("tweet_id", "text")
INPUT_COLUMNS = (
    "tweet_id",
    "text",
    "lang",
    "created_at",
    "author_id",
    "referenced_tweets",
    "hashtags",
    "mentions",
    "urls",
)


class ReadTask(NamedTuple):
    """Rows [first_batch, first_batch + num_batches) x ROWS_PER_TABLE of one row group."""

    path: str
    row_group: int
    first_batch: int
    num_batches: int


def plan_file_tasks(path: str, rows_per_task: int = ROWS_PER_TASK) -> list[ReadTask]:
    """Tasks covering every row of one file exactly once, in row order (footer only)."""
    per_task = max(1, rows_per_task // ROWS_PER_TABLE)
    tasks = []
    for group, rows in enumerate(row_group_sizes(path)):
        batches = -(-rows // ROWS_PER_TABLE)
        for first in range(0, batches, per_task):
            tasks.append(ReadTask(path, group, first, min(per_task, batches - first)))
    return tasks


def keyed_file_tasks(
    item: tuple[int, str], rows_per_task: int = ROWS_PER_TASK
) -> list[tuple[tuple[int, int], ReadTask]]:
    """(file index, task index in file) -> task, for one (file index, path): the key names the
    task's spill file, so the order of names is file order, then row order."""
    file_index, path = item
    return [((file_index, i), task) for i, task in enumerate(plan_file_tasks(path, rows_per_task))]


def plan_tasks(paths: list[str], rows_per_task: int = ROWS_PER_TASK) -> list[ReadTask]:
    """Tasks covering every row of `paths` exactly once, in file and row order."""
    return [task for path in paths for task in plan_file_tasks(path, rows_per_task)]


def _cast(batch: pa.RecordBatch, columns: list[str]) -> pa.Table:
    table = pa.Table.from_batches([batch])
    arrays = []
    for name in columns:
        column, want = table.column(name), TWEETS.field(name).type
        arrays.append(column if column.type.equals(want) else column.cast(want))
    return pa.Table.from_arrays(arrays, names=columns)


class Unreadable(NamedTuple):
    """Rows of a task that could not be read (damaged pages): counted and reported, not lost silently."""

    rows: int
    message: str


def read_task(task: ReadTask) -> Iterator[pa.Table | Unreadable]:
    """The task's rows as tables of ROWS_PER_TABLE rows (the prepare input columns only); when the
    file's pages are damaged, an `Unreadable` for the rows of the task not read."""
    with open_read(task.path) as handle:
        parquet = pq.ParquetFile(handle)
        group_rows = parquet.metadata.row_group(task.row_group).num_rows
        planned = min(group_rows, (task.first_batch + task.num_batches) * ROWS_PER_TABLE)
        planned -= task.first_batch * ROWS_PER_TABLE
        columns = [c for c in INPUT_COLUMNS if c in parquet.schema_arrow.names]
        batches = parquet.iter_batches(
            batch_size=ROWS_PER_TABLE, row_groups=[task.row_group], columns=columns
        )
        done = 0
        try:
            for index, batch in enumerate(batches):
                if index >= task.first_batch + task.num_batches:
                    break
                if index >= task.first_batch:
                    table = _cast(batch, columns)
                    done += table.num_rows
                    yield table
        except (OSError, pa.ArrowException) as exc:
            yield Unreadable(planned - done, f"row group {task.row_group}: {type(exc).__name__}: {exc}")


def read_tables(path: str, rows: int = ROWS_PER_TABLE) -> Iterator[tuple[str, pa.Table]]:
    """(path, table) batches of a whole file (used by benchmarks and tools)."""
    with open_read(path) as handle:
        parquet = pq.ParquetFile(handle)
        columns = [c for c in INPUT_COLUMNS if c in parquet.schema_arrow.names]
        for batch in parquet.iter_batches(batch_size=rows, columns=columns):
            yield path, _cast(batch, columns)
