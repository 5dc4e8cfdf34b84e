"""Shared pieces of the benchmark builders: splits, tokenization, per-language files, dataset card."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.core.card import card_header, citation_section
from twhin_data.core.errors import ConfigError
from twhin_data.core.hashing import id_unit_interval, shard_of, stable_hash64
from twhin_data.core.spill import SliceRef, write_split
from twhin_data.schemas import conform
from twhin_data.text import tokenize
from twhin_data.transforms.combiners import rows_with_ids

SPLITS = ("train", "validation", "test")
MAX_LENGTH = 128


def parse_split(text: str) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"`` -> (0.8, 0.1, 0.1); ConfigError unless three fractions >= 0 summing to 1."""
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--split: expected three numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3 or any(not 0.0 <= x <= 1.0 for x in parts) or abs(sum(parts) - 1.0) > 1e-6:
        raise ConfigError(f"--split: expected three fractions in [0, 1] summing to 1, got {text!r}")
    return parts  # type: ignore[return-value]


def split_salt(seed: int) -> str:
    return f"twhin-benchmark-split:{seed}"


def assign_splits(tweet_ids: Sequence[str], fractions: Sequence[float], seed: int) -> list[str]:
    """Split of each tweet from a salted stable hash of its ID: the same ID always lands in the same split.

    >>> assign_splits(["1", "2"], (1.0, 0.0, 0.0), 0)
    ['train', 'train']
    """
    if not tweet_ids:
        return []
    u = id_unit_interval(pa.array(list(tweet_ids), pa.string()), split_salt(seed))
    bounds = np.cumsum(np.asarray(fractions, dtype=np.float64))
    index = np.searchsorted(bounds[:2], u, side="right")
    return [SPLITS[i] for i in index]


def rng_for(*parts: object) -> np.random.Generator:
    """A numpy generator seeded from a stable hash of `parts` (same stream on every machine)."""
    return np.random.default_rng(stable_hash64(":".join(str(p) for p in parts), "twhin-benchmark-rng"))


def numeric_id_order(ids: Sequence[str] | pa.Array | pa.ChunkedArray) -> list[int]:
    """Indices that sort decimal ID strings numerically (shorter first, then by text; stable).

    >>> numeric_id_order(["10", "9", "100"])
    [1, 0, 2]
    """
    if len(ids) == 0:
        return []
    arr = ids if isinstance(ids, (pa.Array, pa.ChunkedArray)) else pa.array(list(ids), pa.string())
    table = pa.table({"n": pc.utf8_length(arr), "id": arr})
    return pc.sort_indices(table, sort_keys=[("n", "ascending"), ("id", "ascending")]).to_pylist()


class TokenizerHandle:
    """Loads ``text.tokenize.load_tokenizer(path)`` lazily, once per process; encodes batches of texts."""

    def __init__(self, path: str | None, max_length: int = MAX_LENGTH):
        self.path = path
        self.max_length = max_length
        self._tokenizer = None

    def encode(self, texts: list[str]) -> list[list[int]] | None:
        if self.path is None:
            return None
        if self._tokenizer is None:
            self._tokenizer, _info = tokenize.load_tokenizer(self.path)
        if not texts:
            return []
        return [list(ids) for ids in tokenize.encode_texts(self._tokenizer, texts, self.max_length)]


def check_tokenizer(path: str | None) -> None:
    """ConfigError when a tokenizer was asked for but cannot be loaded (checked before the run)."""
    if path is None:
        return
    try:
        tokenize.load_tokenizer(path)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user path: say why in one line
        raise ConfigError(f"--tokenizer {path!r}: cannot load it ({type(exc).__name__}: {exc})") from None


#: Files are written under OUTPUT/.partial/<lang>/ and moved into place by the card step: a hidden
#: folder, so `datasets.load_dataset(OUTPUT, lang)` never reads an unfinished run.
STAGING = ".partial"
#: Under STAGING: the Arrow IPC files a join hands from step to step (`spill_slices`), so only file
#: references go through the runner's shuffles; removed with STAGING by the card step.
SPILL = ".spill"


