"""Pair shards: joining pairs with both tweets' tokens, and the deterministic shard writer (the TFDS
pattern) for pair rows.

1. A size side input (rows and tokens per split) fixes the shard count of each split
   (`plan_shards`): fixed by --num_shards, or from --target_shard_mb, never above the row count.
2. Each pair goes to shard ``key % n`` of its split, `key` being a salted stable hash of both
   tweet IDs: membership depends on nothing but the data and the seed.
3. One GroupByKey gathers a shard; inside it rows are sorted by (key, tweet IDs) and the file is
   written through a temporary name and a rename (local or gs://).
4. A shard index that got no rows is never written: the non-empty shards of a split are
   renumbered 0..m-1 "-of-m" from a side input of the non-empty keys, so there are no holes.

MLM rows take the same plan, membership and numbering, but move between pool processes as spill
files (transforms/shard/steps.py, wired by transforms/shard/transform.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from twhin_data.core import files
from twhin_data.core.errors import error_record
from twhin_data.core.hashing import stable_hash64
from twhin_data.core.ids import ID_PATTERN
from twhin_data.core.tags import ERRORS
from twhin_data.schemas import to_table
from twhin_data.schemas.shards import PAIR_SHARD
from twhin_data.transforms.combiners import IdUnion, SetUnion, rows_with_ids
from twhin_data.transforms.shard import batches
from twhin_data.transforms.shard.mlm_writer import MLM_ROW_GROUP
from twhin_data.transforms.shard.steps import renumber
from twhin_data.transforms.shard.tokenize import PAIR_COLUMNS, STAGE

#: Side output of the pair writer and the per-tweet cap: stats dicts of pairs left out.
UNPLACED = "unplaced"


def _assign_pair(pair: dict, plan: dict[str, int], salt: str) -> tuple[tuple[str, int], dict]:
    key = stable_hash64(f"{pair['tweet_id_a']}:{pair['tweet_id_b']}", salt)
    return (pair["split"], key % plan[pair["split"]]), dict(pair, key=key)


class _WritePairShardFn(beam.DoFn):
    """Writes one pair shard file: ``{path}/{split}-{i:05d}-of-{n:05d}.parquet``; yields its info dict."""

    def __init__(self, *, path: str, batch_size: int = 0):
        self._path, self._batch_size = path, batch_size
        self._files = Metrics.counter("shard", "pairs_files")

    def process(self, item: tuple[tuple[str, int], Iterable[dict]], nonempty: list) -> Iterator[dict]:
        key, elements = item
        index, count = renumber(key, nonempty)
        rows = sorted(elements, key=lambda r: (r["key"], r["tweet_id_a"], r["tweet_id_b"]))
        rows, left = batches.pack(rows, self._batch_size)
        if left:
            yield beam.pvalue.TaggedOutput(UNPLACED, {"rejected_pair_unplaced": len(left)})
        table = to_table(rows, PAIR_SHARD)
        tokens = sum(
            int(pc.sum(pc.list_value_length(table.column(c))).as_py() or 0)
            for c in ("input_ids_a", "input_ids_b")
        )
        name = f"{key[0]}-{index:05d}-of-{count:05d}.parquet"
        written = files.write_parquet_atomic(
            files.join(self._path, name), table, row_group_size=MLM_ROW_GROUP
        )
        self._files.inc()
        yield {
            "dataset": "pairs",
            "split": key[0],
            "shard": index,
            "num_shards": count,
            "duplicates": 0,
            "tweets": 2 * table.num_rows,
            "tokens": tokens,
            "file": f"pairs/{name}",
            "rows": written["rows"],
            "bytes": written["bytes"],
            "sha256": written["sha256"],
        }


class WritePairShards(beam.PTransform):
    """Writes pair dicts as split shards.

    Args:
      path: the dataset folder (``DIR/pairs``).
      plan: a singleton PCollection ``{split: shard count}`` (see `plan_shards`).
      salt: salt of the pair-key hash.
      batch_size: B, the pairs of a contrastive batch (transforms/shard/batches.py); 0: hash order.
    Output: (one info dict per file: file, split, rows, tweets, tokens, bytes, sha256; stats dicts
    counting the pairs no batch could take).
    """

    def __init__(self, *, path: str, plan, salt: str = "", batch_size: int = 0):
        super().__init__()
        self._path = path
        self._plan = plan
        self._salt = salt
        self._batch_size = batch_size

    def expand(self, pcoll):
        keyed = pcoll | "AssignShards" >> beam.Map(
            _assign_pair, plan=beam.pvalue.AsSingleton(self._plan), salt=self._salt
        )
        # The one shuffle of this writer: gathers each shard on one worker to sort and write it.
        grouped = keyed | "GroupByShard" >> beam.GroupByKey()
        nonempty = keyed | "ShardKeys" >> beam.Map(lambda kv: [tuple(kv[0])]) | "NonEmpty" >> beam.CombineGlobally(SetUnion(sort=True))
        fn = _WritePairShardFn(path=self._path, batch_size=self._batch_size)
        written = grouped | "WriteShard" >> beam.ParDo(fn, nonempty=beam.pvalue.AsSingleton(nonempty)).with_outputs(
            UNPLACED, main="infos"
        )
        return written.infos, written[UNPLACED]


def _ends(pair: dict) -> Iterator[tuple[str, tuple[float, str, tuple[str, str]]]]:
    key = (pair["tweet_id_a"], pair["tweet_id_b"])
    score = float(pair.get("score") or 0.0)
    yield pair["tweet_id_a"], (score, pair["tweet_id_b"], key)
    yield pair["tweet_id_b"], (score, pair["tweet_id_a"], key)


def _keep_uncapped(item: tuple[tuple[str, str], dict]) -> Iterator:
    _, grouped = item
    over = bool(list(grouped["over"]))
    for pair in grouped["pairs"]:
        if over:
            yield beam.pvalue.TaggedOutput(UNPLACED, {"rejected_pair_over_tweet_cap": 1})
        else:
            yield pair


class CapPairsPerTweet(beam.PTransform):
    """Pair dicts -> (the pairs within every tweet's `cap` best, stats dicts of the others).

    Two shuffles of pair keys: one per tweet (rank its pairs, `batches.cap_ends`), one per pair
    (drop it when either tweet ranked it beyond the cap). cap 0 passes every pair."""

    def __init__(self, cap: int):
        super().__init__()
        self._cap = cap

    def expand(self, pairs):
        over = (
            pairs
            | "PairEnds" >> beam.FlatMap(_ends)
            | "GroupByTweet" >> beam.GroupByKey()
            | "OverCap" >> beam.FlatMap(lambda kv: [(key, 1) for key in batches.cap_ends(kv[1], self._cap)])
        )
        keyed = pairs | "KeyByPair" >> beam.Map(lambda p: ((p["tweet_id_a"], p["tweet_id_b"]), p))
        kept = (
            {"pairs": keyed, "over": over}
            | "JoinCap" >> beam.CoGroupByKey()
            | "KeepUncapped" >> beam.FlatMap(_keep_uncapped).with_outputs(UNPLACED, main="pairs")
        )
        return kept.pairs, kept[UNPLACED]


def pair_tweet_ids(table: pa.Table) -> pa.Array:
    """The distinct tweet IDs a pairs table names that can be corpus IDs (1-19 decimal digits: the
    corpus rejects every other ID, so a pair naming one fails its join either way)."""
    ids = pc.unique(pa.concat_arrays([table.column(c).combine_chunks().cast(pa.string()) for c in PAIR_COLUMNS[:2]]))
    return ids.filter(pc.fill_null(pc.match_substring_regex(ids, ID_PATTERN), False))


def _token_rows(table: pa.Table, wanted: pa.Array) -> Iterator[tuple[str, tuple]]:
    """(tweet_id, (input_ids, lang, split)) for the tweets of `table` that some pair uses."""
    for row in rows_with_ids(table, wanted).to_pylist():
        yield row["tweet_id"], (row["input_ids"], row["lang"], row["split"], row.get("author_id"))


def _pair_rows(table: pa.Table) -> Iterator[tuple[str, dict]]:
    for row in table.to_pylist():
        yield row["tweet_id_a"], row


def _attach(item: tuple[str, dict], side: str) -> Iterator:
    """Joins one tweet's tokens to its pairs; pairs whose tweet is not in the corpus are dead letters."""
    tweet_id, grouped = item
    tokens, pairs = list(grouped["tokens"]), list(grouped["pairs"])
    for pair in pairs:
        if not tokens:
            message = f"tweet_{side} {tweet_id} is not in the tokenized corpus"
            yield beam.pvalue.TaggedOutput(
                ERRORS,
                error_record(
                    STAGE,
                    {k: pair[k] for k in PAIR_COLUMNS},
                    "pair_tweet_missing",
                    message,
                    pair.get("source"),
                ),
            )
            continue
        ids, lang, split, author = tokens[0]
        out = dict(pair, **{f"input_ids_{side}": ids, f"lang_{side}": lang, f"author_{side}": author})
        validation = split.endswith("validation") or pair.get("split") == "validation"
        out["split"] = "validation" if validation else "train"
        yield (out["tweet_id_b"], out) if side == "a" else out


class JoinPairs(beam.PTransform):
    """Pairs tables + tokenized tables -> pair dicts carrying both tweets' ids, langs and a split.

    Only tweets that some pair names are shuffled: the pair tweet IDs are one side input (`IdUnion`,
    a sorted uint64 array, 8 bytes per ID) that filters the tokens first. A
    pair is in validation when either tweet is, so no train pair shares a tweet with validation.
    Outputs: (pairs, errors).
    """

    def expand(self, inputs):
        pair_tables, token_tables = inputs
        wanted = (
            pair_tables
            | "PairIds" >> beam.Map(pair_tweet_ids)
            | "AllPairIds" >> beam.CombineGlobally(IdUnion()).without_defaults()
        )
        tokens = token_tables | "PairTokens" >> beam.FlatMap(
            _token_rows, wanted=beam.pvalue.AsSingleton(wanted, default_value=IdUnion.EMPTY)
        )
        by_a = pair_tables | "KeyByA" >> beam.FlatMap(_pair_rows)
        with_a = (
            {"tokens": tokens, "pairs": by_a}
            | "JoinA" >> beam.CoGroupByKey()
            | "AttachA" >> beam.FlatMap(_attach, side="a").with_outputs(ERRORS, main="pairs")
        )
        both = (
            {"tokens": tokens, "pairs": with_a.pairs}
            | "JoinB" >> beam.CoGroupByKey()
            | "AttachB" >> beam.FlatMap(_attach, side="b").with_outputs(ERRORS, main="pairs")
        )
        errors = (with_a[ERRORS], both[ERRORS]) | "PairErrors" >> beam.Flatten()
        return both.pairs, errors
