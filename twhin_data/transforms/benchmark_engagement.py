"""Engagement-prediction benchmark transforms (paper 3.2): engagements + tweets + user embeddings.

Element flow (the counting unit is one engagement row)::

    engagement files -> ReadEngagementPairs (benchmark_engagement_io: distinct (user, tweet) pairs) + errors
    pairs + tweet tables -> AttachTweets (tweet language and normalized text, per tweet)
    per language -> SampleAndSplitTweets (max tweets per language, tweet-level hashed split)
    pairs + user embeddings -> PickUserRecords (each user embedding used in one record)
    per language -> WriteEngagementBenchmark (records, candidate lists, negatives, tweets)
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa

from twhin_data.core.errors import RecordError
from twhin_data.schemas import to_table
from twhin_data.schemas.benchmark import (
    BENCH_TWEETS,
    ENGAGEMENT_CANDIDATES,
    ENGAGEMENT_NEGATIVES,
    ENGAGEMENT_RECORDS,
)
from twhin_data.transforms import benchmark_engagement_core as core
from twhin_data.transforms.benchmark import tweets_with_ids
from twhin_data.transforms.benchmark_common import SPLITS, TokenizerHandle, numeric_id_order, write_table
from twhin_data.transforms.benchmark_engagement_io import _Counters, _error, embedding_rows
from twhin_data.transforms.benchmark_io import ERRORS, canonical_lang

TWEET_COLUMNS = ["tweet_id", "text", "lang", "mentions", "urls"]


class _AttachTweetFn(beam.DoFn):
    """One tweet's engagers + hydrated row -> ``(lang, tweet)``, or the pairs are rejected."""

    def __init__(self, placeholders: bool):
        self._placeholders = placeholders
        self._counters = _Counters()

    def process(self, item: tuple[str, dict]) -> Iterable:
        yield from self._attach(*item)

    def _attach(self, tweet_id: str, grouped: dict) -> Iterable:
        users = sorted(set(grouped["users"]), key=lambda u: (len(u), u))
        if not users:
            return
        tweets = grouped["tweets"]
        reason = message = None
        if not tweets:
            reason, message = "tweet_unavailable", "tweet not in the hydrated tweets"
        else:
            tweet = min(tweets, key=lambda t: json.dumps(t, sort_keys=True, default=str))
            lang = canonical_lang(tweet.get("lang"))
            if lang is None or lang in core.NO_LANGUAGE:
                reason, message = (
                    "tweet_no_language",
                    f"tweet language {tweet.get('lang')!r} names no language",
                )
            elif tweet.get("text") is None:
                reason, message = "text_null", "the hydrated tweet has no text"
        if reason is None:
            from twhin_data.text.normalize import normalize_v1

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
            yield _error(
                {"tweet_id": tweet_id, "engagements": len(users)},
                reason,
                f"{message} ({len(users)} engagements)",
            )
            return
        yield lang, {"tweet_id": tweet_id, "text": text, "users": users}


class AttachTweets(beam.PTransform):
    """(pairs, tweet tables) -> ``(lang, {tweet_id, text, users})`` per engaged tweet, and errors."""

    def __init__(self, *, placeholders: bool = True):
        super().__init__()
        self._placeholders = placeholders

    def expand(self, pcolls):
        pairs, tweet_tables = pcolls
        wanted = (
            pairs
            | "EngagedIds" >> beam.Map(lambda pair: pair[1])
            | "DistinctEngaged" >> beam.Distinct()
            | "EngagedList" >> beam.combiners.ToList()
            | "EngagedArray" >> beam.Map(lambda ids: pa.array(sorted(ids), pa.string()))
        )
        tweets = tweet_tables | "EngagedTweets" >> beam.FlatMap(
            tweets_with_ids, wanted=beam.pvalue.AsSingleton(wanted)
        )
        users = pairs | "KeyByTweet" >> beam.Map(lambda pair: (pair[1], pair[0]))
        return (
            {"users": users, "tweets": tweets}
            | "JoinTweets" >> beam.CoGroupByKey()
            | "AttachTweet"
            >> beam.ParDo(_AttachTweetFn(self._placeholders)).with_outputs(ERRORS, main="main")
        )


