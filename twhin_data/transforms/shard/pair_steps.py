"""Shard's pair steps (pure, no Beam): the pairs join, the per-tweet cap and the pair shard writer
on spill files, so only file references go through the shuffles and no step holds more than one
partition (or one shard) of rows.

Tweets and pairs are partitioned by a hash of a tweet ID into ``parts`` partitions (one per few MB
of input, fixed by the pipeline's plan). A step that splits rows by partition writes one file and
returns one ``(kind, SliceIndex)`` for it (each partition's batch range, `core.spill`), not one
reference per partition; `ShardPairs` hands each partition its ``(kind, SliceRef)`` slices,
gathered from those indexes. Each step is a `PoolMapFn` function:

1. `spill_pair_tweets` (per spilled token slice): each tweet once (resampling's repeated copies
   left out), split by the partition of its ID -> ``("tweets", SliceIndex)``;
2. `spill_pairs` (per pairs table): pairs split by the partition of tweet a; a pair whose tweet a
   cannot be a corpus ID (1-19 digits) is a dead letter here;
3. `join_side` "a" (per partition: the slices of its tweets and pairs):
   tweet a's ids, language, author and split attached (missing tweet: dead letter), then split by
   the partition of tweet b; `join_side` "b": the same for tweet b; a pair is in validation when
   either tweet is, so no train pair shares a tweet with validation. Its output is the joined
   pairs of the partition (one file) and, with a cap, each pair's two ends split by the
   partition of their tweet;
4. `cap_pairs` (per partition of ends): each tweet keeps its ``cap`` best-scoring pairs (ties:
   lower partner ID, then the pair); pairs beyond the cap of either tweet go back, as (a, b), to
   the partition of their joined row;
5. `place_pairs` (per partition of joined pairs): capped pairs removed (counted), the salted
   pair key computed (it picks and orders shards), rows spilled one slice per split, with the
   size stats that fix the shard plan; steps.route_slice then routes slices to shards;
6. `write_pair_shard` (per shard): its rows sorted by (key, tweet a, tweet b), laid out as
   contrastive batches (transforms/shard/batches.py), written as ``{split}-{i:05d}-of-{n:05d}.parquet``.

Every read sorts slices by file name and every file name derives from its input, so the bytes
written depend neither on the number of workers, nor on arrival order, nor on ``parts``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core import files
from twhin_data.core.errors import error_record
from twhin_data.core.hashing import hash_ids, stable_hash64
from twhin_data.core.ids import id_mask
from twhin_data.core.parquet import write_parquet_streamed
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import Piece, Pieces, SliceIndex, SliceRef, read_slices, write_slices, write_split
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.schemas import shards, to_table
from twhin_data.schemas.errors import ERRORS as ERROR_ROWS
from twhin_data.transforms.shard import batches
from twhin_data.transforms.shard.mlm_writer import MLM_ROW_GROUP
from twhin_data.transforms.shard.tokenize import STAGE

#: Side output of `join_side` "b": ``("ends", SliceIndex)`` for `cap_pairs`.
ENDS = "ends"
#: Salt of the partition hash (independent of the split and shard hashes).
SALT = "pair-join"
TWEETS = pa.schema(
    [
        ("tweet_id", pa.string()),
        ("input_ids", pa.list_(pa.int32())),
        ("lang", pa.string()),
        ("author_id", pa.string()),
        ("split", pa.string()),
    ]
)
PAIRS = pa.schema(
    [("tweet_id_a", pa.string()), ("tweet_id_b", pa.string()), ("score", pa.float64()), ("source", pa.string())]
)
_SIDE = {
    s: [(f"input_ids_{s}", pa.list_(pa.int32())), (f"lang_{s}", pa.string()), (f"author_{s}", pa.string())]
    for s in "ab"
}
WITH_A = pa.schema([*PAIRS, *_SIDE["a"], ("split", pa.string())])
JOINED = pa.schema([*PAIRS, *_SIDE["a"], *_SIDE["b"], ("split", pa.string())])
PLACED = pa.schema([*JOINED, ("key", pa.uint64())])
#: A pair's end: its tweet, the numeric ID of the other tweet (the cap's tie-break), the pair.
END_ROWS = pa.schema(
    [("tweet", pa.string()), ("partner", pa.uint64()), ("score", pa.float64()), ("a", pa.string()), ("b", pa.string())]
)
OVER = pa.schema([("a", pa.string()), ("b", pa.string())])


def partition_of(ids: pa.Array | pa.ChunkedArray, parts: int) -> np.ndarray:
    """The join partition (0..parts-1) of each decimal tweet ID."""
    return (hash_ids(ids, SALT) % np.uint64(parts)).astype(np.int64)


def _spill_path(tmp: str, step: str, name: str) -> str:
    return files.join(tmp, "pairs", step, f"{name}.arrow")


def _indexed(refs: list, kind: str, parts: int) -> list:
    """`write_split`'s references by partition -> ``[(kind, SliceIndex)]``: one value per task."""
    return [(kind, index) for index in SliceIndex.of(refs, parts)]


