"""Already-hydrated archives -> TWEETS rows, without any API call.

Accepted, line by line (a ``.json`` file may also hold one JSON document, e.g. an array):
- twarc2 JSONL: one API response page per line (``data``, ``includes``, ``errors``, ``__twarc``);
  its ``errors`` about requested IDs become `unavailable` rows;
- plain v2 tweet objects (also twarc2-flattened tweets), one per line;
- v1.1 status objects (``full_text`` / ``extended_tweet``, ``entities``, ``lang``), one per line,
  mapped onto the v2 shape and parsed by the same code as API responses (xapi.parse).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from twhin_data.core.errors import error_record
from twhin_data.xapi import parse

NAMESPACE = "hydrate"
STAGE = "hydrate"
BYTES_PER_TWEET = 2000
_V1_TIME = "%a %b %d %H:%M:%S %z %Y"


def _v1_time(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.strptime(value, _V1_TIME).astimezone(UTC)
    except ValueError:
        return value  # maybe already ISO (parse_time handles it, or yields null)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _v1_entities(status: dict) -> dict:
    source = status.get("extended_tweet") if isinstance(status.get("extended_tweet"), dict) else status
    entities = source.get("entities") or {}
    media = (source.get("extended_entities") or {}).get("media") or entities.get("media") or []

    def spans(items, key, out_key):
        out = []
        for item in items or []:
            indices = item.get("indices") if isinstance(item, dict) else None
            if isinstance(indices, list) and len(indices) == 2:
                out.append({"start": indices[0], "end": indices[1], out_key: item.get(key)})
        return out

    urls = spans(entities.get("urls"), "url", "url")
    seen = {u["url"] for u in urls}
    urls += [u for u in spans(media, "url", "url") if u["url"] not in seen]
    return {
        "hashtags": spans(entities.get("hashtags"), "text", "tag"),
        "mentions": spans(entities.get("user_mentions"), "screen_name", "username"),
        "urls": urls,
    }


def v1_to_v2(status: dict) -> dict:
    """Maps a v1.1 status onto a v2 tweet object (the documented v1.1 -> v2 field map)."""
    extended = status.get("extended_tweet") if isinstance(status.get("extended_tweet"), dict) else {}
    refs = []
    if isinstance(status.get("retweeted_status"), dict):
        refs.append({"type": "retweeted", "id": _id(status["retweeted_status"])})
    if status.get("quoted_status_id_str") or isinstance(status.get("quoted_status"), dict):
        refs.append(
            {"type": "quoted", "id": status.get("quoted_status_id_str") or _id(status["quoted_status"])}
        )
    if status.get("in_reply_to_status_id_str"):
        refs.append({"type": "replied_to", "id": status["in_reply_to_status_id_str"]})
    tweet = {
        "id": _id(status),
        "text": extended.get("full_text") or status.get("full_text") or status.get("text"),
        "lang": status.get("lang"),
        "created_at": _v1_time(status.get("created_at")),
        "author_id": _id(status.get("user") or {}),
        "in_reply_to_user_id": status.get("in_reply_to_user_id_str"),
        "referenced_tweets": refs,
        "entities": _v1_entities(status),
        "public_metrics": {
            "like_count": status.get("favorite_count"),
            "retweet_count": status.get("retweet_count"),
            "reply_count": status.get("reply_count"),
            "quote_count": status.get("quote_count"),
        },
    }
    if isinstance(status.get("possibly_sensitive"), bool):
        tweet["possibly_sensitive"] = status["possibly_sensitive"]
    return tweet


def _id(obj: dict) -> str | None:
    value = obj.get("id_str") or obj.get("id")
    return None if value is None else str(value)


def record_kind(obj: object) -> str | None:
    """twarc2 | v2 | v1.1 | None (unknown)."""
    if not isinstance(obj, dict):
        return None
    if ("data" in obj or "errors" in obj) and "id" not in obj:
        return "twarc2"
    if "id_str" in obj or "full_text" in obj or "favorite_count" in obj or isinstance(obj.get("user"), dict):
        return "v1.1"
    if "id" in obj and ("text" in obj or "note_tweet" in obj or "edit_history_tweet_ids" in obj):
        return "v2"
    return None


def parse_record(obj: object) -> Iterator[tuple[str, dict]]:
    """Yields ("tweet", TWEETS row) / ("unavailable", UNAVAILABLE row) for one archive record.

    Raises ValueError (with the reason) for a record of no known shape.
    """
    kind = record_kind(obj)
    if kind == "twarc2":
        meta = obj.get("__twarc") if isinstance(obj.get("__twarc"), dict) else {}
        when = parse.parse_time(meta.get("retrieved_at"))
        included = parse.included_tweets(obj)
        data = obj.get("data") or []
        for tweet in [data] if isinstance(data, dict) else data:
            if isinstance(tweet, dict) and tweet.get("id") is not None:
                yield "tweet", parse.tweet_row(tweet, included, retrieved_at=when, source="archive:twarc2")
        for error in obj.get("errors") or []:
            key = parse.error_id(error) if parse.is_requested_id_error(error) else None
            if key is not None:
                suffix = parse.problem_suffix(error.get("type"))
                yield (
                    "unavailable",
                    parse.unavailable_row(
                        key,
                        parse.PROBLEM_STATUS.get(suffix or "", "unavailable"),
                        problem_type=suffix,
                        title=error.get("title"),
                        detail=error.get("detail"),
                        http_status=200,
                        api_version=None,
                        retrieved_at=when,
                    ),
                )
    elif kind == "v1.1":
        tweet = v1_to_v2(obj)
        if tweet["id"] is None:
            raise ValueError("v1.1 status without id_str/id")
        included = {}
        if isinstance(obj.get("retweeted_status"), dict):
            original = v1_to_v2(obj["retweeted_status"])
            included[original["id"]] = original
        yield "tweet", parse.tweet_row(tweet, included, retrieved_at=None, source="archive:v1.1")
    elif kind == "v2":
        # twarc2-flattened tweets inline the referenced tweets: use them as includes.
        refs = [r for r in obj.get("referenced_tweets") or [] if isinstance(r, dict) and "text" in r]
        included = {str(r["id"]): parse.canonical_tweet(r) for r in refs if "id" in r}
        yield "tweet", parse.tweet_row(obj, included, retrieved_at=None, source="archive:v2")
    else:
        raise ValueError("not a twarc2 page, v2 tweet or v1.1 status")


def iter_documents(path: str) -> Iterator[tuple[int, object]]:
    """(line number, parsed JSON or a ValueError) per record; a whole-file JSON array is expanded.

    Bytes are decoded strictly: a line that is not UTF-8 is a UnicodeDecodeError (a dead letter),
    never a record with replacement characters.
    """
    with FileSystems.open(path) as handle:
        data = handle.read().removeprefix(b"\xef\xbb\xbf")
    if path.lower().endswith(".json"):
        try:
            whole = json.loads(data.decode("utf-8"))
        except ValueError:
            whole = None
        if whole is not None:
            for item in whole if isinstance(whole, list) else [whole]:
                yield 1, item
            return
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError included
            yield number, exc
            continue
        for item in value if isinstance(value, list) else [value]:
            yield number, item


def _read_archive(path: str) -> Iterable:
    for number, obj in iter_documents(path):
        Metrics.counter(NAMESPACE, "archive_records").inc()
        where = f"{path}:{number}"
        if isinstance(obj, ValueError):
            Metrics.counter(NAMESPACE, "archive_rejected").inc()
            kind = "invalid_utf8" if isinstance(obj, UnicodeDecodeError) else "bad_json"
            yield beam.pvalue.TaggedOutput("errors", error_record(STAGE, f"line {number}", kind, str(obj), where))
            continue
        try:
            rows = list(parse_record(obj))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            Metrics.counter(NAMESPACE, "archive_rejected").inc()
            yield beam.pvalue.TaggedOutput(
                "errors", error_record(STAGE, obj, "unknown_format", str(exc), where)
            )
            continue
        for kind, row in rows:
            yield row["tweet_id"], (kind, row)


def _pick(item: tuple[str, Iterable[tuple[str, dict]]]) -> Iterable:
    """One record per ID: a tweet beats an unavailable entry; the latest retrieval wins, ties by content."""
    _key, values = item
    values = list(values)
    Metrics.counter(NAMESPACE, "archive_duplicates").inc(len(values) - 1)
    tweets = [row for kind, row in values if kind == "tweet"]
    pool = tweets or [row for _kind, row in values]
    best = max(
        pool,
        key=lambda r: (
            r.get("retrieved_at") or datetime.min.replace(tzinfo=UTC),
            json.dumps(r, sort_keys=True, default=str),
        ),
    )
    if tweets:
        Metrics.counter(NAMESPACE, "archive_tweets_distinct").inc()
        yield best
    else:
        Metrics.counter(NAMESPACE, "archive_unavailable_distinct").inc()
        yield beam.pvalue.TaggedOutput("unavailable", best)


class ReadArchives(beam.PTransform):
    """Reads archive files into one record per tweet ID.

    Outputs (dict): ``tweets`` (TWEETS rows), ``unavailable`` (UNAVAILABLE rows from twarc2
    pages' errors, for IDs no archive record hydrated), ``errors`` (dead letters: bad_json,
    unknown_format, with file:line in `source`).

    Args:
      paths: archive files (expanded before the pipeline runs).
    """

    def __init__(self, paths: list[str]):
        super().__init__()
        self._paths = paths

    def expand(self, pbegin):
        read = (
            pbegin
            | "ListArchives" >> beam.Create(self._paths)
            | "SpreadArchives" >> beam.Reshuffle()
            | "ParseArchives" >> beam.FlatMap(_read_archive).with_outputs("errors", main="keyed")
        )
        picked = (
            read.keyed
            | "GroupById" >> beam.GroupByKey()
            | "PickOne" >> beam.FlatMap(_pick).with_outputs("unavailable", main="tweets")
        )
        return {"tweets": picked.tweets, "unavailable": picked.unavailable, "errors": read.errors}
