"""Engagement log files (CSV/TSV/JSONL/Parquet): formats, column maps and raw string rows.

Beam-free: `read_raw` yields ``(table of strings, dead letters)`` chunks of one file; cleaning them
into edges is engagements.py's `clean_rows`. Bytes that are not UTF-8 are dead letters, never
replaced silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.parquet import read_metadata

FIELDS = ("user_id", "tweet_id", "type", "ts")
REQUIRED = ("user_id", "tweet_id", "type")
CHUNK_ROWS = 50_000
_COMPRESSED = (".gz", ".bz2", ".zst", ".deflate")
FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"
}  # fmt: skip


def file_format(path: str) -> str | None:
    """csv, tsv, jsonl or parquet from the file name (a compression suffix is ignored)."""
    name = path.lower()
    for suffix in _COMPRESSED:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return FORMATS.get(os.path.splitext(name)[1])


def parse_column_map(text: str | None) -> dict[str, str]:
    """'user_id=uid,tweet_id=tid' -> {our name: input column}; ConfigError on unknown names."""
    mapping = {name: name for name in FIELDS}
    for part in [p.strip() for p in (text or "").split(",") if p.strip()]:
        ours, sep, theirs = part.partition("=")
        if not sep or ours.strip() not in FIELDS or not theirs.strip():
            raise ConfigError(
                f"--column_map: expected NAME=COLUMN with NAME in {', '.join(FIELDS)}, got {part!r}"
            )
        mapping[ours.strip()] = theirs.strip()
    return mapping


def _string_table(columns: dict[str, list]) -> pa.Table:
    return pa.table({k: pa.array(v, type=pa.string()) for k, v in columns.items()})


def _stringify(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # JSON numbers that are integral (ts 1.6e9) stay integral
    return str(value)


def open_log(path: str):
    """A read handle of a log file, decompressed by suffix (.gz, .bz2, ...), local or remote."""
    return files.open_decompressed(path)


def read_raw(
    path: str, mapping: dict[str, str]
) -> Iterable[tuple[pa.Table | None, list[tuple[str, str, str]]]]:
    """Yields (string table with our FIELDS, unparseable lines as (input, error_type, message))."""
    fmt = file_format(path)
    wanted = {mapping[f]: f for f in FIELDS}
    with open_log(path) as handle:
        if fmt == "parquet":
            parquet = pq.ParquetFile(handle)
            present = [c for c in wanted if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=present):
                table = pa.Table.from_batches([batch])
                yield _rename(table, wanted), []
            return
        if fmt == "jsonl":
            yield from _read_jsonl(handle, wanted)
            return
        yield from _read_delimited(handle, wanted, "\t" if fmt == "tsv" else ",")


def _rename(table: pa.Table, wanted: dict[str, str]) -> pa.Table:
    arrays, names = [], []
    for theirs, ours in wanted.items():
        if theirs in table.column_names:
            column = table.column(theirs)
            if not pa.types.is_timestamp(column.type):
                column = column.cast(pa.string())
            arrays.append(column)
        else:
            arrays.append(pa.nulls(table.num_rows, pa.string()))
        names.append(ours)
    return pa.table(arrays, names=names)


def _read_jsonl(handle, wanted: dict[str, str]):
    columns: dict[str, list] = {f: [] for f in wanted.values()}
    bad: list[tuple[str, str, str]] = []
    for raw in handle:
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:  # never replaced silently: a dead letter
            bad.append((raw.decode("utf-8", errors="replace").strip(), "invalid_utf8", f"not UTF-8: {exc}"))
            continue
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            bad.append((line, "bad_json", f"not valid JSON: {exc}"))
            continue
        if not isinstance(obj, dict):
            bad.append((line, "bad_json", "a JSON line must be an object"))
            continue
        for theirs, ours in wanted.items():
            columns[ours].append(_stringify(obj.get(theirs)))
        if len(columns["user_id"]) >= CHUNK_ROWS:
            yield _string_table(columns), bad
            columns, bad = {f: [] for f in wanted.values()}, []
    yield _string_table(columns), bad


def _read_delimited(handle, wanted: dict[str, str], delimiter: str):
    bad: list[tuple[str, str, str]] = []

    def on_invalid(row) -> str:
        bad.append(
            (row.text or "", "bad_row", f"expected {row.expected_columns} columns, got {row.actual_columns}")
        )
        return "skip"

    header = handle.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n").split(delimiter)
    names = [h.strip().strip('"') for h in header]
    try:
        reader = pacsv.open_csv(
            handle,
            read_options=pacsv.ReadOptions(column_names=names, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                # Binary first: a row with bytes that are not UTF-8 becomes a dead letter (_utf8_rows).
                column_types={n: pa.binary() for n in names},
                include_columns=[c for c in wanted if c in names],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV" in str(exc):  # a header without rows
            return
        raise
    for batch in reader:
        table, invalid = _utf8_rows(pa.Table.from_batches([batch]))
        yield _rename(table, wanted), bad + invalid
        bad = []
    if bad:
        yield None, bad


def _utf8_rows(table: pa.Table) -> tuple[pa.Table, list[tuple[str, str, str]]]:
    """Binary columns -> string columns; rows holding bytes that are not UTF-8 become dead letters."""
    try:
        return table.cast(pa.schema([pa.field(f.name, pa.string()) for f in table.schema])), []
    except pa.ArrowInvalid:
        pass
    ok = []
    for row in table.to_pylist():
        try:
            ok.append(all(v is None or (v.decode("utf-8") is not None) for v in row.values()))
        except UnicodeDecodeError:
            ok.append(False)
    mask = pa.array(ok, pa.bool_())
    bad = [
        (",".join((v or b"").decode("utf-8", errors="replace") for v in row.values()), "invalid_utf8", "not UTF-8")
        for row, good in zip(table.to_pylist(), ok, strict=True)
        if not good
    ]
    kept = table.filter(mask)
    return kept.cast(pa.schema([pa.field(f.name, pa.string()) for f in kept.schema])), bad


def count_rows(path: str) -> int | None:
    """Rows of a local log file (footer, or lines less the header), for the live progress; None for
    a compressed or remote file (not worth reading twice)."""
    fmt = file_format(path)
    if fmt is None or "://" in path or path.endswith(_COMPRESSED):
        return None
    if fmt == "parquet":
        return read_metadata(path)[1].num_rows
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            lines += chunk.count(b"\n")
    return max(0, lines - (fmt != "jsonl"))


def check_header(path: str, mapping: dict[str, str]) -> None:
    """ConfigError when a CSV/TSV/Parquet file lacks a required column (checked at submit time)."""
    fmt = file_format(path)
    if fmt is None:
        raise ConfigError(f"{path}: unknown engagement file type (use .csv, .tsv, .jsonl or .parquet)")
    if fmt == "jsonl":
        return
    if fmt == "parquet":
        names = read_metadata(path)[0].names  # ConfigError (one line) for a file that is not Parquet
    else:
        with open_log(path) as handle:
            line = handle.readline().decode("utf-8-sig", errors="replace").rstrip("\r\n")
        names = [h.strip().strip('"') for h in line.split("\t" if fmt == "tsv" else ",")]
    missing = [f"{f} (column {mapping[f]!r})" for f in REQUIRED if mapping[f] not in names]
    if missing:
        raise ConfigError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(names)} (map names with --column_map)"
        )
