"""Hydrated tweets and the IDs that could not be hydrated."""

import pyarrow as pa

from twhin_data.schemas._field import TIMESTAMP, field, schema

REFERENCED = pa.struct([pa.field("type", pa.string()), pa.field("id", pa.string())])
SPAN = pa.struct(
    [
        pa.field("start", pa.int32()),
        pa.field("end", pa.int32()),
        pa.field("value", pa.string()),
    ]
)

TWEETS = schema(
    [
        field("tweet_id", pa.string(), "Tweet ID, decimal digits (never a float).", nullable=False),
        field(
            "text",
            pa.string(),
            "Full text, HTML entities unescaped: note_tweet.text when present, else text; for a retweet "
            "whose original is in includes, the original's full text.",
        ),
        field(
            "raw_text", pa.string(), "The API's `text` field exactly as returned (escaped, maybe truncated)."
        ),
        field("lang", pa.string(), "X's own language code, raw (e.g. en, in, und, qst)."),
        field("created_at", TIMESTAMP, "Creation time (UTC)."),
        field("author_id", pa.string(), "Author user ID."),
        field("conversation_id", pa.string(), "Conversation (thread root) tweet ID."),
        field("in_reply_to_user_id", pa.string(), "User ID replied to, if a reply."),
        field(
            "referenced_tweets",
            pa.list_(REFERENCED),
            "Referenced tweets: type in {retweeted, quoted, replied_to} and the tweet ID.",
        ),
        field("hashtags", pa.list_(pa.string()), "Hashtag texts without '#', in order of appearance."),
        field(
            "mentions",
            pa.list_(SPAN),
            "@mentions: code-point offsets into `text` (start inclusive, end exclusive) and the username. "
            "Consumers must check the slice and fall back to regexes when it does not match.",
        ),
        field(
            "urls",
            pa.list_(SPAN),
            "URLs: code-point offsets into `text` and the URL as written in the text (t.co).",
        ),
        field("like_count", pa.int64(), "public_metrics.like_count."),
        field("retweet_count", pa.int64(), "public_metrics.retweet_count."),
        field("reply_count", pa.int64(), "public_metrics.reply_count."),
        field("quote_count", pa.int64(), "public_metrics.quote_count."),
        field("possibly_sensitive", pa.bool_(), "X's possibly_sensitive flag."),
        field("edit_history_tweet_ids", pa.list_(pa.string()), "Edit history IDs (edit_history_tweet_ids)."),
        field(
            "source",
            pa.string(),
            "Where the record came from: api, archive:twarc2, archive:v2, archive:v1.1.",
        ),
        field("retrieved_at", TIMESTAMP, "When the API returned it (UTC); null for archives without it."),
    ],
    "One row per available tweet (hydrate output `tweets/`).",
)

UNAVAILABLE_STATUSES = ("not_found", "not_authorized", "unavailable", "invalid_id", "failed")

UNAVAILABLE = schema(
    [
        field(
            "tweet_id",
            pa.string(),
            "The input ID as given (after whitespace/quote stripping).",
            nullable=False,
        ),
        field("status", pa.string(), "One of: " + ", ".join(UNAVAILABLE_STATUSES) + ".", nullable=False),
        field(
            "problem_type", pa.string(), "Problem type suffix after /2/problems/ (e.g. resource-not-found)."
        ),
        field("title", pa.string(), "Problem title from the API."),
        field("detail", pa.string(), "Problem detail from the API, or our own explanation."),
        field("http_status", pa.int32(), "HTTP status of the response that settled the ID."),
        field("api_version", pa.string(), "The api-version response header, when sent."),
        field("retrieved_at", TIMESTAMP, "When the ID was settled (UTC)."),
    ],
    "One row per input ID that was not hydrated (hydrate output `unavailable/`).",
)