def spill_pair_tweets(item: tuple[str, SliceRef], *, tmp: str, parts: int) -> list:
    """Step 1: one spilled token slice -> its tweets (first copies), split by partition."""
    _split, ref = item
    table = read_slices([ref], TWEETS)
    table = table.filter(pc.equal(table.column("copy"), 0)).select(TWEETS.names)
    name = f"{os.path.basename(ref.path)}-{ref.start:06d}"
    parts_of = partition_of(table.column("tweet_id"), parts)
    return _indexed(write_split(_spill_path(tmp, "tweets", name), TWEETS, table, parts_of), "tweets", parts)


def _missing(pairs: pa.Table, side: str) -> list:
    """Dead letters for the pairs whose tweet `side` is not in the tokenized corpus: one table of
    error rows per task (`io.WriteErrors` takes tables and rows alike), so the runner carries one
    element per task, not one per bad pair."""
    rows = []
    for row in pairs.select([*PAIRS.names]).to_pylist():
        value = {k: row[k] for k in ("tweet_id_a", "tweet_id_b", "score")}
        message = f"tweet_{side} {row[f'tweet_id_{side}']} is not in the tokenized corpus"
        rows.append(error_record(STAGE, value, "pair_tweet_missing", message, row["source"]))
    return [Tagged(ERRORS, to_table(rows, ERROR_ROWS))] if rows else []


def spill_pairs(item: tuple[str, pa.Table], *, tmp: str, parts: int) -> list:
    """Step 2: one named pairs table -> pairs split by the partition of tweet a; dead letters; stats."""
    name, table = item
    columns = {c: table.column(c).cast(PAIRS.field(c).type) for c in ("tweet_id_a", "tweet_id_b", "score")}
    source = table.column("source") if "source" in table.column_names else pa.nulls(table.num_rows, pa.string())
    pairs = pa.table({**columns, "source": source.cast(pa.string())}, schema=PAIRS)
    valid = id_mask(pairs.column("tweet_id_a"))
    bad = pairs.filter(pc.invert(valid))
    good = pairs.filter(valid)
    refs = write_split(_spill_path(tmp, "in", name), PAIRS, good, partition_of(good.column("tweet_id_a"), parts))
    stats = {"pairs_in": pairs.num_rows, "rejected_pair_tweet_missing": bad.num_rows}
    return _indexed(refs, "pairs", parts) + _missing(bad, "a") + [Tagged(STATS, stats)]


def _read(values: Iterable[tuple[str, SliceRef]], kind: str, schema: pa.Schema) -> pa.Table:
    return read_slices([ref for k, ref in values if k == kind], schema)


def _first_per_id(tweets: pa.Table) -> pa.Table:
    """One row per tweet ID: the first in read order (a corpus read twice holds the same tweet twice)."""
    ids = tweets.column("tweet_id")
    if pc.count_distinct(ids).as_py() == tweets.num_rows:
        return tweets
    first = pc.index_in(pc.unique(ids), value_set=ids)  # unique() keeps first-occurrence order
    return tweets.take(first)


def _attach(pairs: pa.Table, tweets: pa.Table, side: str) -> tuple[pa.Table, pa.Table, pa.Array]:
    """(pairs with tweet `side` found + its columns, pairs whose tweet is missing, found tweets' split)."""
    at = pc.index_in(pairs.column(f"tweet_id_{side}"), value_set=tweets.column("tweet_id"))
    found = pc.is_valid(at)
    hit = pairs.filter(found)
    rows = tweets.take(pc.filter(at, found))
    for (name, _type), column in zip(_SIDE[side], ("input_ids", "lang", "author_id"), strict=True):
        hit = hit.append_column(name, rows.column(column))
    return hit, pairs.filter(pc.invert(found)), rows.column("split")


