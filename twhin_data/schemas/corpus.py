"""Prepared text: the output of `twhin-data prepare`."""

import pyarrow as pa

from twhin_data.schemas._field import TIMESTAMP, field, schema

CORPUS = schema(
    [
        field("tweet_id", pa.string(), "Tweet ID, decimal digits.", nullable=False),
        field(
            "source_tweet_id",
            pa.string(),
            "The input tweet this row came from: the retweet's own ID when a retweet was kept as its "
            "original (then `tweet_id` is the original's ID, `author_id` is null and `created_at` comes "
            "from the original's Snowflake ID); otherwise equal to `tweet_id`.",
        ),
        field("text", pa.string(), "Normalized text (normalizer version in `normalizer`).", nullable=False),
        field(
            "text_raw",
            pa.string(),
            "The hydrated text before normalization, with prepare --keep_raw_text; null otherwise "
            "(source_tweet_id points to the row in tweets/).",
        ),
        field(
            "lang",
            pa.string(),
            "Detected language, ISO 639-1 where one exists (639-3 otherwise), `und` if unsure.",
            nullable=False,
        ),
        field("lang_score", pa.float32(), "Detector confidence in [0, 1]."),
        field("lang_source", pa.string(), "Language-ID backend: fasttext, langdetect or x."),
        field("x_lang", pa.string(), "X's own `lang`, raw."),
        field("hashtags", pa.list_(pa.string()), "Hashtags (without '#') of the tweet."),
        field("created_at", TIMESTAMP, "Creation time (UTC)."),
        field("author_id", pa.string(), "Author user ID."),
        field("num_chars", pa.int32(), "Length of `text` in code points."),
        field(
            "normalizer",
            pa.string(),
            "Normalizer version and switches, e.g. normalize_v1+user+http.",
            nullable=False,
        ),
        field(
            "copies",
            pa.int32(),
            "Training copies of this tweet after language resampling (>= 1; above 1 for up-sampled "
            "languages, shard writes each copy once). Null reads as 1.",
        ),
    ],
    "One row per kept tweet (prepare output `corpus/`).",
)

DUPLICATES = schema(
    [
        field("tweet_id", pa.string(), "A tweet prepare removed as a copy of another.", nullable=False),
        field(
            "kept_tweet_id",
            pa.string(),
            "The corpus tweet that represents it: the lowest tweet ID of its cluster (a chain of "
            "copies resolves to the tweet that stayed).",
            nullable=False,
        ),
        field(
            "reason",
            pa.string(),
            "duplicate_text (same normalized text), near_duplicate (same match view: another link, "
            "mention, emoji, case, punctuation or number) or minhash_duplicate (shingle Jaccard at "
            "or above prepare --near_dedup's threshold).",
            nullable=False,
        ),
        field("lang", pa.string(), "Detected language of the removed tweet."),
    ],
    "One row per tweet removed as a duplicate (prepare output `duplicates/`), sorted by tweet_id.",
)
