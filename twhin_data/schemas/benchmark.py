"""Benchmark datasets: hashtag prediction and engagement prediction."""

import pyarrow as pa

from twhin_data.schemas._field import field, schema
from twhin_data.schemas.tweets import TWEETS

HASHTAG = schema(
    [
        field("tweet_id", pa.string(), "Tweet ID.", nullable=False),
        field("lang", pa.string(), "Language of the benchmark file.", nullable=False),
        field("split", pa.string(), "train, validation or test.", nullable=False),
        field("text", pa.string(), "Normalized text with every label hashtag removed.", nullable=False),
        field("label", pa.string(), "The hashtag label (without '#').", nullable=False),
        field(
            "label_id", pa.int32(), "Index of the label in the language's label vocabulary.", nullable=False
        ),
        field("input_ids", pa.list_(pa.int32()), "Token IDs when a tokenizer was given, else null."),
    ],
    "One row per hashtag-prediction example.",
)

HASHTAG_LABELS = schema(
    [
        field("lang", pa.string(), "Language.", nullable=False),
        field("label_id", pa.int32(), "Label index.", nullable=False),
        field("label", pa.string(), "Hashtag label.", nullable=False),
        field("count", pa.int64(), "Number of kept examples with this label.", nullable=False),
    ],
    "Label vocabulary per language.",
)

#: In transit inside `benchmark hashtag` (never written, so without field docs: they would travel with
#: every table): a label row as read from a label file (`key`: the label's comparison key, NFKC, case
#: and i folded; `released_split`: the split the file names, if any; `source`: the file or member,
#: dictionary-encoded: one path per table instead of one per row).
LABEL_ROWS = pa.schema(
    [
        pa.field("tweet_id", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("released_split", pa.string()),
        pa.field("source", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    ]
)

#: In transit inside `benchmark hashtag`: a label row joined with its tweet's normalized text, the
#: label hashtag removed (before its label ID and split are assigned).
HASHTAG_EXAMPLES = pa.schema([*LABEL_ROWS, pa.field("text", pa.string(), nullable=False)])

ENGAGEMENT_RECORDS = schema(
    [
        field("lang", pa.string(), "Language of the tweet.", nullable=False),
        field("split", pa.string(), "train, validation or test.", nullable=False),
        field("user_row", pa.int64(), "Row index of the (user embedding, tweet) record.", nullable=False),
        field("tweet_id", pa.string(), "Engaged tweet ID.", nullable=False),
        field("user_emb", pa.list_(pa.float32()), "The user's embedding (e.g. 256-d TwHIN).", nullable=False),
    ],
    "One row per (user embedding, engaged tweet) record.",
)

ENGAGEMENT_CANDIDATES = schema(
    [
        field("lang", pa.string(), "Language.", nullable=False),
        field("split", pa.string(), "validation or test.", nullable=False),
        field("user_row", pa.int64(), "Record the list belongs to.", nullable=False),
        field(
            "candidate_tweet_ids",
            pa.list_(pa.string()),
            "1 engaged tweet + N negatives, shuffled deterministically.",
            nullable=False,
        ),
        field(
            "positive_index",
            pa.int32(),
            "Position of the engaged tweet in candidate_tweet_ids.",
            nullable=False,
        ),
    ],
    "Evaluation candidate lists (1 positive + negatives from the same language and split).",
)

BENCH_TWEETS = schema(
    [
        field("tweet_id", pa.string(), "Tweet ID.", nullable=False),
        field("lang", pa.string(), "Language.", nullable=False),
        field("split", pa.string(), "Split of the tweet.", nullable=False),
        field("text", pa.string(), "Normalized text.", nullable=False),
        field("input_ids", pa.list_(pa.int32()), "Token IDs when a tokenizer was given, else null."),
    ],
    "Tweets of the engagement benchmark.",
)

ENGAGEMENT_NEGATIVES = schema(
    [
        field("lang", pa.string(), "Language.", nullable=False),
        field("tweet_id", pa.string(), "A tweet of the language's training split.", nullable=False),
        field(
            "count", pa.int64(), "Training records (user embedding, tweet) with this tweet.", nullable=False
        ),
        field(
            "probability",
            pa.float64(),
            "Training negative-sampling probability: count^0.75 / sum over the language's training tweets.",
            nullable=False,
        ),
    ],
    "Training negative sampler of the engagement benchmark (tweet frequency^0.75, paper 3.2).",
)

#: In transit inside `benchmark engagement` (never written): one (user, tweet) engagement pair as read.
ENGAGEMENT_PAIRS = pa.schema(
    [pa.field("user_id", pa.string(), nullable=False), pa.field("tweet_id", pa.string(), nullable=False)]
)

#: In transit inside `benchmark engagement`: an engaged tweet of one language with its normalized
#: text and its distinct engaging users (sorted numerically); `split` is added once it is sampled.
ENGAGED_TWEETS = pa.schema(
    [
        pa.field("tweet_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("users", pa.list_(pa.string()), nullable=False),
    ]
)

#: In transit inside `benchmark engagement`: a user's engagement on a sampled tweet (keyed by user).
USER_ENGAGEMENTS = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("tweet_id", pa.string(), nullable=False),
        pa.field("lang", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
    ]
)

#: In transit inside `benchmark engagement`: a user embedding as read (`embedding` null when the
#: value is not a list of numbers; `problem` says why when the whole column cannot be read as one).
USER_EMBEDDINGS = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("embedding", pa.list_(pa.float64())),
        pa.field("problem", pa.string()),
    ]
)

#: In transit inside `benchmark engagement`: one record before it is numbered (`exclude`: the user's
#: other engaged tweets of the same language, never drawn as its negatives).
ENGAGEMENT_PICKS = pa.schema(
    [
        pa.field("tweet_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("user_key", pa.int64(), nullable=False),
        pa.field("user_emb", pa.list_(pa.float64()), nullable=False),
        pa.field("exclude", pa.list_(pa.string()), nullable=False),
    ]
)

#: In transit inside `benchmark engagement`: a sampled tweet with its split (what tweets.parquet holds).
SAMPLED_TWEETS = pa.schema(
    [
        pa.field("tweet_id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
    ]
)

#: What both benchmark builders read from hydrate's tweets (a file may lack the nullable columns;
#: every file is checked against these types before the run).
TWEET_INPUT = pa.schema([TWEETS.field(c) for c in ("tweet_id", "text", "lang", "mentions", "urls")])
