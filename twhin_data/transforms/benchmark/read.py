"""Readers for the benchmark builders: released label files, engagement logs, embeddings, tweets.

Label files (Twitter/HashtagPrediction ``hashtag-classification-id.zip``, as we understand it):
one delimited text file per language and split with an ``ID`` and a ``label`` column, e.g.
``en/train.tsv`` or ``en_test.csv``. The delimiter (tab or comma) is detected per file, a header
is optional (without one the columns are ``ID, label[, lang]``), IDs are read as text (never
floats), and ``.zip`` archives are read member by member. The language comes from a language
column when the file has one, else from the member/file name (the basename first, then its folder).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from twhin_data.core import files, progress
from twhin_data.core.errors import ConfigError, error_record
from twhin_data.core.ids import normalize_id
from twhin_data.core.parquet import check_input_schema, row_group_sizes
from twhin_data.core.tags import ERRORS
from twhin_data.schemas.benchmark import LABEL_ROWS, TWEET_INPUT
from twhin_data.text.label_leakage import clean_label, label_key
from twhin_data.transforms.metrics import Counters

#: Rows per table read (label rows, engagement pairs): each table is cut into one slice per join
#: bucket, and Beam's per-element cost is paid per slice, so tables are large.
TABLE_ROWS = 50_000
#: Language codes of the released benchmarks (card metadata + paper Table 6) and other ISO 639-1 codes.
KNOWN_LANGS = frozenset(
    "sl ur sd pl vi sv am da mr no gu in ja el lv it ca is cs te tl ro ckb pt ps zh sr pa si ml ht kn ar "
    "hu nl bg bn ne hi de ko fi fr es et en fa lt or cy eu iw ta th tr ru id he uk az mk ceb arz ka hy "
    "my km lo ms sk hr bs sq ky kk uz mn ug yi jv su sw zu".split()
)
#: Twitter's legacy codes -> ISO 639-1 (the labels follow Twitter's own `lang` field).
LANG_ALIASES = {"in": "id", "iw": "he"}
SPLIT_WORDS = {
    "train": "train",
    "dev": "validation",
    "valid": "validation",
    "validation": "validation",
    "test": "test",
}
_ID_NAMES = ("id", "tweet_id", "tweetid")
_LABEL_NAMES = ("label", "hashtag", "labels", "tag")


def canonical_lang(code: str | None) -> str | None:
    """Lower-cased language code with Twitter's legacy codes mapped (in->id, iw->he)."""
    if code is None:
        return None
    code = code.strip().lower()
    return LANG_ALIASES.get(code, code) or None


def _tokens(name: str) -> list[str]:
    stem = re.sub(r"\.(tsv|csv|txt|tab)$", "", name.lower())
    return [t for t in re.split(r"[^a-z]+", stem) if t]


def path_hints(path: str) -> tuple[str | None, str | None]:
    """(language, released split) named by a file path: basename first, then its parent folder."""
    parts = path.replace("\\", "/").rstrip("/").split("/")
    lang = split = None
    for part in reversed(parts[-2:]):
        tokens = _tokens(part)
        langs = sorted({t for t in tokens if t in KNOWN_LANGS})
        if lang is None and len(langs) == 1:
            lang = canonical_lang(langs[0])
        if split is None:
            split = next((SPLIT_WORDS[t] for t in tokens if t in SPLIT_WORDS), None)
    return lang, split


@dataclass(frozen=True)
class LabelSource:
    """One label file, or one member of a zip archive."""

    path: str
    member: str | None = None

    @property
    def name(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path


def label_sources(pattern: str) -> list[LabelSource]:
    """Expands `pattern` to label files; a .zip contributes each of its delimited-text members."""
    sources: list[LabelSource] = []
    for path in files.expand_inputs(pattern):
        if not path.lower().endswith(".zip"):
            sources.append(LabelSource(path))
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(files.read_bytes(path))) as archive:
                members = sorted(
                    m
                    for m in archive.namelist()
                    if re.search(r"\.(tsv|csv|txt|tab)$", m.lower()) and "__MACOSX" not in m
                )
        except zipfile.BadZipFile as exc:
            raise ConfigError(f"{path}: not a readable zip archive ({exc})") from None
        if not members:
            raise ConfigError(f"{path}: the archive holds no .tsv/.csv/.txt files")
        sources.extend(LabelSource(path, m) for m in members)
    return sources


@functools.lru_cache(maxsize=2)
def _archive_bytes(path: str) -> bytes:
    # An archive holds one member per language and split (~150): read it once per process, not per member.
    return files.read_bytes(path)


def read_source_bytes(source: LabelSource) -> bytes:
    if source.member is None:
        return files.read_bytes(source.path)
    with zipfile.ZipFile(io.BytesIO(_archive_bytes(source.path))) as archive:
        return archive.read(source.member)


