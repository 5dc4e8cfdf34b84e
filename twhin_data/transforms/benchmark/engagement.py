"""Engagement-prediction benchmark transforms (paper 3.2): engagements + tweets + user embeddings.

Element flow (the counting unit is one engagement row; every step passes Arrow tables of the
in-transit schemas in schemas/benchmark.py, sliced by hash buckets of the next join's key)::

    engagement files -> ReadEngagementPairs (engagement_read: (user, tweet) pair tables) + errors
    pairs + tweet tables -> AttachTweets (dedup pairs; tweet language and normalized text)
    per language -> SampleAndSplitTweets (max tweets per language, tweet-level hashed split)
    pairs + user embeddings -> PickUserRecords (engagement_records: each user embedding in one record)
    per language -> WriteEngagementBenchmark (records, candidate lists, negatives, tweets)
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.errors import RecordError
from twhin_data.core.tags import ERRORS
from twhin_data.schemas import to_table
from twhin_data.schemas.benchmark import (
    BENCH_TWEETS,
    ENGAGED_TWEETS,
    ENGAGEMENT_CANDIDATES,
    ENGAGEMENT_NEGATIVES,
    ENGAGEMENT_PAIRS,
    ENGAGEMENT_PICKS,
    ENGAGEMENT_RECORDS,
    SAMPLED_TWEETS,
    TWEET_INPUT,
    USER_ENGAGEMENTS,
)
from twhin_data.text.normalize import normalize_v1
from twhin_data.transforms.benchmark import engagement_steps as core
from twhin_data.transforms.benchmark.common import (
    SPLITS,
    TokenizerHandle,
    append_row,
    column_lists,
    concat,
    first_index,
    numeric_id_order,
    row_of,
    table_of,
    table_slices,
    tweet_slices,
    write_table,
)
from twhin_data.transforms.benchmark.engagement_read import (
    STAGE,
    TWEET_SALT,
    USER_SALT,
    dead_letter,
)
from twhin_data.transforms.benchmark.read import canonical_lang
from twhin_data.transforms.combiners import IdUnion
from twhin_data.transforms.metrics import Counters


class _AttachTweetsFn(beam.DoFn):
    """One tweet bucket's pair tables + hydrated rows -> ``(lang, ENGAGED_TWEETS table)``, and dead letters.

    Pairs are deduplicated here (every pair of a tweet is in its bucket); pairs on tweets that
    are missing, have no language or no text are rejected with the count of their engagements.
    The loop reads column lists; one hydrated row per tweet is the fast path.
    """

    def __init__(self, placeholders: bool):
        self._placeholders = placeholders
        self._counters = Counters(STAGE)

    def process(self, item: tuple[int, dict]) -> Iterable:
        _bucket, grouped = item
        pairs = column_lists(concat(grouped["pairs"], ENGAGEMENT_PAIRS), ["user_id", "tweet_id"])
        users: dict[str, set] = defaultdict(set)
        for user, tweet_id in zip(pairs["user_id"], pairs["tweet_id"], strict=True):
            users[tweet_id].add(user)
        self._counters.inc("distinct_pairs", sum(len(u) for u in users.values()))
        self._tweets = concat(grouped["tweets"], TWEET_INPUT)
        self._columns = column_lists(self._tweets, TWEET_INPUT.names)
        self._first, self._repeated = first_index(self._columns["tweet_id"])
        missing = column_lists(concat(grouped["unavailable"]), ["tweet_id", "status"])
        self._missing = dict(zip(missing["tweet_id"], missing["status"], strict=True))
        out: dict[str, tuple[list, list, list]] = {}
        for tweet_id in sorted(users, key=lambda t: (len(t), t)):
            engagers = sorted(users[tweet_id], key=lambda u: (len(u), u))
            lang, result = self._attach(tweet_id, engagers)
            if lang is None:
                yield result
            else:
                append_row(out.setdefault(lang, ([], [], [])), tweet_id, result, engagers)
        for lang, columns in sorted(out.items()):
            yield lang, table_of(columns, ENGAGED_TWEETS)

    def _row(self, tweet_id: str) -> int | None:
        """The tweet's hydrated row, or a deterministic pick among duplicate rows (None: not hydrated)."""
        j = self._first.get(tweet_id)
        if j is not None and tweet_id in self._repeated:
            j = min(
                self._repeated[tweet_id],
                key=lambda k: json.dumps(row_of(self._tweets, k), sort_keys=True, default=str),
            )
        return j

    def _attach(self, tweet_id: str, users: list[str]) -> tuple[str | None, object]:
        """(lang, normalized text), or (None, a dead letter)."""
        reason = message = None
        j = self._row(tweet_id)
        col = self._columns
        if j is None and tweet_id in self._missing:
            reason, message = "tweet_unavailable", f"hydrate settled this tweet as {self._missing[tweet_id]}"
        elif j is None:
            reason, message = "tweet_not_hydrated", "tweet ID is neither in tweets/ nor in unavailable/"
        else:
            lang = canonical_lang(col["lang"][j])
            if lang is None or lang in core.NO_LANGUAGE:
                reason, message = "tweet_no_language", f"tweet language {col['lang'][j]!r} names no language"
            elif col["text"][j] is None:
                reason, message = "text_null", "the hydrated tweet has no text"
        if reason is None:
            try:
                text = normalize_v1(
                    col["text"][j], mentions=col["mentions"][j], urls=col["urls"][j], placeholders=self._placeholders
                )
            except RecordError as exc:
                reason, message = exc.error_type, exc.message
        if reason is not None:
            self._counters.inc(f"rejected_{reason}", len(users))
            value = {"tweet_id": tweet_id, "engagements": len(users)}
            return None, dead_letter(value, reason, f"{message} ({len(users)} engagements)")
        return lang, text


