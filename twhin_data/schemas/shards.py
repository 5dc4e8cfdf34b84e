"""Tokenized training shards: packed MLM sequences and social pairs."""

import pyarrow as pa

from twhin_data.schemas._field import field, schema

MLM_SHARD = schema(
    [
        field(
            "input_ids",
            pa.list_(pa.int32()),
            "Token IDs: whole tweets `<s> ... </s>` packed back to back, no padding.",
            nullable=False,
        ),
        field(
            "tweet_offsets",
            pa.list_(pa.int32()),
            "Position of each tweet's `<s>` in input_ids (for CLS pooling).",
            nullable=False,
        ),
        field("tweet_ids", pa.list_(pa.string()), "IDs of the packed tweets, in order.", nullable=False),
        field("langs", pa.list_(pa.string()), "Language of each packed tweet, in order.", nullable=False),
        field("num_tokens", pa.int32(), "len(input_ids).", nullable=False),
    ],
    "One row per packed MLM training sequence (shard output `shards/mlm/`).",
)

PAIR_SHARD = schema(
    [
        field("tweet_id_a", pa.string(), "First tweet of the pair.", nullable=False),
        field("tweet_id_b", pa.string(), "Second tweet of the pair.", nullable=False),
        field("input_ids_a", pa.list_(pa.int32()), "Token IDs of tweet a, `<s> ... </s>`.", nullable=False),
        field("input_ids_b", pa.list_(pa.int32()), "Token IDs of tweet b, `<s> ... </s>`.", nullable=False),
        field("lang_a", pa.string(), "Language of tweet a."),
        field("lang_b", pa.string(), "Language of tweet b."),
        field("score", pa.float32(), "Pair score from the graph stage."),
    ],
    "One row per socially-similar pair (shard output `shards/pairs/`).",
)
