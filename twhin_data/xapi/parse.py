"""Pure parsing of X API v2 tweet-lookup responses into tweets/unavailable rows (docs/x-api.md)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

_CHARREF = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")
_PROBLEM_MARK = "/2/problems/"

#: problem type suffix -> unavailable status. Anything else settles as `unavailable`.
PROBLEM_STATUS = {
    "resource-not-found": "not_found",
    "not-authorized-for-resource": "not_authorized",
    "resource-unavailable": "unavailable",
    "disallowed-resource": "unavailable",
}

#: the v2.167 "post" vocabulary -> the "tweet" vocabulary.
_POST_KEYS = {
    "edit_history_post_ids": "edit_history_tweet_ids",
    "referenced_posts": "referenced_tweets",
    "note_post": "note_tweet",
}

MISSING_DETAIL = "missing without error"


def problem_suffix(type_uri: str | None) -> str | None:
    """`https://api.x.com/2/problems/resource-not-found` -> `resource-not-found`; about:blank kept."""
    if not type_uri:
        return None
    if _PROBLEM_MARK in type_uri:
        return type_uri.split(_PROBLEM_MARK, 1)[1].strip("/") or None
    return type_uri


def canonical_tweet(obj: dict) -> dict:
    """A tweet object in the `tweet` vocabulary (accepts the v2.167 `post` spellings)."""
    if not any(key in obj for key in _POST_KEYS):
        return obj
    out = {}
    for key, value in obj.items():
        out[_POST_KEYS.get(key, key)] = value
    return out


def included_tweets(body: dict) -> dict[str, dict]:
    """`includes.tweets` (or `includes.posts`) keyed by ID."""
    includes = body.get("includes") or {}
    if not isinstance(includes, dict):
        return {}
    items = includes.get("tweets") or includes.get("posts") or []
    return {str(t["id"]): canonical_tweet(t) for t in items if isinstance(t, dict) and "id" in t}


def unescape_with_map(raw: str) -> tuple[str, list[int]]:
    """html.unescape(raw) plus a map from each raw code-point offset (0..len) to the unescaped offset."""
    pieces: list[str] = []
    offsets: list[int] = []
    pos = out_len = 0
    for match in _CHARREF.finditer(raw):
        start, end = match.span()
        plain = raw[pos:start]
        offsets.extend(range(out_len, out_len + len(plain)))
        pieces.append(plain)
        out_len += len(plain)
        replacement = html.unescape(match.group(0))
        offsets.extend([out_len] * (end - start))
        pieces.append(replacement)
        out_len += len(replacement)
        pos = end
    tail = raw[pos:]
    offsets.extend(range(out_len, out_len + len(tail) + 1))
    pieces.append(tail)
    return "".join(pieces), offsets


def _map_offset(offsets: list[int], index: Any) -> int | None:
    if not isinstance(index, int) or index < 0:
        return None
    return offsets[min(index, len(offsets) - 1)]


def _spans(items: Any, offsets: list[int], key: str) -> list[dict]:
    spans = []
    for item in items or []:
        if not isinstance(item, dict):
            continue
        start, end = _map_offset(offsets, item.get("start")), _map_offset(offsets, item.get("end"))
        spans.append({"start": start, "end": end, "value": item.get(key)})
    return sorted(spans, key=lambda s: (s["start"] is None, s["start"] or 0))


def _full_text_source(tweet: dict, included: dict[str, dict]) -> dict:
    """The tweet whose text is the full text: a retweet's original when included, else the tweet."""
    for ref in tweet.get("referenced_tweets") or []:
        if isinstance(ref, dict) and ref.get("type") == "retweeted":
            original = included.get(str(ref.get("id")))
            if original is not None and (original.get("text") or original.get("note_tweet")):
                return original
    return tweet