class AttachTweets(beam.PTransform):
    """(pair slices, tweet tables, unavailable tables) -> ``(lang, [{tweet_id, text, users}])``, and errors.

    hydrate's ``unavailable/`` (tweet_id, status) tells ``tweet_unavailable`` (settled as missing)
    from ``tweet_not_hydrated`` (never hydrated).

    Tweet tables are cut down to the engaged IDs (one side input), then sliced by the same hash
    buckets as the pairs: the join is one shuffle of slices, not of single rows.
    """

    def __init__(self, *, placeholders: bool = True, buckets: int = 64):
        super().__init__()
        self._placeholders = placeholders
        self._buckets = buckets

    def expand(self, pcolls):
        pairs, tweet_tables, unavailable_tables = pcolls
        wanted = (
            pairs
            | "EngagedIds" >> beam.Map(lambda kv: kv[1].column("tweet_id"))
            | "AllEngaged" >> beam.CombineGlobally(IdUnion()).without_defaults()
        )
        wanted = beam.pvalue.AsSingleton(wanted, default_value=IdUnion.EMPTY)
        tweets = tweet_tables | "EngagedTweets" >> beam.FlatMap(
            tweet_slices, wanted=wanted, buckets=self._buckets, salt=TWEET_SALT, schema=TWEET_INPUT
        )
        missing = unavailable_tables | "UnavailableIds" >> beam.FlatMap(
            tweet_slices, wanted=wanted, buckets=self._buckets, salt=TWEET_SALT
        )
        return (
            {"pairs": pairs, "tweets": tweets, "unavailable": missing}
            | "JoinTweets" >> beam.CoGroupByKey()
            | "AttachTweets"
            >> beam.ParDo(_AttachTweetsFn(self._placeholders)).with_outputs(ERRORS, main="main")
        )


class _SampleSplitFn(beam.DoFn):
    """One language's tweets -> ``tweets`` (lang, SAMPLED_TWEETS) and user-bucket USER_ENGAGEMENTS slices."""

    def __init__(self, max_tweets: int, fractions: tuple[float, float, float], seed: int, buckets: int):
        self._max_tweets = max_tweets
        self._fractions = fractions
        self._seed = seed
        self._buckets = buckets
        self._counters = Counters(STAGE)

    def process(self, item: tuple[str, Iterable[pa.Table]]) -> Iterable:
        lang, tables = item
        table = concat(tables, ENGAGED_TWEETS)  # a tweet is in one bucket: its ID is on one row
        position = {t: i for i, t in enumerate(table.column("tweet_id").to_pylist())}
        ids = sorted(position, key=lambda t: (len(t), t))
        selected, dropped = core.sample_tweets(lang, ids, self._max_tweets, self._seed)
        engaged = pc.list_value_length(table.column("users")).to_numpy()
        self._counters.inc("rejected_tweet_not_sampled", int(sum(engaged[position[t]] for t in dropped)))
        splits = core.split_tweets(selected, self._fractions, self._seed)
        chosen = table.take(pa.array([position[t] for t in selected], pa.int64()))
        split = pa.array([splits[t] for t in selected], pa.string())
        columns = {"tweet_id": chosen.column("tweet_id"), "text": chosen.column("text"), "split": split}
        yield beam.pvalue.TaggedOutput("tweets", (lang, pa.table(columns, schema=SAMPLED_TWEETS)))
        users = chosen.column("users").combine_chunks()
        parents = pc.list_parent_indices(users)
        engagements = {
            "user_id": pc.list_flatten(users),
            "tweet_id": chosen.column("tweet_id").take(parents),
            "lang": pa.repeat(lang, len(parents)),
            "split": split.take(parents),
        }
        engagements = pa.table(engagements, schema=USER_ENGAGEMENTS)
        yield from table_slices(engagements, "user_id", self._buckets, USER_SALT)


