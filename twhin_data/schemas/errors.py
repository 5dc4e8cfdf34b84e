"""Dead-letter records: every stage writes rejected inputs to ``<output>/errors/<stage>/``."""

import pyarrow as pa

from twhin_data.schemas._field import field, schema

ERRORS = schema(
    [
        field(
            "stage",
            pa.string(),
            "Stage that rejected the record (hydrate, prepare, graph, shard, benchmark).",
            nullable=False,
        ),
        field(
            "input",
            pa.string(),
            "The rejected input, rendered as text and truncated to 1,000 characters.",
            nullable=False,
        ),
        field(
            "error_type",
            pa.string(),
            "Machine-readable reason, e.g. invalid_id, bad_json, text_null, schema_mismatch.",
            nullable=False,
        ),
        field("message", pa.string(), "Human-readable explanation.", nullable=False),
        field("source", pa.string(), "Input file (or API request) the record came from, when known."),
    ],
    "One row per rejected record.",
)
