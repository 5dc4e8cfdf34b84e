"""Engagement-prediction benchmark transforms (paper 3.2): engagements + tweets + user embeddings.

Element flow (the counting unit is one engagement row)::

    engagement files -> ReadEngagementPairs (benchmark_engagement_io: (user, tweet) pair slices) + errors
    pairs + tweet tables -> AttachTweets (dedup pairs; tweet language and normalized text)
    per language -> SampleAndSplitTweets (max tweets per language, tweet-level hashed split)
    pairs + user embeddings -> PickUserRecords (each user embedding used in one record)
    per language -> WriteEngagementBenchmark (records, candidate lists, negatives, tweets)
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa

from twhin_data.core.errors import RecordError
from twhin_data.core.tags import ERRORS
from twhin_data.schemas import to_table
from twhin_data.schemas.benchmark import (
    BENCH_TWEETS,
    ENGAGEMENT_CANDIDATES,
    ENGAGEMENT_NEGATIVES,
    ENGAGEMENT_RECORDS,
)
from twhin_data.text.normalize import normalize_v1
from twhin_data.transforms.benchmark import engagement_steps as core
from twhin_data.transforms.benchmark.common import (
    SPLITS,
    TokenizerHandle,
    bucket_slices,
    numeric_id_order,
    rows_with_ids,
    write_table,
)
from twhin_data.transforms.benchmark.engagement_read import (
    STAGE,
    TWEET_SALT,
    USER_SALT,
    dead_letter,
    embedding_slices,
)
from twhin_data.transforms.benchmark.read import canonical_lang
from twhin_data.transforms.combiners import IdUnion, SumDicts
from twhin_data.transforms.metrics import Counters

TWEET_COLUMNS = ["tweet_id", "text", "lang", "mentions", "urls"]


def _first(rows: list) -> object:
    """The one row, or a deterministic pick among duplicates (same input, same pick on every runner)."""
    return rows[0] if len(rows) == 1 else min(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


class _AttachTweetsFn(beam.DoFn):
    """One tweet bucket's (user, tweet) pairs + hydrated rows -> ``(lang, [tweets with their users])``.

    Pairs are deduplicated here (every pair of a tweet is in its bucket); pairs on tweets that
    are missing, have no language or no text are rejected with the count of their engagements.
    """

    def __init__(self, placeholders: bool):
        self._placeholders = placeholders
        self._counters = Counters(STAGE)

    def process(self, item: tuple[int, dict]) -> Iterable:
        _bucket, grouped = item
        users: dict[str, set] = defaultdict(set)
        for batch in grouped["pairs"]:
            for user, tweet_id in batch:
                users[tweet_id].add(user)
        self._counters.inc("distinct_pairs", sum(len(u) for u in users.values()))
        tweets: dict[str, list] = defaultdict(list)
        for batch in grouped["tweets"]:
            for row in batch:
                tweets[row["tweet_id"]].append(row)
        self._missing = {row["tweet_id"]: row["status"] for batch in grouped["unavailable"] for row in batch}
        out: dict[str, list] = defaultdict(list)
        for tweet_id in sorted(users, key=lambda t: (len(t), t)):
            engagers = sorted(users[tweet_id], key=lambda u: (len(u), u))
            lang, result = self._attach(tweet_id, engagers, tweets.get(tweet_id, []))
            if lang is None:
                yield result
            else:
                out[lang].append(result)
        yield from sorted(out.items())

    def _attach(self, tweet_id: str, users: list[str], rows: list[dict]) -> tuple[str | None, object]:
        reason = message = None
        if not rows and tweet_id in self._missing:
            reason, message = "tweet_unavailable", f"hydrate settled this tweet as {self._missing[tweet_id]}"
        elif not rows:
            reason, message = "tweet_not_hydrated", "tweet ID is neither in tweets/ nor in unavailable/"
        else:
            tweet = _first(rows)
            lang = canonical_lang(tweet.get("lang"))
            if lang is None or lang in core.NO_LANGUAGE:
                reason, message = (
                    "tweet_no_language",
                    f"tweet language {tweet.get('lang')!r} names no language",
                )
            elif tweet.get("text") is None:
                reason, message = "text_null", "the hydrated tweet has no text"
        if reason is None:
            try:
                text = normalize_v1(
                    tweet["text"],
                    mentions=tweet.get("mentions"),
                    urls=tweet.get("urls"),
                    placeholders=self._placeholders,
                )
            except RecordError as exc:
                reason, message = exc.error_type, exc.message
        if reason is not None:
            self._counters.inc(f"rejected_{reason}", len(users))
            value = {"tweet_id": tweet_id, "engagements": len(users)}
            return None, dead_letter(value, reason, f"{message} ({len(users)} engagements)")
        return lang, {"tweet_id": tweet_id, "text": text, "users": users}


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
            | "EngagedIds" >> beam.Map(lambda kv: [t for _u, t in kv[1]])
            | "AllEngaged" >> beam.CombineGlobally(IdUnion()).without_defaults()
        )
        wanted = beam.pvalue.AsSingleton(wanted, default_value=IdUnion.EMPTY)
        tweets = tweet_tables | "EngagedTweets" >> beam.FlatMap(
            _tweet_slices, wanted=wanted, buckets=self._buckets
        )
        missing = unavailable_tables | "UnavailableIds" >> beam.FlatMap(
            _tweet_slices, wanted=wanted, buckets=self._buckets
        )
        return (
            {"pairs": pairs, "tweets": tweets, "unavailable": missing}
            | "JoinTweets" >> beam.CoGroupByKey()
            | "AttachTweets"
            >> beam.ParDo(_AttachTweetsFn(self._placeholders)).with_outputs(ERRORS, main="main")
        )


def _tweet_slices(table: pa.Table, wanted: pa.Array, buckets: int) -> list[tuple[int, list]]:
    rows = rows_with_ids(table, wanted).to_pylist()
    return bucket_slices([r["tweet_id"] for r in rows], rows, buckets, TWEET_SALT)


class _SampleSplitFn(beam.DoFn):
    """One language's tweets -> ``tweets`` (lang, [tweets + split]) and user-bucket slices of engagements."""

    def __init__(self, max_tweets: int, fractions: tuple[float, float, float], seed: int, buckets: int):
        self._max_tweets = max_tweets
        self._fractions = fractions
        self._seed = seed
        self._buckets = buckets
        self._counters = Counters(STAGE)

    def process(self, item: tuple[str, Iterable[list[dict]]]) -> Iterable:
        lang, batches = item
        tweets = {t["tweet_id"]: t for batch in batches for t in batch}
        ids = sorted(tweets, key=lambda t: (len(t), t))
        selected, dropped = core.sample_tweets(lang, ids, self._max_tweets, self._seed)
        self._counters.inc("rejected_tweet_not_sampled", sum(len(tweets[t]["users"]) for t in dropped))
        splits = core.split_tweets(selected, self._fractions, self._seed)
        yield beam.pvalue.TaggedOutput(
            "tweets", (lang, [{**tweets[t], "split": splits[t]} for t in selected])
        )
        engagements = [
            (user, {"tweet_id": t, "lang": lang, "split": splits[t]})
            for t in selected
            for user in tweets[t]["users"]
        ]
        yield from bucket_slices([u for u, _e in engagements], engagements, self._buckets, USER_SALT)


