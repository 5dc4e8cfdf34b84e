"""Tokenizing one corpus table: the shard stage's pool function (pure, no Beam).

`tokenize_table` runs inline or in the `PoolMapFn` processes of ``--workers`` (the fork server
preloads this module, so it must not import ``apache_beam``: core/pool.py). Its outputs are one
tokenized `TOKENS` table, dead letters (``Tagged("errors", ...)``) and one stats dict
(``Tagged("stats", ...)``); counters are incremented from the stats dicts in the main process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.errors import error_record
from twhin_data.core.hashing import hash_ids, id_unit_interval, splitmix64
from twhin_data.core.ids import id_mask
from twhin_data.core.pool import Tagged
from twhin_data.core.tables import sorted_unique
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.text.tokenize import encode_arrow, load_tokenizer
from twhin_data.transforms.shard import stages as st

STAGE = "shard"
CORPUS_COLUMNS = ("tweet_id", "text", "lang")
PAIR_COLUMNS = ("tweet_id_a", "tweet_id_b", "score")
#: Columns of a tokenized table (spilled by steps.spill_tokens, read by its shard writer).
TOKENS = pa.schema(
    [
        ("tweet_id", pa.string()),
        ("lang", pa.string()),
        ("input_ids", pa.list_(pa.int32())),
        ("key", pa.uint64()),
        ("split", pa.string()),
        ("copy", pa.int32()),
        ("author_id", pa.string()),
    ]
)
#: Corpus columns read when present: `copies` (language resampling's repetition, prepare) and
#: `author_id` (pair batches keep two pairs of one author apart: transforms/shard/batches.py).
OPTIONAL_CORPUS_COLUMNS = ("copies", "author_id")


def _reject(table: pa.Table, mask: np.ndarray, error_type: str, message: str) -> Iterator:
    rows = table.filter(pa.array(mask)).select(["tweet_id", "text", "source"]).to_pylist()
    for row in rows:
        value = {"tweet_id": row["tweet_id"], "text": row["text"]}
        yield Tagged(ERRORS, error_record(STAGE, value, error_type, message, row["source"]))


def tokenize_table(
    table: pa.Table,
    *,
    tokenizer: str,
    max_length: int,
    valid_fraction: float,
    seed: int,
    engaged: str | None = None,
    stages: tuple[int, ...] = (1, 2),
) -> list:
    """Tokenizes one corpus table (tweet_id, text, lang, source) into a `TOKENS` table.

    Rows with a malformed tweet_id or null/blank text become dead letters. Each kept tweet gets
    ``<s> ... </s>`` ids (truncated to `max_length`), its split (validation when the hashed
    tweet ID falls below `valid_fraction`) and a salted hash `key` that picks and orders shards.
    A train tweet whose corpus row says ``copies`` = k > 1 (prepare's up-sampling) appears k times,
    ``copy`` 0..k-1, each copy with its own key: the copies land in different places of the
    packed stream. Validation tweets appear once (copies would only weight the evaluation).
    With `engaged` (graph's tweets), the split label carries the tweet's stage
    (transforms/shard/stages.py) and tweets of a stage not in `stages` are counted, not written.

    Returns: [tokens table, Tagged errors..., Tagged stats dict].
    """
    tok, info = load_tokenizer(tokenizer)
    out: list = []
    if not pa.types.is_string(table.schema.field("tweet_id").type):  # e.g. int64 IDs: judge their digits
        table = table.set_column(0, "tweet_id", pc.cast(table.column("tweet_id"), pa.string()))
    ids = table.column("tweet_id")
    text = table.column("text")
    bad_id = pc.invert(id_mask(ids)).to_numpy(zero_copy_only=False)
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), True).to_numpy(zero_copy_only=False)
    blank &= ~bad_id
    stats = {"tweets_in": table.num_rows, "rejected_invalid_id": int(bad_id.sum())}
    stats["rejected_text_empty"] = int(blank.sum())
    out.extend(_reject(table, bad_id, "invalid_id", "tweet_id is not 1-19 decimal digits"))
    out.extend(_reject(table, blank, "text_empty", "text is null or blank: nothing to tokenize"))
    keep = ~(bad_id | blank)
    stage = None
    if engaged is not None:
        numeric_all = pc.cast(pc.if_else(pa.array(keep), ids, "0"), pa.uint64()).to_numpy(zero_copy_only=False)
        stage = st.stage_of(numeric_all, st.load_engaged(engaged))
        skipped = keep & ~np.isin(stage, np.array(stages, np.int8))
        stats["rejected_stage_not_selected"] = int(skipped.sum())
        keep &= ~skipped
        stage = stage[keep]
    if not keep.all():
        table = table.filter(pa.array(keep))
    ids = table.column("tweet_id").combine_chunks()
    langs = pc.fill_null(table.column("lang"), "und").combine_chunks()
    values, offsets, truncated = encode_arrow(
        tok, table.column("text").to_pylist(), max_length, eos_id=info.special_ids["eos"]
    )
    numeric = pc.cast(ids, pa.uint64())  # parsed once for both hashes (IDs are validated digits)
    validation = id_unit_interval(numeric, salt=f"split:{seed}") < valid_fraction
    tokens = pa.table(
        [
            ids,
            langs,
            pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, type=pa.int32())),
            pa.array(hash_ids(numeric, salt=f"shard:{seed}"), type=pa.uint64()),
            pa.array(st.labels(validation, stage).astype(str), pa.string()),
            pa.array(np.zeros(table.num_rows, np.int32)),
            table.column("author_id").combine_chunks().cast(pa.string())
            if "author_id" in table.column_names
            else pa.nulls(table.num_rows, pa.string()),
        ],
        schema=TOKENS,
    )
    stats.update(tokenized=table.num_rows, truncated=int(truncated.sum()), tokens=int(offsets[-1]))
    lengths = np.diff(offsets)
    copies = _copies(table, validation)
    split = st.labels(validation, stage)
    every = ["train", "validation"] if stage is None else [f"stage{n}_{s}" for n in stages for s in ("train", "validation")]
    for label in sorted(set(every) | set(sorted_unique(split).tolist())):  # zeros too: the manifest counts every split
        mask = split == label
        stats[f"mlm_rows_{label}"] = int(copies[mask].sum())
        stats[f"mlm_tokens_{label}"] = int((lengths * copies)[mask].sum())
    stats["mlm_repeated_copies"] = int(copies.sum()) - table.num_rows
    if stats["mlm_repeated_copies"]:
        tokens = repeat_copies(tokens, copies)
    out.append(tokens)
    out.append(Tagged(STATS, stats))
    return out


def _copies(table: pa.Table, validation: np.ndarray) -> np.ndarray:
    """Copies per row: the corpus's `copies` (null or < 1 reads as 1) for train rows, 1 for validation."""
    if "copies" not in table.column_names:
        return np.ones(table.num_rows, np.int64)
    copies = pc.fill_null(table.column("copies"), 1).to_numpy(zero_copy_only=False).astype(np.int64)
    return np.where(validation, 1, np.maximum(copies, 1))


def repeat_copies(tokens: pa.Table, copies: np.ndarray) -> pa.Table:
    """Each row k times (copy 0..k-1); copy c > 0 gets the key splitmix(key ^ c * golden ratio)."""
    index = np.repeat(np.arange(tokens.num_rows), copies)
    starts = np.repeat(np.cumsum(copies) - copies, copies)
    copy = (np.arange(len(index)) - starts).astype(np.int32)
    out = tokens.take(pa.array(index))
    key = out.column("key").to_numpy()
    with np.errstate(over="ignore"):
        mixed = splitmix64(key ^ (copy.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    key = np.where(copy == 0, key, mixed)
    out = out.set_column(out.schema.get_field_index("key"), "key", pa.array(key, pa.uint64()))
    return out.set_column(out.schema.get_field_index("copy"), "copy", pa.array(copy, pa.int32()))


def limit_tokenizer_threads(threads: int) -> None:
    """PoolMapFn initializer: in pool children only, caps the Rust tokenizer's thread pool.

    N processes x `threads` rayon threads = the core budget: the tokenizer is already threaded,
    so a pool only helps by running the Python side (Arrow, hashing) in parallel too.
    """
    if multiprocessing.parent_process() is not None:
        os.environ["RAYON_NUM_THREADS"] = str(max(1, threads))
