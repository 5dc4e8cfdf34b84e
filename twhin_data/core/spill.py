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
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.core.tables import groups


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
    key order (none when the rows already are in it), then zero-copy slices (IPC writes a slice's
    rows only; a pickled slice would carry its whole parent, so `core.tables.split_table` stays the
    splitter for tables that travel)."""
    writer = SliceWriter(path, schema)
    if len(keys):
        if (keys[1:] >= keys[:-1]).all():  # already in key order (one key, or rows sorted by it): no copy
            ordered, taken = keys, table
        else:
            order = np.argsort(keys, kind="stable")
            ordered, taken = keys[order], table.take(pa.array(order))
        bounds = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(keys)], strict=True):
            writer.add(int(ordered[start]), taken.slice(int(start), int(stop - start)))
    return writer.close()


class SliceIndex(NamedTuple):
    """Every slice of one `write_split` file keyed by a dense integer key 0..n-1, as one small
    value: key k holds record batches [offsets[k], offsets[k+1]) (none when equal). A step that
    splits its rows into n partitions hands on one of these instead of n ``(key, SliceRef)``
    elements, so a runner that keeps a shuffle in memory holds tasks, not tasks x partitions,
    elements (`slices_of` turns a list of them back into one key's references)."""

    path: str
    offsets: np.ndarray  # int32, n + 1 ascending

    @classmethod
    def of(cls, refs: list, keys: int) -> list:
        """`write_split`'s ``(key, SliceRef)`` (one file, keys ascending, each in [0, keys)) ->
        ``[SliceIndex]``, or [] when nothing was written."""
        if not refs:
            return []
        batches = np.zeros(keys + 1, np.int64)
        for key, ref in refs:
            if not 0 <= key < keys:
                raise ValueError(f"slice key {key} is outside 0..{keys - 1}")
            batches[key + 1] = ref.stop - ref.start
        return [cls(refs[0][1].path, np.cumsum(batches).astype(np.int32))]


def slices_of(indexes: Iterable[tuple[str, SliceIndex]], key: int) -> list[tuple[str, SliceRef]]:
    """The ``(kind, SliceRef)`` of `key` in ``(kind, SliceIndex)`` values, in (file name, kind)
    order; [] when no file holds rows of it."""
    out = []
    for kind, index in indexes:
        start, stop = int(index.offsets[key]), int(index.offsets[key + 1])
        if stop > start:
            out.append((kind, SliceRef(index.path, start, stop)))
    return sorted(out, key=lambda item: (item[1].path, item[0]))


class KeyShare(NamedTuple):
    """The rows of a slice whose uint64 ``key`` column is `shard` modulo `shards`. A piece names its
    rows with these two integers instead of their indices, so the shuffle that gathers a shard's
    pieces carries no per-row data (2M tweets: 8 MB of indices, held by the runner while every
    shard is written); `Pieces` reads the slice's key column to find them."""

    shard: int
    shards: int

    def rows(self, keys: np.ndarray) -> np.ndarray:
        """Indices of the rows of aligned `keys` in this share, ascending."""
        return np.flatnonzero(keys % np.uint64(self.shards) == np.uint64(self.shard))


#: Rows of one slice: the slice and the rows wanted in it: their indices, a `KeyShare`, or None
#: (every row).
Piece = tuple[SliceRef, "np.ndarray | KeyShare | None"]


#: Most chunk files `Pieces.chunks` writes at once (open files); chunks beyond share files.
MAX_CHUNK_FILES = 256


class Pieces:
    """Rows picked from spilled slices as one virtual table: global row g is the g-th picked row,
    pieces in (file name, batch) order, rows in their order inside each piece. `columns` gathers
    the rows a step needs, when it needs them (a writer sorts on a few key columns), and `chunks`
    hands out the rows in output order a chunk at a time. Each call reads the pieces it needs one
    at a time, into memory (not mapped: the kernel maps the neighbours of every touched page too,
    so a few columns read from mapped files would keep most of every file resident), and keeps
    only the rows it gathers."""

    def __init__(self, pieces: Iterable[Piece], schema: pa.Schema):
        self.schema = schema
        self.refs, self.rows, piece_of = [], [], []
        for i, (ref, rows) in enumerate(sorted(pieces, key=lambda piece: piece[0])):
            if rows is None:  # counted on a mapping: the batch headers only, no column is read
                rows = np.arange(read_slices([ref], schema).num_rows, dtype=np.int64)
            elif isinstance(rows, KeyShare):  # the key column only, mapped
                rows = rows.rows(read_slices([ref], schema).column("key").to_numpy())
            rows = np.asarray(rows, np.int64)
            self.refs.append(ref)
            self.rows.append(rows)
            piece_of.append(np.full(len(rows), i, np.int32))
        self.piece_of = np.concatenate(piece_of) if piece_of else np.zeros(0, np.int32)
        self.row_of = np.concatenate(self.rows) if self.rows else np.zeros(0, np.int64)

    def _read(self, ref: SliceRef) -> pa.Table:
        return read_slices([ref], self.schema, mmap=False)

    def __len__(self) -> int:
        return len(self.row_of)

    def list_lengths(self, column: str) -> np.ndarray:
        """The length of list `column` in every global row, from the list offsets (no value is used)."""
        lengths = [
            pc.list_value_length(self._read(ref).column(column)).to_numpy(zero_copy_only=False)[rows]
            for ref, rows in zip(self.refs, self.rows, strict=True)
        ]
        return np.concatenate(lengths).astype(np.int64) if lengths else np.zeros(0, np.int64)

    def columns(self, names: list[str], rows: np.ndarray | None = None) -> pa.Table:
        """Columns `names` of global `rows` (all when None), in that order."""
        if rows is None:
            rows = np.arange(len(self.row_of))
        pieces = self.piece_of[rows]
        by_piece = np.argsort(pieces, kind="stable")
        ordered, owner = rows[by_piece], pieces[by_piece]
        bounds = np.flatnonzero(owner[1:] != owner[:-1]) + 1
        parts = []
        for start, stop in zip(np.r_[0, bounds].tolist(), np.r_[bounds, len(rows)].tolist(), strict=True):
            if stop > start:
                wanted = self.row_of[ordered[start:stop]]
                parts.append(self._read(self.refs[int(owner[start])]).select(names).take(pa.array(wanted)))
        if not parts:
            return self.schema.empty_table().select(names)
        gathered = pa.concat_tables(parts)
        if np.array_equal(by_piece, np.arange(len(rows))):  # rows already in piece order: no reordering copy
            return gathered.combine_chunks()
        restore = np.empty(len(rows), np.int64)
        restore[by_piece] = np.arange(len(rows))
        return gathered.take(pa.array(restore)).combine_chunks()

    def chunks(self, names: list[str], rows: np.ndarray, starts: np.ndarray, folder: str) -> Iterator[pa.Table]:
        """Columns `names` of the global `rows` (in output order), one table per chunk: chunk k holds
        positions ``starts[k]`` up to ``starts[k + 1]`` (``starts`` ascending, from 0).

        Same tables as `columns` per chunk, but each piece is read once, not once per chunk: when
        rows are ordered by a hash, every chunk draws from every piece. Pass 1 reads each piece and
        appends its picked rows to the spill file of their chunk (at most `MAX_CHUNK_FILES` files
        under `folder`); pass 2 reads one file back at a time, restores the output order and
        removes it. Memory: one piece, then one chunk file.
        """
        position = np.full(len(self.row_of), -1, np.int64)
        position[rows] = np.arange(len(rows))
        starts = np.asarray(starts, np.int64)
        bins = min(len(starts), MAX_CHUNK_FILES)
        schema = pa.schema([self.schema.field(name) for name in names] + [pa.field("_position", pa.int64())])
        writers = [SliceWriter(files.join(folder, f"chunks-{b:05d}.arrow"), schema) for b in range(bins)]
        offset = 0
        for ref, picked in zip(self.refs, self.rows, strict=True):
            where = position[offset : offset + len(picked)]
            offset += len(picked)
            keep = where >= 0
            if not keep.any():
                continue
            table = self._read(ref).select(names).take(pa.array(picked[keep]))
            table = table.append_column("_position", pa.array(where[keep]))
            chunk = np.searchsorted(starts, where[keep], side="right") - 1
            for b, indices in groups(chunk * bins // len(starts)):
                writers[b].add(b, table.take(pa.array(indices)))
            del table
        ends = np.r_[starts[1:], len(rows)]
        for b, writer in enumerate(writers):
            refs = [ref for _, ref in writer.close()]
            table = read_slices(refs, schema)
            table = table.take(pc.sort_indices(table.column("_position"))).drop_columns(["_position"])
            first = 0
            for k in range(len(starts)):
                if k * bins // len(starts) == b:
                    n = int(ends[k] - starts[k])
                    yield table.slice(first, n).combine_chunks()
                    first += n
            del table
            if refs:
                files.remove(refs[0].path)


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