class SampleAndSplitTweets(beam.PTransform):
    """``(lang, ENGAGED_TWEETS)`` -> ``tweets`` (lang, SAMPLED_TWEETS) and ``main`` (user bucket, USER_ENGAGEMENTS)."""

    def __init__(
        self, *, max_tweets: int, fractions: tuple[float, float, float], seed: int, buckets: int = 64
    ):
        super().__init__()
        self._args = (max_tweets, fractions, seed, buckets)

    def expand(self, tweets):
        return (
            tweets
            | "TweetsPerLang" >> beam.GroupByKey()
            | "SampleSplit" >> beam.ParDo(_SampleSplitFn(*self._args)).with_outputs("tweets", main="main")
        )


class _WriteLanguageFn(beam.DoFn):
    """One language's picked records and sampled tweets -> the benchmark files of that language."""

    def __init__(self, output: str, negatives: int, seed: int, tokenizer: str | None):
        self._output = output
        self._negatives = negatives
        self._seed = seed
        self._tokenizer_path = tokenizer
        self._counters = Counters(STAGE)

    def setup(self) -> None:
        self._tokenizer = TokenizerHandle(self._tokenizer_path)

    def process(self, item: tuple[str, dict]) -> Iterable[dict]:
        lang, grouped = item
        tweets = concat(grouped["tweets"], SAMPLED_TWEETS)
        picks = concat(grouped["records"], ENGAGEMENT_PICKS)
        rows = picks.select(["tweet_id", "split", "user_key", "exclude"]).to_pylist()
        for i, row in enumerate(rows):
            row["pick"] = i
        records = core.number_records(rows)
        vectors = picks.column("user_emb")
        for split in SPLITS:
            part = [r for r in records if r["split"] == split]
            self._counters.inc(f"records_{split}", len(part))
            columns = [
                pa.repeat(lang, len(part)),
                pa.repeat(split, len(part)),
                pa.array([r["user_row"] for r in part], pa.int64()),
                pa.array([r["tweet_id"] for r in part], pa.string()),
                vectors.take(pa.array([r["pick"] for r in part], pa.int64())).cast(pa.list_(pa.float32())),
            ]
            yield write_table(self._output, lang, split, pa.Table.from_arrays(columns, schema=ENGAGEMENT_RECORDS))
        ids, tweet_splits = tweets.column("tweet_id").to_pylist(), tweets.column("split").to_pylist()
        pools = {s: [t for t, ts in zip(ids, tweet_splits, strict=True) if ts == s] for s in SPLITS}
        candidates, short = core.build_candidates(records, pools, self._negatives, lang=lang, seed=self._seed)
        self._counters.inc("short_candidate_lists", short)
        for split in ("validation", "test"):
            part = [c for c in candidates if c["split"] == split]
            yield write_table(
                self._output, lang, f"{split}_candidates", to_table(part, ENGAGEMENT_CANDIDATES)
            )
        train = [r for r in records if r["split"] == "train"]
        negatives = core.negative_distribution(lang, train)
        yield write_table(self._output, lang, "train_negatives", to_table(negatives, ENGAGEMENT_NEGATIVES))
        tweets = tweets.take(pa.array(numeric_id_order(tweets.column("tweet_id")), pa.int64()))
        ids = self._tokenizer.encode(tweets.column("text").to_pylist())
        columns = [
            tweets.column("tweet_id"),
            pa.repeat(lang, tweets.num_rows),
            tweets.column("split"),
            tweets.column("text"),
            pa.array(ids, pa.list_(pa.int32())) if ids is not None else pa.nulls(tweets.num_rows, pa.list_(pa.int32())),
        ]
        yield write_table(self._output, lang, "tweets", pa.Table.from_arrays(columns, schema=BENCH_TWEETS))


class WriteEngagementBenchmark(beam.PTransform):
    """(``(lang, ENGAGEMENT_PICKS)``, ``(lang, SAMPLED_TWEETS)``) -> files under ``<output>/<lang>/``; emits file infos.

    One CoGroupByKey on language gathers a language's records and tweets (bounded by
    --max_tweets_per_lang and its engagements), so each file is written once, sorted.
    """

    def __init__(self, output: str, *, negatives: int, seed: int, tokenizer: str | None = None):
        super().__init__()
        self._fn = _WriteLanguageFn(output, negatives, seed, tokenizer)

    def expand(self, pcolls):
        records, tweets = pcolls
        return (
            {"records": records, "tweets": tweets}
            | "GroupByLang" >> beam.CoGroupByKey()
            | "WriteLanguage" >> beam.ParDo(self._fn)
        )
