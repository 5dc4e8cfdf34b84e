"""Engagements, the user-tweet graph (PyTorch-BigGraph ready) and socially-similar pairs."""

import pyarrow as pa

from twhin_data.schemas._field import TIMESTAMP, field, schema

ENGAGEMENT_TYPES = ("fav", "reply", "retweet", "quote")

ENGAGEMENTS = schema(
    [
        field("user_id", pa.string(), "Engaging user ID, decimal digits.", nullable=False),
        field("tweet_id", pa.string(), "Engaged tweet ID, decimal digits.", nullable=False),
        field("type", pa.string(), "Engagement type: " + ", ".join(ENGAGEMENT_TYPES) + ".", nullable=False),
        field("ts", TIMESTAMP, "When the engagement happened (UTC), if known."),
        field("source", pa.string(), "log (an engagement log) or derived (from hydrated tweets)."),
    ],
    "One row per engagement after cleaning.",
)

EDGES = schema(
    [
        field("lhs", pa.int64(), "User index (graph/users).", nullable=False),
        field("rel", pa.int32(), "Relation index (graph/relations).", nullable=False),
        field("rhs", pa.int64(), "Tweet index (graph/tweets).", nullable=False),
        field("ts", pa.int64(), "Engagement time, milliseconds since the epoch (UTC), if known."),
    ],
    "One row per user-tweet edge (graph output `graph/edges/`).",
)

USERS = schema(
    [
        field("index", pa.int64(), "Contiguous index from 0.", nullable=False),
        field("user_id", pa.string(), "User ID.", nullable=False),
        field("degree", pa.int64(), "Number of edges of this user in the final graph.", nullable=False),
    ],
    "User vocabulary (graph output `graph/users/`).",
)

TWEET_NODES = schema(
    [
        field("index", pa.int64(), "Contiguous index from 0.", nullable=False),
        field("tweet_id", pa.string(), "Tweet ID.", nullable=False),
        field("degree", pa.int64(), "Number of edges of this tweet in the final graph.", nullable=False),
    ],
    "Tweet vocabulary (graph output `graph/tweets/`).",
)

RELATIONS = schema(
    [
        field("index", pa.int32(), "Relation index.", nullable=False),
        field("name", pa.string(), "Relation name (engagement type).", nullable=False),
    ],
    "Relation vocabulary (graph output `graph/relations/`).",
)

PAIRS = schema(
    [
        field(
            "tweet_id_a",
            pa.string(),
            "Smaller tweet ID of the unordered pair (numeric order).",
            nullable=False,
        ),
        field("tweet_id_b", pa.string(), "Larger tweet ID of the unordered pair.", nullable=False),
        field(
            "score",
            pa.float32(),
            "Similarity: cosine of co-engagement vectors, or of embeddings.",
            nullable=False,
        ),
        field(
            "count", pa.int64(), "Number of users who engaged with both (co-engagement); null for embeddings."
        ),
        field(
            "rank", pa.int32(), "Best rank of the pair among either tweet's top-k neighbours (1 = nearest)."
        ),
        field("method", pa.string(), "cooccurrence or embeddings.", nullable=False),
    ],
    "One row per socially-similar tweet pair (graph output `pairs/`).",
)

TWEET_EMBEDDINGS = schema(
    [
        field("tweet_id", pa.string(), "Tweet ID (PyTorch-BigGraph entity t<ID>).", nullable=False),
        field("embedding", pa.list_(pa.float32()), "The TwHIN embedding (twhin-data embed; 256-d as the paper).", nullable=False),
    ],
    "One row per tweet of the engagement graph (embed output `embeddings/tweets/`).",
)

USER_EMBEDDINGS = schema(
    [
        field("user_id", pa.string(), "User ID (PyTorch-BigGraph entity u<ID>).", nullable=False),
        field("embedding", pa.list_(pa.float32()), "The TwHIN embedding (twhin-data embed).", nullable=False),
    ],
    "One row per user of the engagement graph (embed output `embeddings/users/`).",
)