def spill_folder(output: str) -> str:
    return files.join(output, STAGING, SPILL)


def write_table(output: str, lang: str, name: str, table: pa.Table) -> dict:
    """Writes ``<output>/<lang>/<name>.parquet`` (staged, see STAGING) deterministically; returns its info."""
    info = files.write_parquet_atomic(files.join(output, STAGING, lang, f"{name}.parquet"), table)
    info["lang"], info["name"] = lang, name
    info["path"] = f"{lang}/{name}.parquet"
    return info


def dataset_card(
    title: str, description: str, configs: list[dict], body: str, *, manifest: dict, task_categories: list[str]
) -> str:
    """A Hugging Face dataset card whose YAML ``configs`` make ``load_dataset(DIR, name)`` work, with
    the license, languages, size and citation `push_to_hub` publishes (core/card.py).

    `configs`: ``[{"config_name": "en", "data_files": {"train": "en/train.parquet", ...}}, ...]``.
    """
    rows = sum(int(f.get("rows", 0)) for f in manifest["files"])
    by_path = {f["path"]: f for f in manifest["files"]}
    sizes = {
        c["config_name"]: {
            split: (int(by_path[path]["rows"]), int(by_path[path]["bytes"]))
            for split, path in c["data_files"].items()
            if path in by_path
        }
        for c in configs
    }
    header = card_header(
        pretty_name=title,
        configs=configs,
        languages=languages_in(manifest),
        rows=rows,
        task_categories=task_categories,
        sizes=sizes,
    )
    lines = [*header, "", f"# {title}", "", description, "", body.rstrip(), "", *citation_section()]
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _write_card(infos: list[dict], output: str, render, stage: str) -> dict:
    """Writes ``manifest.json`` (every file, sorted), the ``README.md`` rendered from it and, last,
    the completion marker."""
    manifest = {"files": sorted(infos, key=lambda i: i["path"])}
    for lang in sorted({info["lang"] for info in infos}):
        files.publish(files.join(output, STAGING, lang), files.join(output, lang))
    files.remove(files.join(output, STAGING))
    files.write_json(files.join(output, "manifest.json"), manifest)
    files.write_bytes_atomic(files.join(output, "README.md"), render(manifest).encode("utf-8"))
    files.finish_output(output, stage)
    return manifest


def languages_in(manifest: dict) -> list[str]:
    return sorted({f["lang"] for f in manifest["files"]})


def rows_of(manifest: dict, lang: str, name: str) -> int:
    return next((f["rows"] for f in manifest["files"] if f["lang"] == lang and f["name"] == name), 0)


class WriteManifestAndCard(beam.PTransform):
    """File infos -> ``manifest.json`` + ``README.md`` (dataset card from ``render(manifest) -> str``),
    then ``_SUCCESS`` in place of the ``_INCOMPLETE`` that `prepare_output` wrote."""

    def __init__(self, output: str, render, *, stage: str):
        super().__init__()
        self._output = output
        self._render = render
        self._stage = stage

    def expand(self, infos):
        return (
            infos
            | "AllFiles" >> beam.combiners.ToList()
            | "WriteCard" >> beam.Map(_write_card, output=self._output, render=self._render, stage=self._stage)
        )


def card_config(manifest: dict, lang: str, config_name: str, names: dict[str, str]) -> dict | None:
    """One card config of `lang` with the non-empty files `names` (split -> file stem), or None.

    Empty files stay out of the card: `datasets` cannot read a Parquet file without row groups.
    """
    kept = {split: f"{lang}/{name}.parquet" for split, name in names.items() if rows_of(manifest, lang, name)}
    return {"config_name": config_name, "data_files": kept} if kept else None