def join_side(item: tuple[int, Iterable], *, tmp: str, parts: int, side: str, cap: int = 0) -> list:
    """Steps 3 (per partition): attach tweet `side` ("a", then "b") to the pairs of the partition."""
    part, values = item
    values = list(values)
    pairs = _read(values, "pairs", PAIRS if side == "a" else WITH_A)
    if pairs.num_rows == 0:  # a partition of tweets no pair names: nothing to read
        return []
    hit, missing, split = _attach(pairs, _first_per_id(_read(values, "tweets", TWEETS)), side)
    validation = pc.ends_with(split, "validation")
    out = _missing(missing, side)
    stats = {"rejected_pair_tweet_missing": missing.num_rows}
    if side == "a":
        hit = hit.append_column("split", pc.if_else(validation, "validation", "train"))
        ok = id_mask(hit.column("tweet_id_b"))
        out += _missing(hit.filter(pc.invert(ok)), "b")
        stats["rejected_pair_tweet_missing"] += hit.num_rows - (pc.sum(ok).as_py() or 0)
        hit = hit.filter(ok)
        parts_of = partition_of(hit.column("tweet_id_b"), parts)
        refs = write_split(_spill_path(tmp, "a", f"{part:05d}"), WITH_A, hit, parts_of)
        return _indexed(refs, "pairs", parts) + out + [Tagged(STATS, stats)]
    either = pc.or_(validation, pc.equal(hit.column("split"), "validation"))
    hit = hit.drop_columns(["split"]).append_column("split", pc.if_else(either, "validation", "train"))
    out += _indexed(write_slices(_spill_path(tmp, "b", f"{part:05d}"), JOINED, [(part, hit)]), "joined", parts)
    if cap and hit.num_rows:
        a, b = hit.column("tweet_id_a"), hit.column("tweet_id_b")
        score = pc.fill_null(hit.column("score"), 0.0)
        ends = pa.table(
            {
                "tweet": pa.chunked_array([*a.chunks, *b.chunks]),
                "partner": pc.cast(pa.chunked_array([*b.chunks, *a.chunks]), pa.uint64()),
                "score": pa.chunked_array([*score.chunks, *score.chunks]),
                "a": pa.chunked_array([*a.chunks, *a.chunks]),
                "b": pa.chunked_array([*b.chunks, *b.chunks]),
            },
            schema=END_ROWS,
        )
        split_refs = write_split(
            _spill_path(tmp, "ends", f"{part:05d}"), END_ROWS, ends, partition_of(ends.column("tweet"), parts)
        )
        out += [Tagged(ENDS, value) for value in _indexed(split_refs, "ends", parts)]
    return out + [Tagged(STATS, stats)]


def _pair_keys(table: pa.Table, names: tuple[str, str]) -> pa.Array:
    return pc.binary_join_element_wise(table.column(names[0]), table.column(names[1]), ":")


def cap_pairs(item: tuple[int, Iterable], *, tmp: str, parts: int, cap: int) -> list:
    """Step 4 (per partition of ends): the pairs beyond some tweet's `cap` best, as (a, b) routed
    to the partition of their joined row (the partition of tweet b)."""
    part, values = item
    ends = _read(values, "ends", END_ROWS)
    tweet = pc.rank(ends.column("tweet"), sort_keys="ascending", tiebreaker="dense").to_numpy()
    partner = ends.column("partner").to_numpy()
    score = ends.column("score").to_numpy()
    # Within each tweet: best score first, then lower partner ID, then the pair (a deterministic tie-break).
    pair_rank = pc.rank(_pair_keys(ends, ("a", "b")), sort_keys="ascending", tiebreaker="dense").to_numpy()
    order = np.lexsort((pair_rank, partner, -score, tweet))
    ordered = tweet[order]
    starts = np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    over = ends.take(pa.array(order[rank >= cap])).select(["a", "b"])
    if over.num_rows == 0:
        return []
    over = over.group_by(["a", "b"]).aggregate([])
    refs = write_split(_spill_path(tmp, "over", f"{part:05d}"), OVER, over, partition_of(over.column("b"), parts))
    return _indexed(refs, "over", parts)