class SampleAndSplitTweets(beam.PTransform):
    """``(lang, [tweets])`` -> ``tweets`` (lang, [tweets + split]) and ``main`` (user bucket, [(user, engagement)])."""

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


class _PickRecordsFn(beam.DoFn):
    """One user bucket's engagements + embeddings -> ``(lang, [records])``: at most `per_user` per user."""

    def __init__(self, per_user: int, seed: int):
        self._per_user = per_user
        self._seed = seed
        self._counters = Counters(STAGE)

    def process(self, item: tuple[int, dict], dim: int) -> Iterable:
        _bucket, grouped = item
        engagements: dict[str, list] = defaultdict(list)
        embeddings: dict[str, list] = defaultdict(list)
        for batch in grouped["engagements"]:
            for user, engagement in batch:
                engagements[user].append(engagement)
        for batch in grouped["embeddings"]:
            for user, emb in batch:
                embeddings[user].append(emb)
        out: dict[str, list] = defaultdict(list)
        for user in sorted(engagements, key=lambda u: (len(u), u)):
            for lang, result in self._pick(user, engagements[user], embeddings.get(user, []), dim):
                if lang is None:
                    yield result
                else:
                    out[lang].append(result)
        yield from sorted(out.items())

    def _pick(self, user: str, engagements: list[dict], embeddings: list, dim: int) -> list[tuple]:
        problem = "no embedding for this user" if not embeddings else None
        if embeddings:
            if len(embeddings) > 1:
                self._counters.inc("duplicate_user_embeddings", len(embeddings) - 1)
            emb = _first(embeddings)
            problem = core.check_embedding(emb, dim)
        if problem:
            reason = "user_embedding_missing" if not embeddings else "bad_user_embedding"
            self._counters.inc(f"rejected_{reason}", len(engagements))
            return [(None, dead_letter({"user_engagements": len(engagements)}, reason, problem))]
        by_tweet = {e["tweet_id"]: e for e in engagements}
        kept, dropped = core.choose_records(user, sorted(by_tweet), self._per_user, self._seed)
        self._counters.inc("rejected_user_already_used", len(dropped))
        key, vector = core.user_key(user, self._seed), [float(x) for x in emb]
        out = []
        for tweet_id in kept:
            e = by_tweet[tweet_id]
            exclude = sorted(t for t, o in by_tweet.items() if t != tweet_id and o["lang"] == e["lang"])
            out.append((e["lang"], {**e, "user_key": key, "user_emb": vector, "exclude": exclude}))
        return out