def concat(tables: Iterable[pa.Table], schema: pa.Schema | None = None) -> pa.Table | None:
    """The non-empty tables as one (None, or `schema`'s empty table, when there are none)."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return schema.empty_table() if schema is not None else None
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def append_row(columns: tuple[list, ...], *values: object) -> None:
    """Appends one row's values to per-column lists (a table being built column by column)."""
    for column, value in zip(columns, values, strict=True):
        column.append(value)


def table_of(columns: Sequence[list], schema: pa.Schema) -> pa.Table:
    """A table of `schema` from per-column Python lists, in the schema's column order."""
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)


def column_lists(table: pa.Table | None, names: list[str]) -> dict[str, list]:
    """Python lists of the named columns (empty lists for no table): what a row loop reads."""
    return {c: (table.column(c).to_pylist() if table is not None else []) for c in names}


def row_of(table: pa.Table, i: int) -> dict:
    """Row `i` as a dict (for the few rows a loop reports, not for every row)."""
    return table.slice(i, 1).to_pylist()[0]


def first_index(ids: list[str]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """(ID -> its first row, ID -> all its rows for the IDs on more than one row)."""
    first = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1), strict=True))  # the first row wins: set last
    if len(first) == len(ids):
        return first, {}
    repeated: dict[str, list[int]] = {}
    for i, tweet_id in enumerate(ids):
        if first[tweet_id] != i:
            repeated.setdefault(tweet_id, [first[tweet_id]]).append(i)
    return first, repeated


def table_slices(table: pa.Table, key: str, buckets: int, salt: str) -> list[tuple[int, pa.Table]]:
    """``(bucket, rows)`` slices of a table by a stable hash of its `key` column, sorted by bucket.

    Joins shuffle these slices instead of single rows: Beam's per-element cost is paid per slice,
    and each slice is a compact table of its own rows.
    """
    if table.num_rows == 0:
        return []
    shard = shard_of(table.column(key), buckets, salt)
    order = np.argsort(shard, kind="stable")
    ordered = shard[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    return [
        (int(ordered[a]), table.take(pa.array(order[a:b])))
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


def tweet_slices(
    table: pa.Table, wanted: pa.Array, buckets: int, salt: str, schema: pa.Schema | None = None
) -> list[tuple[int, pa.Table]]:
    """The rows of a tweet (or unavailable) table whose ID was asked for, as (bucket, table) slices.

    With `schema` the rows are conformed to it first (a Parquet glob of tweets without ``mentions``
    or ``urls`` gets null columns), so every slice of a bucket has the same columns.
    """
    rows = rows_with_ids(table, wanted)
    return table_slices(conform(rows, schema) if schema is not None else rows, "tweet_id", buckets, salt)


def spill_slices(
    table: pa.Table, key: str, buckets: int, salt: str, folder: str, schema: pa.Schema | None = None
) -> list[tuple[int, SliceRef]]:
    """`table_slices`, written: the rows go to one Arrow IPC file under `folder` (core.spill), one
    slice per bucket in the same row order, and only ``(bucket, SliceRef)`` travels. A shuffled
    table is serialized and copied several times by the runner (and again to sample its size);
    a reference is a few bytes, and the reader memory-maps the file. `schema`: the file's schema
    (default: the table's own); a table of another schema is cast to it."""
    if table.num_rows == 0:
        return []
    schema = schema or table.schema
    path = files.join(folder, f"{uuid.uuid4().hex}.arrow")  # any unique name: the contents decide the output
    table = table if table.schema.equals(schema) else table.cast(schema)  # conformed tweets arrive exact
    return write_split(path, schema, table, shard_of(table.column(key), buckets, salt))


def spill_tweet_slices(
    table: pa.Table, wanted: pa.Array, buckets: int, salt: str, folder: str, schema: pa.Schema
) -> list[tuple[int, SliceRef]]:
    """`tweet_slices`, written (`spill_slices`): the asked-for rows conformed to `schema`."""
    return spill_slices(conform(rows_with_ids(table, wanted), schema), "tweet_id", buckets, salt, folder, schema)