def text_and_entities(tweet: dict, included: dict[str, dict]) -> tuple[str | None, dict]:
    """The full raw text (note_tweet.text, a retweet's original) and the entities that index into it."""
    source = _full_text_source(tweet, included)
    note = source.get("note_tweet")
    if isinstance(note, dict) and isinstance(note.get("text"), str):
        return note["text"], note.get("entities") or {}
    return source.get("text"), source.get("entities") or {}


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 `2021-05-01T09:27:19.000Z` -> aware UTC datetime; None when absent or unparsable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def tweet_row(
    tweet: dict, included: dict[str, dict], *, retrieved_at: datetime | None, source: str = "api"
) -> dict:
    """One row of `schemas.tweets.TWEETS` from a v2 tweet object (either vocabulary)."""
    tweet = canonical_tweet(tweet)
    full_raw, entities = text_and_entities(tweet, included)
    text, offsets = unescape_with_map(full_raw) if isinstance(full_raw, str) else (None, [0])
    metrics = tweet.get("public_metrics") or {}
    refs = [
        {"type": _str(r.get("type")), "id": _str(r.get("id"))}
        for r in tweet.get("referenced_tweets") or []
        if isinstance(r, dict)
    ]
    hashtags = [h.get("tag") for h in _spans_raw(entities.get("hashtags")) if h.get("tag") is not None]
    edits = tweet.get("edit_history_tweet_ids")
    return {
        "tweet_id": str(tweet["id"]),
        "text": text,
        "raw_text": _str(tweet.get("text")),
        "lang": _str(tweet.get("lang")),
        "created_at": parse_time(tweet.get("created_at")),
        "author_id": _str(tweet.get("author_id")),
        "conversation_id": _str(tweet.get("conversation_id")),
        "in_reply_to_user_id": _str(tweet.get("in_reply_to_user_id")),
        "referenced_tweets": refs if "referenced_tweets" in tweet else None,
        "hashtags": [str(h) for h in hashtags],
        "mentions": _spans(entities.get("mentions"), offsets, "username"),
        "urls": _spans(entities.get("urls"), offsets, "url"),
        "like_count": _int(metrics.get("like_count")),
        "retweet_count": _int(metrics.get("retweet_count")),
        "reply_count": _int(metrics.get("reply_count")),
        "quote_count": _int(metrics.get("quote_count")),
        "possibly_sensitive": tweet.get("possibly_sensitive")
        if isinstance(tweet.get("possibly_sensitive"), bool)
        else None,
        "edit_history_tweet_ids": [str(e) for e in edits] if isinstance(edits, list) else None,
        "source": source,
        "retrieved_at": retrieved_at,
    }


def _spans_raw(items: Any) -> list[dict]:
    good = [i for i in items or [] if isinstance(i, dict)]
    return sorted(good, key=lambda i: i.get("start") if isinstance(i.get("start"), int) else 0)


def unavailable_row(
    tweet_id: str,
    status: str,
    *,
    problem_type: str | None,
    title: str | None,
    detail: str | None,
    http_status: int | None,
    api_version: str | None,
    retrieved_at: datetime | None,
) -> dict:
    """One row of `schemas.tweets.UNAVAILABLE`."""
    return {
        "tweet_id": tweet_id,
        "status": status,
        "problem_type": problem_type,
        "title": title,
        "detail": detail,
        "http_status": http_status,
        "api_version": api_version,
        "retrieved_at": retrieved_at,
    }


def is_requested_id_error(error: dict) -> bool:
    """True for an `errors[]` entry about a requested ID (parameter `ids`), not about an expansion."""
    if not isinstance(error, dict) or error.get("section") == "includes":
        return False
    parameter = error.get("parameter")
    if parameter is not None:
        return parameter == "ids"
    # 2020-era entries may lack `parameter`; only tweet-typed, non-includes entries can be ours.
    return error.get("resource_type") in (None, "tweet", "post")


def error_id(error: dict) -> str | None:
    """The ID an errors[] entry is about: `resource_id`, else `value`."""
    value = error.get("resource_id", error.get("value"))
    return None if value is None else str(value)


def parse_lookup(
    body: dict,
    requested: list[str],
    *,
    http_status: int = 200,
    api_version: str | None = None,
    retrieved_at: datetime | None = None,
) -> tuple[list[dict], list[dict], list[dict]]:
    """Settles every requested ID from one 200 response.

    Returns (tweets rows, unavailable rows, expansion errors). Each distinct requested ID is in
    exactly one of the first two lists; errors about expansions never settle a requested ID.
    """
    wanted = list(dict.fromkeys(str(i) for i in requested))
    data = body.get("data") or []
    if isinstance(data, dict):  # single-tweet shape
        data = [data]
    included = included_tweets(body)
    tweets: dict[str, dict] = {}
    for obj in data:
        if isinstance(obj, dict) and str(obj.get("id")) in wanted and str(obj["id"]) not in tweets:
            tweets[str(obj["id"])] = tweet_row(obj, included, retrieved_at=retrieved_at)
    problems: dict[str, dict] = {}
    expansion_errors = []
    for error in body.get("errors") or []:
        if not is_requested_id_error(error):
            expansion_errors.append(error)
            continue
        key = error_id(error)
        if key in wanted and key not in tweets and key not in problems:
            problems[key] = error
    unavailable = []
    for tweet_id in wanted:
        if tweet_id in tweets:
            continue
        meta = {"http_status": http_status, "api_version": api_version, "retrieved_at": retrieved_at}
        error = problems.get(tweet_id)
        if error is None:
            unavailable.append(
                unavailable_row(
                    tweet_id, "unavailable", problem_type=None, title=None, detail=MISSING_DETAIL, **meta
                )
            )
            continue
        suffix = problem_suffix(error.get("type"))
        status = PROBLEM_STATUS.get(suffix or "", "unavailable")
        unavailable.append(
            unavailable_row(
                tweet_id,
                status,
                problem_type=suffix,
                title=_str(error.get("title")),
                detail=_str(error.get("detail")),
                **meta,
            )
        )
    return [tweets[i] for i in wanted if i in tweets], unavailable, expansion_errors
