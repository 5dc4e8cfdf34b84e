"""Pure helpers of the mock X API: tweet stores, field filtering, v2 bodies and problem bodies."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twhin_data.core.errors import ConfigError

DEFAULT_FIELDS = ("id", "text", "edit_history_tweet_ids")
TWITTER_PROBLEMS = "https://api.twitter.com/2/problems/"
X_PROBLEMS = "https://api.x.com/2/problems/"
#: statuses a statuses map may give an ID (anything absent from the store is `deleted`).
STATUSES = ("deleted", "protected", "suspended", "unavailable", "missing", "invalid")
#: the X API v2 OpenAPI spec (v2.159): TweetFieldsParameter and TweetExpansionsParameter.
KNOWN_FIELDS = frozenset(
    "article attachments author_id card_uri community_id context_annotations conversation_id created_at "
    "display_text_range edit_controls edit_history_tweet_ids entities geo id in_reply_to_user_id lang "
    "media_metadata non_public_metrics note_tweet organic_metrics possibly_sensitive promoted_metrics "
    "public_metrics referenced_tweets reply_settings scopes source suggested_source_links "
    "suggested_source_links_with_counts text withheld".split()
)
KNOWN_EXPANSIONS = frozenset(
    "attachments.media_keys attachments.poll_ids attachments.media_source_tweet author_id "
    "edit_history_tweet_ids entities.mentions.username entities.note.mentions.username geo.place_id "
    "in_reply_to_user_id referenced_tweets.id referenced_tweets.id.author_id "
    "referenced_tweets.id.attachments.media_keys article.cover_media article.media_entities".split()
)
_POST_NAMES = {
    "edit_history_tweet_ids": "edit_history_post_ids",
    "referenced_tweets": "referenced_posts",
    "note_tweet": "note_post",
}
_TWEET_NAMES = {v: k for k, v in _POST_NAMES.items()} | {"referenced_posts.id": "referenced_tweets.id"}


def api_shape(row: dict) -> dict:
    """A tweet object from either an API-shaped record or a row of our tweets schema."""
    if "id" in row:
        return {k: v for k, v in row.items() if v is not None}
    if "tweet_id" not in row:
        raise ConfigError(f"mock tweet record has neither id nor tweet_id: keys {sorted(row)[:8]}")
    out = {"id": str(row["tweet_id"]), "text": row.get("raw_text") or row.get("text") or ""}
    for key in ("lang", "author_id", "conversation_id", "in_reply_to_user_id", "possibly_sensitive"):
        if row.get(key) is not None:
            out[key] = row[key]
    if row.get("created_at") is not None:
        out["created_at"] = row["created_at"].strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if row.get("referenced_tweets"):
        out["referenced_tweets"] = row["referenced_tweets"]
    out["edit_history_tweet_ids"] = row.get("edit_history_tweet_ids") or [out["id"]]
    metrics = {
        k: row[k]
        for k in ("like_count", "retweet_count", "reply_count", "quote_count")
        if row.get(k) is not None
    }
    if metrics:
        out["public_metrics"] = metrics
    return out


def load_tweets(source: str | Path | Iterable[dict] | dict | None) -> dict[str, dict]:
    """Tweets keyed by ID from a JSONL/Parquet path, an iterable of tweet dicts, or a dict by ID."""
    if source is None:
        return {}
    if isinstance(source, dict):
        return {str(k): api_shape(v) for k, v in source.items()}
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"mock tweets file not found: {path}")
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            records: Iterable[dict] = pq.read_table(path).to_pylist()
        else:
            records = _jsonl(path)
    else:
        records = source
    store = {}
    for record in records:
        tweet = api_shape(record)
        store[str(tweet["id"])] = tweet
    return store


def _jsonl(path: Path) -> Iterable[dict]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except ValueError:
                    raise ConfigError(f"{path}:{number}: not a JSON line") from None


def load_json_mapping(source: str | Path | dict | None, what: str) -> dict[str, str]:
    """{str: str} from a JSON file or a dict (None: {})."""
    if source is None:
        return {}
    if isinstance(source, str | Path):
        try:
            source = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read mock {what} {source}: {exc}") from None
    if not isinstance(source, dict):
        raise ConfigError(f"mock {what} must be a JSON object of id -> value")
    return {str(k): str(v) for k, v in source.items()}


def load_statuses(source: str | Path | dict | None) -> dict[str, str]:
    """{id: deleted|protected|suspended|unavailable|missing|invalid} from a JSON file or a dict."""
    statuses = load_json_mapping(source, "statuses")
    bad = sorted(set(statuses.values()) - set(STATUSES))
    if bad:
        raise ConfigError(f"unknown mock statuses {bad}; expected {', '.join(STATUSES)}")
    return statuses


def load_cassettes(directory: str | Path) -> tuple[dict[str, dict], dict[frozenset, tuple[int, dict, bytes]]]:
    """Recorded v2 traffic (tweepy vcrpy YAML): a tweet store, and exact replays keyed by requested IDs."""
    import yaml

    store: dict[str, dict] = {}
    replays: dict[frozenset, tuple[int, dict, bytes]] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is ~10x faster
        cassette = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
        for interaction in cassette.get("interactions", []):
            uri = interaction["request"]["uri"]
            if "/2/" not in uri:
                continue
            response = interaction["response"]
            raw = response["body"]["string"]
            body = raw if isinstance(raw, bytes) else raw.encode("utf-8")
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            payload = json.loads(body)
            for tweet in (payload.get("data") if isinstance(payload.get("data"), list) else []) or []:
                store.setdefault(str(tweet["id"]), tweet)
            for tweet in (payload.get("includes") or {}).get("tweets", []):
                store.setdefault(str(tweet["id"]), tweet)
            parts = urlsplit(uri)
            if parts.path == "/2/tweets" and "ids" in parse_qs(parts.query):
                ids = frozenset(parse_qs(parts.query)["ids"][0].split(","))
                headers = {
                    k.lower(): v[0]
                    for k, v in response["headers"].items()
                    if k.lower().startswith(("x-rate", "api-version"))
                }
                replays[ids] = (int(response["status"]["code"]), headers, body)
    return store, replays


def filter_fields(tweet: dict, fields: Iterable[str]) -> dict:
    """Only the requested fields (id and text always), like the real API."""
    wanted = set(fields) | {"id", "text"}
    return {k: v for k, v in tweet.items() if k in wanted}


def post_vocabulary(body: Any) -> Any:
    """Rewrites a v2 body into the v2.167 `post` vocabulary (keys, includes.posts, api.x.com problems)."""
    if isinstance(body, list):
        return [post_vocabulary(item) for item in body]
    if not isinstance(body, dict):
        return body
    out = {}
    for key, value in body.items():
        if key == "tweets" and isinstance(value, list):
            key = "posts"
        elif key == "type" and isinstance(value, str):
            value = value.replace(TWITTER_PROBLEMS, X_PROBLEMS)
        elif key == "resource_type" and value == "tweet":
            value = "post"
        out[_POST_NAMES.get(key, key)] = post_vocabulary(value)
    return out


def request_fields(query: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """(tweet fields, expansions) from a parsed query string, accepting `post.fields` too."""
    fields_text = (query.get("tweet.fields") or query.get("post.fields") or [""])[0]
    fields = [_TWEET_NAMES.get(f, f) for f in fields_text.split(",") if f] or list(DEFAULT_FIELDS)
    expansions = [_TWEET_NAMES.get(e, e) for e in (query.get("expansions") or [""])[0].split(",") if e]
    return fields, expansions


def id_problem(tweet_id: str, status: str, parameter: str = "ids", section: str = "data") -> dict:
    """The errors[] entry the real API writes for a deleted or protected tweet."""
    if status == "protected":
        title, kind = "Authorization Error", "not-authorized-for-resource"
        detail = f"Sorry, you are not authorized to see the Tweet with ids: [{tweet_id}]."
    elif status == "unavailable":
        title, kind = "Unavailable", "resource-unavailable"
        detail = f"Tweet with ids: [{tweet_id}] is unavailable."
    else:
        title, kind = "Not Found Error", "resource-not-found"
        detail = f"Could not find tweet with ids: [{tweet_id}]."
    problem = {
        "value": tweet_id,
        "detail": detail,
        "title": title,
        "resource_type": "tweet",
        "parameter": parameter,
        "resource_id": tweet_id,
        "type": TWITTER_PROBLEMS + kind,
    }
    if section == "includes":
        problem["section"] = "includes"
    return problem


def lookup_body(
    ids: list[str], store: dict[str, dict], statuses: dict[str, str], fields: list[str], expansions: list[str]
) -> dict:
    """The 200 body of GET /2/tweets?ids=: data, includes.tweets for referenced tweets, errors."""
    data, errors, included, included_ids = [], [], [], set()
    for tweet_id in ids:
        status = statuses.get(tweet_id)
        tweet = store.get(tweet_id)
        if status == "missing":
            continue  # the real API has been seen omitting an ID without an error
        if tweet is None or status in ("deleted", "protected", "suspended", "unavailable"):
            errors.append(id_problem(tweet_id, status or "deleted"))
            continue
        data.append(filter_fields(tweet, fields))
        if "referenced_tweets.id" not in expansions:
            continue
        for ref in tweet.get("referenced_tweets") or []:
            ref_id = str(ref.get("id"))
            if ref_id in included_ids:
                continue
            included_ids.add(ref_id)
            original = store.get(ref_id)
            if original is None or statuses.get(ref_id) in ("deleted", "protected", "suspended"):
                errors.append(
                    id_problem(ref_id, statuses.get(ref_id, "deleted"), "referenced_tweets.id", "includes")
                )
            else:
                included.append(filter_fields(original, fields))
    body: dict = {}
    if data:
        body["data"] = data
    if included:
        body["includes"] = {"tweets": included}
    if errors:
        body["errors"] = errors
    return body


def unknown_parameter_values(query: dict[str, list[str]]) -> tuple[str, list[str]] | None:
    """(parameter, bad values) when tweet.fields/post.fields/expansions hold a name the API rejects."""
    fields, expansions = request_fields(query)
    bad_fields = [f for f in fields if f not in KNOWN_FIELDS]
    if bad_fields:
        return ("post.fields" if "post.fields" in query else "tweet.fields"), bad_fields
    bad_expansions = [e for e in expansions if e not in KNOWN_EXPANSIONS]
    if bad_expansions:
        return "expansions", bad_expansions
    return None


def invalid_request(message: str, values: list[str], parameter: str = "ids") -> dict:
    """A 400 invalid-request body naming `parameter` (ids, tweet.fields, expansions)."""
    return {
        "errors": [{"parameters": {parameter: values}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": TWITTER_PROBLEMS + "invalid-request",
    }


PROBLEMS = {
    401: {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"},
    403: {
        "client_id": "0",
        "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens "
        "from a Twitter developer App that is attached to a Project.",
        "title": "Client Forbidden",
        "required_enrollment": "Appropriate Level of API Access",
        "reason": "client-not-enrolled",
        "type": TWITTER_PROBLEMS + "client-forbidden",
    },
    429: {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429},
    "usage-cap": {
        "account_id": "0",
        "product_name": "standard-basic",
        "title": "UsageCapExceeded",
        "period": "Monthly",
        "scope": "Product",
        "detail": "Usage cap exceeded: Monthly product cap",
        "type": TWITTER_PROBLEMS + "usage-capped",
    },
}


#: fault kinds for `faults` / `script` / --fault KIND=RATE.
FAULTS = (
    "429",  # rate limited, with x-rate-limit-reset
    "429-noreset",  # rate limited, no rate-limit headers at all
    "usage-cap",  # 429 usage-capped (remaining > 0)
    "500",
    "502",
    "503",
    "504",  # JSON problem bodies
    "502-html",  # non-JSON 502 from a proxy
    "slow",  # answer after slow_s seconds (past a client's read timeout)
    "truncated",  # 200 with a cut-off JSON body
    "401",
    "403",  # 403 client-forbidden
)


def fault_answer(fault: str, headers: dict, body: Callable[[], dict]) -> tuple[int, dict, Any]:
    """(status, headers, body) of an injected fault; `body()` builds the normal answer when needed."""
    if fault == "429":
        return 429, headers, PROBLEMS[429]
    if fault == "429-noreset":
        return 429, {}, PROBLEMS[429]
    if fault == "usage-cap":
        capped = {**headers, "x-rate-limit-remaining": headers.get("x-rate-limit-remaining", "39999")}
        return 429, capped, PROBLEMS["usage-cap"]
    if fault in ("401", "403"):
        return int(fault), headers, PROBLEMS[int(fault)]
    if fault == "502-html":
        return 502, {"content-type": "text/html"}, b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    if fault.isdigit():
        return int(fault), headers, server_error(int(fault))
    if fault == "truncated":
        raw = json.dumps(body()).encode("utf-8")
        return 200, headers, raw[: max(1, len(raw) // 2)]
    return 200, headers, ("slow", body())  # the handler sleeps, then sends it


def server_error(status: int) -> dict:
    reason = {
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }
    text = reason.get(status, "Server Error")
    return {"title": text, "detail": text, "type": "about:blank", "status": status}