def _length_counts(item: tuple[int, list]) -> Counter:
    return Counter(len(emb) if isinstance(emb, list) else -1 for _user, emb in item[1])


class PickUserRecords(beam.PTransform):
    """(user-bucket engagement slices, embedding tables) -> ``(lang, [records])`` and errors.

    The embedding dimension is the most common one in the files; other lengths are rejected.
    """

    def __init__(self, *, per_user: int, seed: int, buckets: int = 64):
        super().__init__()
        self._per_user = per_user
        self._seed = seed
        self._buckets = buckets

    def expand(self, pcolls):
        engagements, embedding_tables = pcolls
        parsed = embedding_tables | "EmbeddingSlices" >> beam.FlatMap(
            embedding_slices, buckets=self._buckets
        ).with_outputs(ERRORS, main="main")
        dim = (
            parsed.main
            | "EmbeddingLengths" >> beam.Map(_length_counts)
            | "AllLengths" >> beam.CombineGlobally(SumDicts())
            | "CommonLength"
            >> beam.Map(lambda c: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] if c else 0)
        )
        records = (
            {"engagements": engagements, "embeddings": parsed.main}
            | "JoinEmbeddings" >> beam.CoGroupByKey()
            | "PickRecords"
            >> beam.ParDo(
                _PickRecordsFn(self._per_user, self._seed), dim=beam.pvalue.AsSingleton(dim)
            ).with_outputs(ERRORS, main="main")
        )
        return records.main, (parsed[ERRORS], records[ERRORS]) | "EmbeddingErrors" >> beam.Flatten()


class _WriteLanguageFn(beam.DoFn):
    """One language's records and tweets -> the benchmark files of that language."""

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
        tweets = [t for batch in grouped["tweets"] for t in batch]
        records = core.number_records([r for batch in grouped["records"] for r in batch])
        for split in SPLITS:
            part = [r for r in records if r["split"] == split]
            self._counters.inc(f"records_{split}", len(part))
            yield write_table(
                self._output, lang, split, to_table([{**r, "lang": lang} for r in part], ENGAGEMENT_RECORDS)
            )
        pools = {s: [t["tweet_id"] for t in tweets if t["split"] == s] for s in SPLITS}
        candidates, short = core.build_candidates(records, pools, self._negatives, lang=lang, seed=self._seed)
        self._counters.inc("short_candidate_lists", short)
        for split in ("validation", "test"):
            rows = [c for c in candidates if c["split"] == split]
            yield write_table(
                self._output, lang, f"{split}_candidates", to_table(rows, ENGAGEMENT_CANDIDATES)
            )
        train = [r for r in records if r["split"] == "train"]
        yield write_table(
            self._output,
            lang,
            "train_negatives",
            to_table(core.negative_distribution(lang, train), ENGAGEMENT_NEGATIVES),
        )
        tweets = [tweets[i] for i in numeric_id_order([t["tweet_id"] for t in tweets])]
        ids = self._tokenizer.encode([t["text"] for t in tweets])
        rows = [{**t, "lang": lang} for t in tweets]
        if ids is not None:
            rows = [{**r, "input_ids": x} for r, x in zip(rows, ids, strict=True)]
        yield write_table(self._output, lang, "tweets", to_table(rows, BENCH_TWEETS))


class WriteEngagementBenchmark(beam.PTransform):
    """(``(lang, [records])``, ``(lang, [tweets])``) -> files under ``<output>/<lang>/``; emits file infos.

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