def place_pairs(item: tuple[int, Iterable], *, tmp: str, salt: str) -> list:
    """Step 5 (per partition of joined pairs): capped pairs out, the pair key in, a slice per split."""
    part, values = item
    values = list(values)
    joined = _read(values, "joined", JOINED)
    over = _read(values, "over", OVER)
    stats: dict[str, int] = {}
    if over.num_rows:
        capped = pc.is_in(_pair_keys(joined, ("tweet_id_a", "tweet_id_b")), value_set=_pair_keys(over, ("a", "b")))
        stats["rejected_pair_over_tweet_cap"] = pc.sum(capped).as_py() or 0
        joined = joined.filter(pc.invert(capped))
    keys = [stable_hash64(k, salt) for k in _pair_keys(joined, ("tweet_id_a", "tweet_id_b")).to_pylist()]
    placed = joined.append_column("key", pa.array(keys, pa.uint64()))
    tokens = pc.add(*(pc.list_value_length(placed.column(c)) for c in ("input_ids_a", "input_ids_b")))
    labels = sorted(pc.unique(placed.column("split")).to_pylist())
    for split in labels:
        mask = pc.equal(placed.column("split"), split)
        stats[f"pairs_rows_{split}"] = pc.sum(mask).as_py()
        stats[f"pairs_tokens_{split}"] = pc.sum(pc.filter(tokens, mask)).as_py() or 0
    codes = pc.index_in(placed.column("split"), value_set=pa.array(labels, pa.string())).to_numpy(zero_copy_only=False)
    refs = write_split(_spill_path(tmp, "placed", f"{part:05d}"), PLACED, placed, codes.astype(np.int64))
    return [(labels[code], ref) for code, ref in refs] + [Tagged(STATS, stats)]


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Dictionary codes (int64, -1 for null) of a column read as chunks, and the shared dictionary."""
    encoded = pc.dictionary_encode(column)  # one dictionary for every chunk
    indices = [chunk.indices for chunk in encoded.chunks]
    codes = pc.fill_null(pa.chunked_array(indices, pa.int32()), -1).to_numpy().astype(np.int64)
    dictionary = encoded.chunks[0].dictionary if encoded.num_chunks else pa.array([], pa.string())
    return codes, dictionary


def batch_ends(keys: pa.Table) -> np.ndarray:
    """Each row's codes for `batches.pack` (int64, one row per pair): its two tweets, then its two
    authors; tweets and authors coded apart (a tweet ID and an author ID may be equal). A null or
    empty author ID is unknown and gets a negative code no other row holds (it never conflicts).
    Only which codes are equal matters to `pack`, not their values: the columns are encoded as
    chunks (no concatenated copy), and a caller may reorder the rows of the result."""
    n = keys.num_rows
    both = [chunk for c in ("tweet_id_a", "tweet_id_b") for chunk in keys.column(c).chunks]
    t, tweets = _codes(pa.chunked_array(both, pa.string()))
    authors = [chunk for c in ("author_a", "author_b") for chunk in keys.column(c).chunks]
    u, names = _codes(pa.chunked_array(authors, pa.string()))
    empty = pc.index(names, "").as_py() if len(names) else -1
    known = (u >= 0) & (u != empty)
    u = np.where(known, u + len(tweets), -1 - np.arange(2 * n, dtype=np.int64))
    return np.stack([t[:n], t[n:], u[:n], u[n:]], axis=1)


def write_pair_shard(
    item: tuple[tuple[str, int, int], Iterable[Piece]], *, path: str, batch_size: int, tmp: str
) -> list:
    """Step 6 (per shard): ``((split, index, count), pieces)`` -> the shard file; returns its info.

    Sorts and lays out batches on the key columns only, then gathers (`core.spill.Pieces.chunks`,
    chunk files under `tmp`) and writes (`core.parquet.write_parquet_streamed`) a row group at a
    time: memory follows the shard's key columns, one piece and one row group."""
    (split, index, count), pieces = item
    shard = Pieces(pieces, PLACED)
    keys = shard.columns(["key", "tweet_id_a", "tweet_id_b", "author_a", "author_b"])
    order = pc.sort_indices(keys, sort_keys=[(c, "ascending") for c in ("key", "tweet_id_a", "tweet_id_b")]).to_numpy()
    ends = batch_ends(keys)[order]  # the codes of the sorted rows, without sorting a copy of the keys
    del keys
    placed, left = batches.pack(ends, batch_size)
    del ends
    rows = order[placed]
    names = shards.PAIR_SHARD.names

    name = f"{split}-{index:05d}-of-{count:05d}.parquet"
    starts = np.arange(0, len(rows), MLM_ROW_GROUP)
    chunks = shard.chunks(names, rows, starts, files.join(tmp, "chunks", f"pairs-{split}-{index:05d}"))
    schema = shards.PAIR_SHARD
    row_groups = (pa.table([t.column(f.name).cast(f.type) for f in schema], schema=schema) for t in chunks)
    written = write_parquet_streamed(files.join(path, name), schema, row_groups, row_group_size=MLM_ROW_GROUP)
    tokens = sum(int(shard.list_lengths(c)[rows].sum()) for c in ("input_ids_a", "input_ids_b"))
    info = {
        "dataset": "pairs",
        "split": split,
        "shard": index,
        "num_shards": count,
        "duplicates": 0,
        "tweets": 2 * written["rows"],
        "tokens": tokens,
        "file": f"pairs/{name}",
        "rows": written["rows"],
        "bytes": written["bytes"],
        "sha256": written["sha256"],
    }
    return [info] + ([Tagged(STATS, {"rejected_pair_unplaced": len(left)})] if len(left) else [])
