"""Tweet-ID input: file formats, ID-column detection, validation, and the ReadTweetIds transform.

Formats (by file name, compression suffixes such as ``.gz`` allowed):
plain text (one ID per line), CSV/TSV with a named or guessed ID column (the Hugging Face
Twitter/HashtagPrediction files are ``ID,label``), JSONL (objects or bare values), Parquet.
IDs are stripped of whitespace and quotes and must match core.ids.ID_PATTERN (1 to 19 digits);
spreadsheet damage (scientific notation, ``.0`` floats) is reported, never repaired.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.core.errors import ConfigError, error_record
from twhin_data.core.ids import MAX_KEY_CHARS, normalize_id
from twhin_data.core.tags import ERRORS

STAGE = "hydrate"
NAMESPACE = "hydrate"
INVALID = "invalid"
CHUNK = 5000

_COMPRESSED = (".gz", ".bz2", ".zst", ".deflate", ".lzma", ".xz")
#: Column names tried (case-insensitively, in this order) when --id_column is not given.
GUESS_COLUMNS = ("tweet_id", "id_str", "id", "status_id", "tweetid", "post_id")
FORMATS = ("text", "csv", "tsv", "jsonl", "parquet")


@dataclass(frozen=True)
class IdSource:
    """One input file and how to read IDs from it (resolved at graph construction).

    Args:
      path: the file (local or any Beam filesystem).
      fmt: one of FORMATS.
      column: CSV/TSV column index, or JSONL/Parquet field name; None for plain text.
      header: whether a CSV/TSV file starts with a header row.
    """

    path: str
    fmt: str
    column: str | int | None = None
    header: bool = False


def file_format(path: str) -> str:
    """The ID-file format implied by a file name (compression suffixes are ignored)."""
    name = path.lower()
    for suffix in _COMPRESSED:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".tsv", ".tab")):
        return "tsv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return "text"


@contextlib.contextmanager
def _open_text(path: str) -> Iterator[Iterator[str]]:
    """Decoded lines of `path` (FileSystems.open detects compression from the suffix; BOM dropped)."""
    handle = FileSystems.open(path)
    try:

        def lines() -> Iterator[str]:
            first = True
            for raw in iter(handle.readline, b""):
                yield raw.decode("utf-8-sig" if first else "utf-8", errors="replace")
                first = False

        yield lines()
    finally:
        handle.close()


def _dialect(fmt: str) -> dict:
    return {"delimiter": "\t" if fmt == "tsv" else ","}


def _pick_column(names: list[str], wanted: str | None) -> str | None:
    lowered = {n.strip().lower(): n for n in names}
    if wanted is not None:
        return lowered.get(wanted.strip().lower())
    for candidate in GUESS_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    return None


def resolve_source(path: str, id_column: str | None = None) -> IdSource:
    """Decides how to read IDs from `path`; ConfigError when the ID column cannot be found."""
    fmt = file_format(path)
    if fmt in ("text", "jsonl"):
        return IdSource(path, fmt, id_column if fmt == "jsonl" else None)
    if fmt == "parquet":
        with FileSystems.open(path) as handle:
            try:
                names = pq.read_schema(io.BytesIO(handle.read())).names
            except Exception as exc:  # pyarrow raises several types for a non-Parquet file
                raise ConfigError(f"{path} is not a readable Parquet file: {exc}") from None
        column = _pick_column(names, id_column)
        if column is None:
            raise ConfigError(_column_message(path, names, id_column))
        return IdSource(path, fmt, column)
    with _open_text(path) as handle:
        first = next(csv.reader(handle, **_dialect(fmt)), [])
    column = _pick_column(first, id_column)
    if column is not None:
        return IdSource(path, fmt, first.index(column), header=True)
    if id_column is None and first and normalize_id(first[0])[1] is None:
        return IdSource(path, fmt, 0, header=False)  # no header: IDs in the first column
    raise ConfigError(_column_message(path, first, id_column))


def _column_message(path: str, names: list[str], wanted: str | None) -> str:
    shown = ", ".join(names[:20]) or "(none)"
    if wanted is not None:
        return f"{path}: no column {wanted!r} (columns: {shown})"
    return f"{path}: cannot tell which column holds tweet IDs (columns: {shown}); pass --id_column NAME"


def resolve_sources(pattern: str, id_column: str | None = None) -> list[IdSource]:
    """Expands a glob / directory / comma list into resolved sources (sorted by path)."""
    return [resolve_source(p, id_column) for p in files.expand_inputs(pattern)]


def iter_values(source: IdSource) -> Iterator[tuple[int, object]]:
    """Yields ``(line_or_row_number, raw_value)`` for every non-blank record of `source`.

    Blank lines yield ``(n, None)`` so the caller can count them. JSONL lines that are not
    JSON, or objects without the ID field, yield a ``_Bad`` value describing the problem.
    """
    if source.fmt == "parquet":
        with FileSystems.open(source.path) as handle:
            parquet = pq.ParquetFile(io.BytesIO(handle.read()))
        row = 0
        for group in range(parquet.num_row_groups):
            column = parquet.read_row_group(group, columns=[source.column]).column(0)
            for value in column.to_pylist():
                row += 1
                yield row, _Bad("missing_id", "null ID value", "null") if value is None else value
        return
    with _open_text(source.path) as handle:
        if source.fmt in ("csv", "tsv"):
            reader = csv.reader(handle, **_dialect(source.fmt))
            for number, fields in enumerate(reader, start=1):
                if source.header and number == 1:
                    continue
                if not fields or all(not f.strip() for f in fields):
                    yield number, None
                elif len(fields) <= source.column:
                    yield (
                        number,
                        _Bad("missing_id", f"row has no column {source.column + 1}", ",".join(fields)),
                    )
                else:
                    yield number, fields[source.column]
            return
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                yield number, None
            elif source.fmt == "jsonl":
                yield number, _json_value(line, source.column)
            else:
                yield number, line


@dataclass(frozen=True)
class _Bad:
    error_type: str
    message: str
    raw: str


def _json_value(line: str, field: str | None) -> object:
    try:
        value = json.loads(line)
    except ValueError as exc:
        return _Bad("bad_json", f"not JSON: {exc}", line.strip())
    if not isinstance(value, dict):
        return value
    if field is not None:
        return value[field] if field in value else _Bad("missing_id", f"no field {field!r}", line.strip())
    for candidate in GUESS_COLUMNS:
        if candidate in value:
            return value[candidate]
    return _Bad("missing_id", "object has none of the ID fields " + ", ".join(GUESS_COLUMNS), line.strip())


class _ReadIdsFn(beam.DoFn):
    """Reads one IdSource; emits lists of valid IDs (<= CHUNK each) and tags invalid lines."""

    def __init__(self) -> None:
        self._lines = Metrics.counter(NAMESPACE, "input_lines")
        self._blank = Metrics.counter(NAMESPACE, "blank_lines")
        self._valid = Metrics.counter(NAMESPACE, "valid_lines")
        self._invalid = Metrics.counter(NAMESPACE, "invalid_lines")
        self._ends_00 = Metrics.counter(NAMESPACE, "ids_ending_00")

    def process(self, source: IdSource) -> Iterable:
        chunk: list[str] = []
        for number, value in iter_values(source):
            self._lines.inc()
            if value is None:
                self._blank.inc()
                continue
            if isinstance(value, _Bad):
                key, problem = value.raw[:MAX_KEY_CHARS], (value.error_type, value.message)
                raw = value.raw
            else:
                key, problem = normalize_id(value)
                raw = value
            if problem is not None:
                self._invalid.inc()
                Metrics.counter(NAMESPACE, f"invalid_{problem[0]}").inc()
                yield beam.pvalue.TaggedOutput(
                    INVALID, {"key": key, "error_type": problem[0], "message": problem[1]}
                )
                yield beam.pvalue.TaggedOutput(
                    ERRORS,
                    error_record(STAGE, raw, problem[0], problem[1], f"{source.path}:{number}"),
                )
                continue
            self._valid.inc()
            if key.endswith("00"):
                self._ends_00.inc()
            chunk.append(key)
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def invalid_row(item: dict) -> dict:
    """An `unavailable` row (status invalid_id) for one distinct invalid input."""
    return {
        "tweet_id": item["key"],
        "status": "invalid_id",
        "problem_type": item["error_type"],
        "title": "Invalid ID",
        "detail": item["message"],
        "http_status": None,
        "api_version": None,
        "retrieved_at": None,
    }


class ReadTweetIds(beam.PTransform):
    """Reads and validates tweet IDs from resolved sources.

    Input: the pipeline root. Outputs (a dict of PCollections):
      ``ids``: lists of valid, normalized ID strings (duplicates NOT yet collapsed);
      ``invalid``: one `unavailable` row (status invalid_id) per distinct invalid input;
      ``errors``: one dead-letter record per invalid line (with file:line in `source`).

    Args:
      sources: from `resolve_sources` (resolved before the pipeline runs, so a missing
        column is a ConfigError, not a worker traceback).
    """

    def __init__(self, sources: list[IdSource]):
        super().__init__()
        if not sources:
            raise ValueError("ReadTweetIds needs at least one source")
        self._sources = sources

    def expand(self, pbegin):
        read = (
            pbegin
            | "ListSources" >> beam.Create(self._sources)
            # One file per element; spread files over workers before reading.
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadIds" >> beam.ParDo(_ReadIdsFn()).with_outputs(INVALID, ERRORS, main="ids")
        )
        invalid = (
            read[INVALID]
            | "KeyInvalid" >> beam.Map(lambda item: (item["key"], item))
            # The same bad value on several lines is reported once in `unavailable`.
            | "DistinctInvalid" >> beam.CombinePerKey(_first_invalid)
            | "InvalidRow" >> beam.Map(_counted_invalid_row)
        )
        return {"ids": read.ids, "invalid": invalid, "errors": read[ERRORS]}


def _counted_invalid_row(kv: tuple[str, dict]) -> dict:
    Metrics.counter(NAMESPACE, "invalid_distinct").inc()
    return invalid_row(kv[1])


def _first_invalid(items: Iterable[dict]) -> dict:
    items = list(items)
    return min(items, key=lambda d: (d["error_type"], d["message"])) if items else {}
