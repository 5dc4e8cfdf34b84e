"""The pure rewriters of comply: one table (or TSV) in, the same without the removed tweets out.

Each kind says which columns hold tweet IDs (`ID_COLUMNS`, read alone to decide whether a file
is affected) and how a hit is removed:

- rows are dropped when they hold a removed tweet: unavailable, corpus (its ``tweet_id`` or
  ``source_tweet_id``), duplicates (the removed copy or the kept tweet), engagements, graph/tweets, pairs, pair shards, dead letters that quote one;
- tweets/: a removed tweet's row, and a retweet of it (its text is the removed tweet's), are
  dropped; in the other rows a removed ID is scrubbed from ``referenced_tweets``,
  ``edit_history_tweet_ids`` and ``conversation_id`` (set to null);
- MLM shards: a row that packed a removed tweet keeps its other tweets, re-packed back to back
  (``input_ids`` without the removed tweet's span, ``tweet_offsets`` recomputed); a row left
  empty is dropped. Rows keep their order, so rows without a removed tweet stay as they were;
- graph/edges drop the edges of removed tweet indices; graph/users lower their ``degree`` by the
  edges dropped (indices stay: the other files keep their bytes);
- PyTorch-BigGraph TSVs drop the lines of a removed ``t<ID>``.

`Context` carries what a rewrite needs besides its file: the removed IDs (sorted uint64), the
removed graph tweet indices and the degree drop per user index.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.transforms.comply.removals import member, mentions, removed_in, removed_in_lists

#: kind -> columns holding tweet IDs (scalar strings, lists of strings, or indices).
ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "tweets": ("tweet_id", "conversation_id", "referenced_tweets", "edit_history_tweet_ids"),
    "unavailable": ("tweet_id",),
    "corpus": ("tweet_id", "source_tweet_id"),
    "duplicates": ("tweet_id", "kept_tweet_id"),
    "engagements": ("tweet_id",),
    "graph_tweets": ("tweet_id",),
    "graph_edges": ("lhs", "rhs"),
    "graph_users": ("index", "degree"),
    "pairs": ("tweet_id_a", "tweet_id_b"),
    "mlm": ("tweet_ids",),
    "pair_shards": ("tweet_id_a", "tweet_id_b"),
    "errors": ("input",),
}
DROP_ROW_KINDS = ("unavailable", "corpus", "duplicates", "engagements", "graph_tweets", "pairs", "pair_shards")


@dataclass
class Context:
    removed: np.ndarray
    graph_removed: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    degree_drop: dict[int, int] = field(default_factory=dict)


def _present(table: pa.Table, names: tuple[str, ...]) -> list[str]:
    return [n for n in names if n in table.column_names]


def hit_rows(kind: str, table: pa.Table, ctx: Context) -> np.ndarray:
    """Rows of `table` (at least its `ID_COLUMNS`) that hold a removed tweet (or must change)."""
    mask = np.zeros(table.num_rows, dtype=bool)
    if kind == "graph_edges":
        return member(table.column("rhs").to_numpy(zero_copy_only=False).astype(np.int64), ctx.graph_removed)
    if kind == "graph_users":
        index = table.column("index").to_numpy(zero_copy_only=False)
        drops = np.array([ctx.degree_drop.get(int(i), 0) for i in index], dtype=np.int64)
        return drops > 0
    if kind == "errors":
        return mentions(table.column("input").to_pylist(), ctx.removed)
    for name in _present(table, ID_COLUMNS[kind]):
        column = table.column(name)
        if pa.types.is_list(column.type) and pa.types.is_struct(column.type.value_type):
            ids = pc.list_flatten(column.combine_chunks()).field("id") if len(column) else pa.array([], pa.string())
            hit = removed_in(ids, ctx.removed) if len(ids) else np.zeros(0, bool)
            parents = pc.list_parent_indices(column.combine_chunks()).to_numpy(zero_copy_only=False)
            mask[parents[hit]] = True
        elif pa.types.is_list(column.type):
            mask |= removed_in_lists(column, ctx.removed)[1]
        else:
            mask |= removed_in(column, ctx.removed)
    return mask


def rewrite_table(kind: str, table: pa.Table, ctx: Context) -> tuple[pa.Table, dict]:
    """`table` without the removed tweets, and what changed (rows before/after, per kind extras)."""
    info: dict = {"rows_before": table.num_rows}
    if kind in DROP_ROW_KINDS or kind in ("errors", "graph_edges"):
        hit = hit_rows(kind, table, ctx)
        out = table.filter(pa.array(~hit))
        if kind == "corpus":
            info["langs_removed"] = _counts(table.filter(pa.array(hit)).column("lang").to_pylist())
    elif kind == "tweets":
        out = _scrub_tweets(table, ctx.removed)
    elif kind == "mlm":
        out, info["tweets_removed"], info["tokens_removed"], info["langs_removed"] = repack_mlm(table, ctx.removed)
    elif kind == "graph_users":
        index = table.column("index").to_numpy(zero_copy_only=False)
        drops = np.array([ctx.degree_drop.get(int(i), 0) for i in index], dtype=np.int64)
        degree = table.column("degree").to_numpy(zero_copy_only=False) - drops
        out = table.set_column(table.schema.get_field_index("degree"), "degree", pa.array(degree, pa.int64()))
    else:
        raise ValueError(f"no rewriter for {kind!r}")
    info["rows_after"] = out.num_rows
    if kind == "mlm":
        info["tweets"] = int(pc.sum(pc.list_value_length(out.column("tweet_ids"))).as_py() or 0)
        info["tokens"] = int(pc.sum(out.column("num_tokens")).as_py() or 0)
    elif kind == "pair_shards":
        info["tweets"] = 2 * out.num_rows
        lengths = [pc.sum(pc.list_value_length(out.column(c))).as_py() or 0 for c in ("input_ids_a", "input_ids_b")]
        info["tokens"] = int(sum(lengths))
    return out, info


def _counts(values: list) -> dict[str, int]:
    return dict(sorted(Counter(map(str, values)).items()))


def _scrub_tweets(table: pa.Table, removed: np.ndarray) -> pa.Table:
    """Drops removed tweets and retweets of them; scrubs removed IDs out of the other rows' references."""
    rows = table.to_pylist()
    # The removed IDs this table mentions (a handful), found with one vectorized membership test.
    mentioned = pa.array(
        sorted(
            {row[c] for row in rows for c in ("tweet_id", "conversation_id") if row.get(c)}
            | {r.get("id") for row in rows for r in (row.get("referenced_tweets") or []) if r.get("id")}
            | {i for row in rows for i in (row.get("edit_history_tweet_ids") or []) if i}
        ),
        pa.string(),
    )
    hits = set(mentioned.filter(pa.array(removed_in(mentioned, removed))).to_pylist()) if len(mentioned) else set()

    def gone(tweet_id) -> bool:
        return tweet_id in hits

    kept = []
    for row in rows:
        refs = row.get("referenced_tweets") or []
        if gone(row["tweet_id"]) or any(r.get("type") == "retweeted" and gone(r.get("id")) for r in refs):
            continue
        if "referenced_tweets" in row and refs:
            row["referenced_tweets"] = [r for r in refs if not gone(r.get("id"))]
        if row.get("edit_history_tweet_ids"):
            row["edit_history_tweet_ids"] = [i for i in row["edit_history_tweet_ids"] if not gone(i)]
        if gone(row.get("conversation_id")):
            row["conversation_id"] = None
        kept.append(row)
    return pa.Table.from_pylist(kept, schema=table.schema)


