"""Readers of the engagement benchmark: engagement logs and user embeddings (dead letters for bad rows)."""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa

from twhin_data.core.errors import ConfigError, error_record
from twhin_data.core.ids import normalize_id
from twhin_data.core.parquet import is_list_type, read_metadata
from twhin_data.core.tags import ERRORS
from twhin_data.schemas.benchmark import ENGAGEMENT_PAIRS, USER_EMBEDDINGS
from twhin_data.transforms.benchmark.common import table_slices
from twhin_data.transforms.benchmark.read import TABLE_ROWS, iter_records
from twhin_data.transforms.metrics import Counters

STAGE = "benchmark_engagement"
TWEET_SALT = "benchmark-engagement-tweet"
USER_SALT = "benchmark-engagement-user"
_EMB_NAMES = ("embedding", "user_emb", "emb", "vector")


def dead_letter(value: object, reason: str, message: str, source: str | None = None) -> beam.pvalue.TaggedOutput:
    """A dead letter of this stage on the ``errors`` output."""
    return beam.pvalue.TaggedOutput(ERRORS, error_record(STAGE, value, reason, message, source))


def parse_engagement(record: object) -> tuple[str, str] | tuple[None, tuple[str, str]]:
    """(user_id, tweet_id), or (None, (error_type, message))."""
    if isinstance(record, Exception):
        return None, ("bad_json", str(record))
    if not isinstance(record, dict):
        return None, ("malformed_row", "expected a record with user_id and tweet_id")
    user, user_problem = normalize_id(record.get("user_id"))
    tweet, tweet_problem = normalize_id(record.get("tweet_id"))
    if user_problem:
        return None, (f"user_{user_problem[0]}", f"user_id: {user_problem[1]}")
    if tweet_problem:
        return None, (tweet_problem[0], f"tweet_id: {tweet_problem[1]}")
    return user, tweet


class _ReadEngagementFileFn(beam.DoFn):
    """One engagement file -> ``(bucket, ENGAGEMENT_PAIRS table)`` slices keyed by the tweet; bad rows on errors."""

    def __init__(self, buckets: int) -> None:
        self._buckets = buckets
        self._counters = Counters(STAGE)

    def process(self, path: str) -> Iterable:
        users: list[str] = []
        tweets: list[str] = []
        for number, record in iter_records(path):
            self._counters.inc("engagements_read")
            user, tweet = parse_engagement(record)
            if user is None:
                error_type, message = tweet
                self._counters.inc(f"rejected_malformed_{error_type}")
                value = record if not isinstance(record, Exception) else str(record)
                yield dead_letter(value, error_type, f"row {number}: {message}", path)
                continue
            users.append(user)
            tweets.append(tweet)
            if len(users) >= TABLE_ROWS:
                yield from _pair_slices(users, tweets, self._buckets)
                users, tweets = [], []
        yield from _pair_slices(users, tweets, self._buckets)


def _pair_slices(users: list[str], tweets: list[str], buckets: int) -> list[tuple[int, pa.Table]]:
    table = pa.table({"user_id": pa.array(users, pa.string()), "tweet_id": pa.array(tweets, pa.string())})
    return table_slices(table.cast(ENGAGEMENT_PAIRS), "tweet_id", buckets, TWEET_SALT)


class ReadEngagementPairs(beam.PTransform):
    """Engagement files -> ``(bucket, ENGAGEMENT_PAIRS table)`` slices on ``main``; bad rows on ``errors``.

    Slices are keyed by a hash bucket of the tweet ID (the next join's key). Several engagement
    types of one user on one tweet become one pair in that join (counted as duplicates there).
    """

    def __init__(self, paths: list[str], *, buckets: int = 64):
        super().__init__()
        self._paths = paths
        self._buckets = buckets

    def expand(self, p):
        parsed = (
            p
            | "EngagementFiles" >> beam.Create(self._paths)
            | "ReadEngagementFile"
            >> beam.ParDo(_ReadEngagementFileFn(self._buckets)).with_outputs(ERRORS, main="main")
        )
        return parsed.main, parsed[ERRORS]


def embedding_column(schema: pa.Schema) -> str | None:
    """The embedding column: embedding/user_emb/emb/vector, else the first list column."""
    column = next((n for n in _EMB_NAMES if n in schema.names), None)
    if column is None:
        column = next((f.name for f in schema if is_list_type(f.type)), None)
    return column


def check_embedding_files(paths: list[str]) -> None:
    """ConfigError unless every file has a user_id column and an embedding column."""
    for path in paths:
        schema, _footer = read_metadata(path)
        if "user_id" not in schema.names or embedding_column(schema) is None:
            raise ConfigError(
                f"{path}: user embeddings need user_id and a list<float> column, got {schema.names}"
            )


def embedding_slices(table: pa.Table, buckets: int) -> Iterable:
    """``(bucket, USER_EMBEDDINGS table)`` slices keyed by the user; error records for bad user IDs.

    The embedding column is read as ``list<double>``; a column that is not a list of numbers
    travels as nulls (rejected, with the reason, for the users that have engagements).
    """
    values, problem = _embedding_values(table.column(embedding_column(table.schema)))
    keys, good = [], []
    for i, user in enumerate(table.column("user_id").to_pylist()):
        key, user_problem = normalize_id(user)
        if user_problem:
            message = f"user embeddings: {user_problem[1]}"
            yield dead_letter({"user_id": key}, f"user_{user_problem[0]}", message)
        else:
            keys.append(key)
            good.append(i)
    rows = pa.table(
        {
            "user_id": pa.array(keys, pa.string()),
            "embedding": values.take(pa.array(good, pa.int64())),
            "problem": pa.array([problem] * len(good), pa.string()),
        },
        schema=USER_EMBEDDINGS,
    )
    yield from table_slices(rows, "user_id", buckets, USER_SALT)


def _embedding_values(column: pa.ChunkedArray) -> tuple[pa.ChunkedArray, str | None]:
    """(the column as list<double>, None), or (nulls, why) when it cannot be read as lists of numbers."""
    target = USER_EMBEDDINGS.field("embedding").type
    if not is_list_type(column.type):
        problem = "embedding is not a list of numbers"
    else:
        try:
            return column.cast(target), None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            problem = "embedding holds non-numbers"
    return pa.chunked_array([pa.nulls(len(column), target)]), problem