@dataclass(frozen=True)
class _Layout:
    delimiter: str
    header: bool
    id_col: int
    label_col: int
    lang_col: int | None


def _layout(first_line: str, lang_column: str) -> _Layout:
    delimiter = "\t" if "\t" in first_line else ","
    cells = [
        c.strip().strip('"').strip().lower() for c in next(csv.reader([first_line], delimiter=delimiter))
    ]
    id_col = next((cells.index(n) for n in _ID_NAMES if n in cells), None)
    if id_col is not None:
        # A header: find the columns by name.
        label_col = next((cells.index(n) for n in _LABEL_NAMES if n in cells), None)
        if label_col is None:
            raise ValueError(f"header {cells!r} has no label column ({'/'.join(_LABEL_NAMES)})")
        lang_col = cells.index(lang_column.lower()) if lang_column and lang_column.lower() in cells else None
        return _Layout(delimiter, True, id_col, label_col, lang_col)
    return _Layout(delimiter, False, 0, 1, 2 if len(cells) > 2 else None)


def _first_line(data: bytes) -> str | None:
    """The first non-blank line (lines end at b"\\n", as `parse_label_file` reads them), decoding no further."""
    for number, raw in enumerate(io.BytesIO(data), start=1):
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8", "replace").rstrip("\r\n")
        if line.strip():
            return line
    return None


def check_label_source(source: LabelSource, lang_column: str) -> None:
    """Raises ConfigError when the file's layout or language cannot be determined."""
    if (first := _first_line(read_source_bytes(source))) is None:
        return
    try:
        layout = _layout(first, lang_column)
    except ValueError as exc:
        raise ConfigError(f"{source.name}: {exc}") from None
    if layout.lang_col is None and path_hints(source.member or source.path)[0] is None:
        raise ConfigError(
            f"{source.name}: no {lang_column!r} column and no language code in the file name "
            "(name files like en_train.tsv, or add a language column)"
        )


def parse_label_file(source: LabelSource, data: bytes, lang_column: str) -> Iterator[dict]:
    """Yields label rows ``{tweet_id, lang, label, released_split, source}`` or error records (``_error``)."""
    path_lang, released = path_hints(source.member or source.path)
    layout = None
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            yield {"_error": ("invalid_utf8", f"line {number}: {exc.reason}"), "_input": raw}
            continue
        if not line.strip():
            continue
        if layout is None:
            layout = _layout(line, lang_column)
            if layout.header:
                continue
        # Without a quote character csv's rules reduce to a plain split (the common case, much faster).
        cells = (
            line.split(layout.delimiter)
            if '"' not in line and "\r" not in line
            else next(csv.reader([line], delimiter=layout.delimiter), [])
        )
        if len(cells) <= max(layout.id_col, layout.label_col):
            yield {
                "_error": ("malformed_row", f"line {number}: expected ID and label columns"),
                "_input": line,
            }
            continue
        tweet_id, problem = normalize_id(cells[layout.id_col])
        if problem:
            yield {"_error": (problem[0], f"line {number}: {problem[1]}"), "_input": line}
            continue
        label = clean_label(cells[layout.label_col])
        lang = (
            canonical_lang(cells[layout.lang_col])
            if layout.lang_col is not None and len(cells) > layout.lang_col
            else None
        )
        lang = lang or path_lang
        if not label:
            yield {"_error": ("empty_label", f"line {number}: empty label"), "_input": line}
        elif not lang:
            yield {"_error": ("no_language", f"line {number}: no language for this row"), "_input": line}
        else:
            yield {
                "tweet_id": tweet_id,
                "lang": lang,
                "label": label,
                "released_split": released,
                "source": source.name,
            }


def count_label_rows(data: bytes, lang_column: str) -> int:
    """Rows of a label file without parsing them: its non-empty lines, less the header (for progress)."""
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    try:
        header = bool(lines) and _layout(lines[0].decode("utf-8-sig", "replace").rstrip("\r"), lang_column).header
    except ValueError:
        header = False
    return len(lines) - int(header)


def label_table(rows: list[dict]) -> pa.Table:
    """Label rows as one table of LABEL_ROWS (the label's comparison key computed once, here)."""
    labels = [r["label"] for r in rows]
    keys = {label: label_key(label) for label in set(labels)}  # labels repeat: one key per spelling
    columns = {
        "tweet_id": [r["tweet_id"] for r in rows],
        "lang": [r["lang"] for r in rows],
        "label": labels,
        "key": [keys[label] for label in labels],
        "released_split": [r["released_split"] for r in rows],
        "source": pa.array([r["source"] for r in rows], pa.string()).dictionary_encode(),
    }
    return pa.Table.from_pydict(columns, schema=LABEL_ROWS)


