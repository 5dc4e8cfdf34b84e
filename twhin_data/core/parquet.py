"""Parquet footers: input-schema checks and row-group read planning (metadata only, no Beam import)."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

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
            try:
                pa.array([], type=have).cast(want)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise ConfigError(f"{path}: column {name!r} has type {have}, expected {want}") from None
    return meta


def row_group_sizes(path: str) -> list[int]:
    """Rows of each row group of a Parquet file, in file order (footer only)."""
    meta = read_metadata(path)[1]
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
