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
from twhin_data.core.hashing import hash_ids, id_unit_interval
from twhin_data.core.ids import ID_PATTERN
from twhin_data.core.pool import Tagged
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.text.tokenize import encode_arrow, load_tokenizer

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
    ]
)


def _reject(table: pa.Table, mask: np.ndarray, error_type: str, message: str) -> Iterator:
    rows = table.filter(pa.array(mask)).select(["tweet_id", "text", "source"]).to_pylist()
    for row in rows:
        value = {"tweet_id": row["tweet_id"], "text": row["text"]}
        yield Tagged(ERRORS, error_record(STAGE, value, error_type, message, row["source"]))


def tokenize_table(
    table: pa.Table, *, tokenizer: str, max_length: int, valid_fraction: float, seed: int
) -> list:
    """Tokenizes one corpus table (tweet_id, text, lang, source) into a `TOKENS` table.

    Rows with a malformed tweet_id or null/blank text become dead letters. Each kept tweet gets
    ``<s> ... </s>`` ids (truncated to `max_length`), its split (validation when the hashed
    tweet ID falls below `valid_fraction`) and a salted hash `key` that picks and orders shards.

    Returns: [tokens table, Tagged errors..., Tagged stats dict].
    """
    tok, info = load_tokenizer(tokenizer)
    out: list = []
    if not pa.types.is_string(table.schema.field("tweet_id").type):  # e.g. int64 IDs: judge their digits
        table = table.set_column(0, "tweet_id", pc.cast(table.column("tweet_id"), pa.string()))
    ids = table.column("tweet_id")
    text = table.column("text")
    bad_id = pc.invert(pc.fill_null(pc.match_substring_regex(ids, ID_PATTERN), False)).to_numpy(
        zero_copy_only=False
    )
    blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), True).to_numpy(zero_copy_only=False)
    blank &= ~bad_id
    stats = {"tweets_in": table.num_rows, "rejected_invalid_id": int(bad_id.sum())}
    stats["rejected_text_empty"] = int(blank.sum())
    out.extend(_reject(table, bad_id, "invalid_id", "tweet_id is not 1-19 decimal digits"))
    out.extend(_reject(table, blank, "text_empty", "text is null or blank: nothing to tokenize"))
    keep = ~(bad_id | blank)
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
            pa.array(np.where(validation, "validation", "train")),
        ],
        schema=TOKENS,
    )
    stats.update(tokenized=table.num_rows, truncated=int(truncated.sum()), tokens=int(offsets[-1]))
    lengths = np.diff(offsets)
    for split, mask in (("train", ~validation), ("validation", validation)):
        stats[f"mlm_rows_{split}"] = int(mask.sum())
        stats[f"mlm_tokens_{split}"] = int(lengths[mask].sum())
    out.append(tokens)
    out.append(Tagged(STATS, stats))
    return out


def limit_tokenizer_threads(threads: int) -> None:
    """PoolMapFn initializer: in pool children only, caps the Rust tokenizer's thread pool.

    N processes x `threads` rayon threads = the core budget: the tokenizer is already threaded,
    so a pool only helps by running the Python side (Arrow, hashing) in parallel too.
    """
    if multiprocessing.parent_process() is not None:
        os.environ["RAYON_NUM_THREADS"] = str(max(1, threads))