class _ReadLabelFileFn(beam.DoFn):
    """Reads one label source; tables of rows on the main output, bad rows as error records on ``errors``."""

    def __init__(self, stage: str, lang_column: str):
        self._stage = stage
        self._lang_column = lang_column
        self._counters = Counters(stage)

    def process(self, source: LabelSource) -> Iterable:
        batch: list[dict] = []
        read = total = 0  # rows since the last progress update; rows of the whole file
        for row in parse_label_file(source, read_source_bytes(source), self._lang_column):
            read += 1
            total += 1
            if "_error" in row:
                error_type, message = row["_error"]
                self._counters.inc(f"rejected_malformed_{error_type}")
                yield beam.pvalue.TaggedOutput(
                    ERRORS, error_record(self._stage, row["_input"], error_type, message, source.name)
                )
                continue
            batch.append(row)
            if len(batch) >= TABLE_ROWS:
                progress.advance(self._stage, read)
                read = 0
                yield label_table(batch)
                batch = []
        progress.advance(self._stage, read)
        self._counters.inc("labels_read", total)
        if batch:
            yield label_table(batch)


class ReadLabelFiles(beam.PTransform):
    """Released ``ID,label`` files -> tables of LABEL_ROWS on ``main``; bad rows as dead letters on ``errors``."""

    def __init__(self, sources: list[LabelSource], *, stage: str, lang_column: str = "lang"):
        super().__init__()
        self._sources = sources
        self._stage = stage
        self._lang_column = lang_column

    def expand(self, p):
        return (
            p
            | "LabelSources" >> beam.Create(self._sources)
            | "ReadLabelFile"
            >> beam.ParDo(_ReadLabelFileFn(self._stage, self._lang_column)).with_outputs(ERRORS, main="main")
        )


def tweet_files(tweets: str) -> list[str]:
    """Hydrate output files: DIR/tweets/*.parquet when DIR/tweets exists, else DIR or the glob itself.

    Every file's footer is checked (a tweet_id column, TWEET_INPUT's types): ConfigError otherwise.
    """
    sub = files.join(tweets, "tweets")
    pattern = sub if "*" not in tweets and FileSystems.exists(sub) else tweets
    paths = files.expand_inputs(pattern, suffixes=(".parquet",))
    for path in paths:
        check_input_schema(path, ["tweet_id"], TWEET_INPUT, what="hydrate's tweets output")
    return paths


def unavailable_files(tweets: str) -> list[str]:
    """Hydrate's DIR/unavailable/*.parquet (tweet_id, status) when `tweets` is a hydrate output directory."""
    sub = files.join(tweets, "unavailable")
    if "*" in tweets or not FileSystems.exists(sub):
        return []
    try:
        return files.expand_inputs(sub, suffixes=(".parquet",))
    except ConfigError:
        return []


class ReadUnavailable(beam.PTransform):
    """Tables of ``tweet_id, status`` from hydrate's unavailable/ (an empty PCollection without it)."""

    def __init__(self, paths: list[str]):
        super().__init__()
        self._paths = paths

    def expand(self, p):
        if not self._paths:
            return p | "NoUnavailable" >> beam.Create([])
        return p | "ReadUnavailable" >> ReadParquetTables(self._paths, ["tweet_id", "status"])


def _row_groups(path: str) -> Iterator[tuple[str, int]]:
    for index in range(len(row_group_sizes(path))):
        yield path, index


def _read_row_group(item: tuple[str, int], columns: list[str]) -> pa.Table:
    path, index = item
    with FileSystems.open(path) as handle:
        parquet = pq.ParquetFile(pa.BufferReader(handle.read()))
    present = [c for c in columns if c in parquet.schema_arrow.names] if columns else None
    return parquet.read_row_group(index, columns=present)


class ReadParquetTables(beam.PTransform):
    """One ``pa.Table`` per Parquet row group of `paths`, limited to `columns` (missing ones skipped; empty: all)."""

    def __init__(self, paths: list[str], columns: list[str]):
        super().__init__()
        self._paths = paths
        self._columns = columns

    def expand(self, p):
        return (
            p
            | "Paths" >> beam.Create(self._paths)
            | "RowGroups" >> beam.FlatMap(_row_groups)
            # Spreads row groups over workers before the (heavier) reads.
            | "SpreadRowGroups" >> beam.Reshuffle()
            | "ReadRowGroup" >> beam.Map(_read_row_group, columns=self._columns)
        )


def iter_records(path: str) -> Iterator[tuple[int, object]]:
    """(line/row number, record) from CSV/TSV (dict per row, header required), JSONL or Parquet."""
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        table = files.read_parquet_table(path)
        for number, row in enumerate(table.to_pylist(), start=1):
            yield number, row
        return
    text = files.read_bytes(path).decode("utf-8-sig", errors="replace")
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, ValueError(f"bad JSON: {exc.msg}: {line}")
        return
    lines = text.splitlines()
    delimiter = "\t" if lines and "\t" in lines[0] else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    for number, row in enumerate(reader, start=2):
        yield number, {(k or "").strip().lower(): v for k, v in row.items()}
