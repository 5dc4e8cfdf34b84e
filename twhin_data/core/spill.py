"""Spill files: Arrow IPC files through which pooled steps hand rows to each other.

A step writes ONE IPC file per task holding one record-batch range per key (`write_slices`) and
emits small ``(key, SliceRef)`` references; after a shuffle of the references, the next step
reads the ranges of its key back (`read_slices`: memory-mapped when local, so reading costs no
copy). Only file names go through the runner, so the main process does nothing per row
(docs/scale-up.md). Used by prepare (transforms/prepare/steps.py) and shard
(transforms/shard/steps.py). No Beam here: pool processes import this module.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from twhin_data.core import files


class SliceRef(NamedTuple):
    """Record batches [start, stop) of one Arrow IPC file."""

    path: str
    start: int
    stop: int


class SliceWriter:
    """Writes ``(key, table)`` slices to one IPC file as they come (`add`), so a step that produces
    more rows than it should hold streams them out; `close` puts the file in place and returns
    ``(key, SliceRef)`` per non-empty slice (no file when every slice was empty)."""

    def __init__(self, path: str, schema: pa.Schema):
        self._path, self._schema = path, schema
        self._refs: list = []
        self._count = 0
        self._stack: contextlib.ExitStack | None = None
        self._writer = None

    def add(self, key, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        with self._failing():
            if self._writer is None:
                self._stack = contextlib.ExitStack()
                handle = self._stack.enter_context(files.open_write_atomic(self._path))
                self._writer = pa.ipc.new_file(pa.PythonFile(handle, mode="w"), self._schema)
            batches = table.combine_chunks().to_batches()
            for batch in batches:
                self._writer.write_batch(batch)
        self._refs.append((key, SliceRef(self._path, self._count, self._count + len(batches))))
        self._count += len(batches)

    def close(self) -> list:
        if self._writer is not None:
            with self._failing():
                self._writer.close()
            self._writer = None
            self._stack.close()  # renames the file into place
        return self._refs

    @contextlib.contextmanager
    def _failing(self):
        """On an error (a full disk), the temporary file goes (files.open_write_atomic) and the
        error is raised as it was."""
        try:
            yield
        except BaseException:
            self._writer = None
            if self._stack is not None:
                self._stack.__exit__(*sys.exc_info())
                self._stack = None
            raise


def write_slices(path: str, schema: pa.Schema, slices: Iterable[tuple[int, pa.Table]]) -> list:
    """Writes (key, table) slices to one IPC file; returns ``(key, SliceRef)`` per non-empty slice."""
    writer = SliceWriter(path, schema)
    for key, table in slices:
        writer.add(key, table)
    return writer.close()


def write_split(path: str, schema: pa.Schema, table: pa.Table, keys: np.ndarray) -> list:
    """Writes the rows of `table` to one IPC file, a slice per distinct aligned integer key (keys
    ascending, rows in their original order); returns ``(key, SliceRef)`` per slice. One take in
    key order, then zero-copy slices (IPC writes a slice's rows only; a pickled slice would carry
    its whole parent, so `core.tables.split_table` stays the splitter for tables that travel)."""
    writer = SliceWriter(path, schema)
    if len(keys):
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        bounds = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        taken = table.take(pa.array(order))
        for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(keys)], strict=True):
            writer.add(int(ordered[start]), taken.slice(int(start), int(stop - start)))
    return writer.close()


def read_slices(refs: Iterable[SliceRef], schema: pa.Schema, *, mmap: bool = True) -> pa.Table:
    """The rows of `refs` in (path, start) order, as one table (`schema` when there are none).

    Local files are memory-mapped (`mmap`, no copy; the mapped pages count in the process's RSS
    while the table lives, so a step that reads a few rows from each of many files reads them
    instead); remote ones (gs://) are read through a seekable handle, so only the footer and the
    referenced batches are fetched.
    """
    batches = []
    path, reader = None, None  # a file's footer is read once for all its refs (they are adjacent)
    for ref in sorted(refs):
        if files.is_remote(ref.path):
            with files.open_read(ref.path) as handle:
                remote = pa.ipc.open_file(pa.PythonFile(handle, mode="r"))
                batches.extend(remote.get_batch(i) for i in range(ref.start, ref.stop))
            continue
        if ref.path != path:
            path, reader = ref.path, pa.ipc.open_file(pa.memory_map(ref.path) if mmap else pa.OSFile(ref.path))
        batches.extend(reader.get_batch(i) for i in range(ref.start, ref.stop))
    if not batches:
        return schema.empty_table()
    return pa.Table.from_batches(batches)
