"""Parquet footers (input-schema checks, row-group read planning: metadata only) and the streamed
Parquet writer. No Beam import."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.files import open_read


def read_metadata(path: str) -> tuple[pa.Schema, pq.FileMetaData]:
    """The Arrow schema and footer of a Parquet file; ConfigError (one line) when it is not one."""
    try:
        with open_read(path) as handle:
            reader = pq.ParquetFile(handle)
            return reader.schema_arrow, reader.metadata
    except Exception as exc:  # any reader failure means: not a Parquet file we can use
        raise ConfigError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None


def check_input_schema(
    path: str,
    required: Iterable[str],
    expected: pa.Schema | None = None,
    *,
    what: str = "input",
) -> pq.FileMetaData:
    """Checks that `path` is Parquet with the `required` columns, and that every column it shares
    with `expected` casts to the expected type; returns the footer. ConfigError (one line) otherwise."""
    schema, meta = read_metadata(path)
    missing = [name for name in required if name not in schema.names]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        raise ConfigError(
            f"{path}: missing column{'s' if len(missing) > 1 else ''} {names} (is this {what}? columns: "
            f"{', '.join(schema.names[:12])})"
        )
    for name in expected.names if expected is not None else ():
        if name in schema.names:
            have, want = schema.field(name).type, expected.field(name).type
            if not castable(have, want):
                raise ConfigError(f"{path}: column {name!r} has type {have}, expected {want}")
    return meta


def is_list_type(t: pa.DataType) -> bool:
    """Whether `t` is a list type (list, large_list or fixed_size_list)."""
    return pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)


def castable(have: pa.DataType, want: pa.DataType) -> bool:
    """Whether values of type `have` cast to `want`, nested types checked element by element (an
    empty array casts between list types whose values never could, e.g. strings to structs)."""
    if is_list_type(want):
        return is_list_type(have) and castable(have.value_type, want.value_type)
    if pa.types.is_struct(want):
        if not pa.types.is_struct(have):
            return False
        fields = {have.field(i).name: have.field(i).type for i in range(have.num_fields)}
        wanted = [want.field(i) for i in range(want.num_fields)]
        return all(f.name not in fields or castable(fields[f.name], f.type) for f in wanted)
    try:
        pa.array([], type=have).cast(want)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return True


def row_group_sizes(path: str) -> list[int]:
    """Rows of each row group of a Parquet file, in file order (footer only)."""
    meta = read_metadata(path)[1]
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


class _HashingSink:
    """A write handle that also hashes and counts what goes through it."""

    def __init__(self, handle):
        self._handle, self.sha256, self.size, self.closed = handle, hashlib.sha256(), 0, False

    def write(self, data) -> int:
        data = bytes(data)
        self.sha256.update(data)
        self.size += len(data)
        return self._handle.write(data)

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self.closed = True  # the atomic writer closes the real handle


def write_parquet_streamed(
    path: str, schema: pa.Schema, tables: Iterable[pa.Table], *, row_group_size: int, compression: str = "zstd"
) -> dict:
    """Writes `tables` (each of `schema`; every one but the last of exactly `row_group_size` rows) as
    one Parquet file via temp+rename, a row group at a time, hashing as it goes; returns {path, rows,
    bytes, sha256}. The bytes are those of `files.write_parquet_atomic` on the concatenated table with the
    same `row_group_size`, without that table or its Parquet bytes in memory. No tables: one empty
    table is written, as `files.write_parquet_atomic` would."""
    rows = 0
    with files.open_write_atomic(path) as handle:
        sink = _HashingSink(handle)
        with pq.ParquetWriter(sink, schema, compression=compression, use_dictionary=True, write_statistics=True) as writer:
            written = False
            for table in tables:
                writer.write_table(table.combine_chunks(), row_group_size=row_group_size)
                rows += table.num_rows
                written = True
            if not written:
                writer.write_table(schema.empty_table(), row_group_size=row_group_size)
    return {"path": path, "rows": rows, "bytes": sink.size, "sha256": sink.sha256.hexdigest()}