def repack_mlm(table: pa.Table, removed: np.ndarray) -> tuple[pa.Table, int, int, dict[str, list[int]]]:
    """MLM rows without the removed tweets' spans (vectorized); returns the table, the tweets and
    tokens removed, and {lang: [tweets, tokens]} removed."""
    ids = table.column("input_ids").combine_chunks()
    offsets_col = table.column("tweet_offsets").combine_chunks()
    tweet_ids = table.column("tweet_ids").combine_chunks()
    langs = pc.list_flatten(table.column("langs").combine_chunks()).to_numpy(zero_copy_only=False)
    counts = pc.list_value_length(offsets_col)
    if not pc.all(pc.equal(counts, pc.list_value_length(tweet_ids))).as_py() or pc.min(pc.list_value_length(ids)).as_py() == 0:
        raise ValueError("an MLM row's tweet_offsets and tweet_ids differ in length: not a twhin-data shard")
    row_start = (ids.offsets.to_numpy()[:-1] - ids.offsets.to_numpy()[0]).astype(np.int64)
    row_len = np.diff(ids.offsets.to_numpy()).astype(np.int64)
    tweet_row = pc.list_parent_indices(offsets_col).to_numpy(zero_copy_only=False).astype(np.int64)
    local = pc.list_flatten(offsets_col).to_numpy(zero_copy_only=False).astype(np.int64)
    start = row_start[tweet_row] + local
    end = np.append(start[1:], 0)
    last = np.append(tweet_row[1:] != tweet_row[:-1], True)  # the last tweet of its row ends the row
    end[last] = (row_start + row_len)[tweet_row[last]]
    length = end - start
    all_offsets = ids.offsets.to_numpy()
    values = ids.values.to_numpy(zero_copy_only=False)[all_offsets[0] : all_offsets[-1]]
    if (length <= 0).any() or int(length.sum()) != len(values):
        raise ValueError("an MLM row's tweet_offsets do not cover its input_ids: not a twhin-data shard")
    hit, _ = removed_in_lists(tweet_ids, removed)
    keep_tweet = ~hit
    # The tweets' spans are back to back, row after row: the tokens kept are the values, in order.
    new_values = values[np.repeat(keep_tweet, length)]
    kept_len = np.where(keep_tweet, length, 0)
    n_rows = table.num_rows
    row_tokens = np.bincount(tweet_row, weights=kept_len, minlength=n_rows).astype(np.int64)
    row_tweets = np.bincount(tweet_row, weights=keep_tweet.astype(np.int64), minlength=n_rows).astype(np.int64)
    csum = np.cumsum(kept_len) - kept_len
    first = np.zeros(n_rows, np.int64)
    first_idx = np.flatnonzero(np.append(True, tweet_row[1:] != tweet_row[:-1]))
    first[tweet_row[first_idx]] = csum[first_idx]
    new_local = (csum - first[tweet_row])[keep_tweet].astype(np.int32)
    keep_row = row_tweets > 0
    token_offsets = np.concatenate([[0], np.cumsum(row_tokens[keep_row])]).astype(np.int32)
    tweet_offsets = np.concatenate([[0], np.cumsum(row_tweets[keep_row])]).astype(np.int32)
    kept_ids = pc.list_flatten(tweet_ids).filter(pa.array(keep_tweet))
    kept_langs = pa.array(langs[keep_tweet], pa.string())
    out = pa.table(
        {
            "input_ids": pa.ListArray.from_arrays(pa.array(token_offsets), pa.array(new_values, pa.int32())),
            "tweet_offsets": pa.ListArray.from_arrays(pa.array(tweet_offsets), pa.array(new_local, pa.int32())),
            "tweet_ids": pa.ListArray.from_arrays(pa.array(tweet_offsets), kept_ids),
            "langs": pa.ListArray.from_arrays(pa.array(tweet_offsets), kept_langs),
            "num_tokens": pa.array(row_tokens[keep_row], pa.int32()),
        },
        schema=table.schema,
    )
    by_lang: dict[str, list[int]] = {}
    for lang, n in zip(langs[hit].tolist(), length[hit].tolist(), strict=True):
        entry = by_lang.setdefault(str(lang), [0, 0])
        entry[0] += 1
        entry[1] += int(n)
    return out, int(hit.sum()), int(length[hit].sum()), dict(sorted(by_lang.items()))


def rewrite_tsv(data: bytes, removed: np.ndarray) -> tuple[bytes, dict]:
    """PyTorch-BigGraph edges (``u<user>\\t<relation>\\tt<tweet>``) without removed tweets' lines."""
    lines = data.split(b"\n")
    trailing = lines and lines[-1] == b""
    body = lines[:-1] if trailing else lines
    tweets = []
    for line in body:
        parts = line.split(b"\t")
        token = parts[2][1:] if len(parts) >= 3 and parts[2][:1] == b"t" else b""
        tweets.append(int(token) if token.isdigit() and len(token) <= 19 else 0)
    hit = member(np.array(tweets, np.uint64), removed) if body else np.zeros(0, bool)
    kept = [line for line, h in zip(body, hit, strict=True) if not h]
    out = b"\n".join(kept) + (b"\n" if kept and trailing else b"")
    return out, {"rows_before": len(body), "rows_after": len(kept)}


def tsv_hit(data: bytes, removed: np.ndarray) -> bool:
    info = rewrite_tsv(data, removed)[1]
    return info["rows_after"] != info["rows_before"]