class _SampleSplitFn(beam.DoFn):
    """One language's tweets -> sampled tweets with their split, and (user, engagement) pairs."""

    def __init__(self, max_tweets: int, fractions: tuple[float, float, float], seed: int):
        self._max_tweets = max_tweets
        self._fractions = fractions
        self._seed = seed
        self._counters = _Counters()

    def process(self, item: tuple[str, Iterable[dict]]) -> Iterable:
        lang, tweets = item
        tweets = {t["tweet_id"]: t for t in tweets}
        ids = sorted(tweets, key=lambda t: (len(t), t))
        selected, dropped = core.sample_tweets(lang, ids, self._max_tweets, self._seed)
        for tweet_id in dropped:
            self._counters.inc("rejected_tweet_not_sampled", len(tweets[tweet_id]["users"]))
        splits = core.split_tweets(selected, self._fractions, self._seed)
        for tweet_id in selected:
            tweet = tweets[tweet_id]
            yield beam.pvalue.TaggedOutput("tweets", (lang, {**tweet, "split": splits[tweet_id]}))
            for user in tweet["users"]:
                yield user, {"tweet_id": tweet_id, "lang": lang, "split": splits[tweet_id]}


class SampleAndSplitTweets(beam.PTransform):
    """``(lang, tweet)`` -> ``tweets`` (lang, tweet + split) and ``main`` (user_id, engagement)."""

    def __init__(self, *, max_tweets: int, fractions: tuple[float, float, float], seed: int):
        super().__init__()
        self._args = (max_tweets, fractions, seed)

    def expand(self, tweets):
        return (
            tweets
            | "TweetsPerLang" >> beam.GroupByKey()
            | "SampleSplit" >> beam.ParDo(_SampleSplitFn(*self._args)).with_outputs("tweets", main="main")
        )


class _PickRecordsFn(beam.DoFn):
    """One user's engagements + embedding -> at most `per_user` records (privacy rule of the paper)."""

    def __init__(self, per_user: int, seed: int):
        self._per_user = per_user
        self._seed = seed
        self._counters = _Counters()

    def process(self, item: tuple[str, dict], dim: int) -> Iterable:
        yield from self._pick(*item, dim)

    def _pick(self, user: str, grouped: dict, dim: int) -> Iterable:
        engagements = grouped["engagements"]
        if not engagements:
            return
        embeddings = grouped["embeddings"]
        problem = "no embedding for this user" if not embeddings else None
        if embeddings:
            if len(embeddings) > 1:
                self._counters.inc("duplicate_user_embeddings", len(embeddings) - 1)
            emb = min(embeddings, key=lambda e: json.dumps(e, default=str))
            problem = core.check_embedding(emb, dim)
        if problem:
            reason = "user_embedding_missing" if not embeddings else "bad_user_embedding"
            self._counters.inc(f"rejected_{reason}", len(engagements))
            yield _error({"user_engagements": len(engagements)}, reason, problem)
            return
        by_tweet = {e["tweet_id"]: e for e in engagements}
        kept, dropped = core.choose_records(user, sorted(by_tweet), self._per_user, self._seed)
        self._counters.inc("rejected_user_already_used", len(dropped))
        key = core.user_key(user, self._seed)
        for tweet_id in kept:
            e = by_tweet[tweet_id]
            exclude = sorted(t for t, o in by_tweet.items() if t != tweet_id and o["lang"] == e["lang"])
            yield e["lang"], {**e, "user_key": key, "user_emb": [float(x) for x in emb], "exclude": exclude}


class PickUserRecords(beam.PTransform):
    """(user engagements, embedding tables) -> ``(lang, record)`` and errors.

    The embedding dimension is the most common one in the file; other lengths are rejected.
    """

    def __init__(self, *, per_user: int, seed: int):
        super().__init__()
        self._per_user = per_user
        self._seed = seed

    def expand(self, pcolls):
        engagements, embedding_tables = pcolls
        parsed = embedding_tables | "EmbeddingRows" >> beam.FlatMap(embedding_rows).with_outputs(
            ERRORS, main="main"
        )
        dim = (
            parsed.main
            | "EmbeddingLength" >> beam.Map(lambda kv: len(kv[1]) if isinstance(kv[1], list) else -1)
            | "CountLengths" >> beam.combiners.Count.PerElement()
            | "LengthList" >> beam.combiners.ToList()
            | "CommonLength"
            >> beam.Map(lambda counts: min(counts, key=lambda c: (-c[1], c[0]))[0] if counts else 0)
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
        self._counters = _Counters()

    def setup(self) -> None:
        self._tokenizer = TokenizerHandle(self._tokenizer_path)

    def process(self, item: tuple[str, dict]) -> Iterable[dict]:
        lang, grouped = item
        tweets = list(grouped["tweets"])
        records = core.number_records(list(grouped["records"]))
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
    """(``(lang, record)``, ``(lang, tweet)``) -> files under ``<output>/<lang>/``; emits file infos.

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
