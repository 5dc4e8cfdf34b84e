"""Schemas are documented, consistent, and the generated reference is up to date."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from twhin_data import schemas

DOC = Path(__file__).resolve().parents[2] / "docs" / "schemas.md"


@pytest.mark.parametrize("name", list(schemas.ALL))
def test_every_field_documented(name):
    schema = schemas.ALL[name]
    assert (schema.metadata or {}).get(b"doc"), name
    for field in schema:
        assert (field.metadata or {}).get(b"doc"), f"{name}.{field.name} has no doc"
        assert re.fullmatch(r"[a-z][a-z0-9_]*", field.name), field.name


@pytest.mark.parametrize("name", list(schemas.ALL))
def test_tweet_id_columns_are_strings(name):
    for field in schemas.ALL[name]:
        if field.name in ("tweet_id", "tweet_id_a", "tweet_id_b", "user_id", "author_id"):
            assert field.type == pa.string(), f"{name}.{field.name}"


def test_reference_doc_is_generated_from_schemas():
    assert DOC.read_text(encoding="utf-8").strip() == schemas.markdown().strip(), (
        "docs/schemas.md is stale: run `python -m twhin_data.schemas > docs/schemas.md`"
    )


def test_conform_orders_casts_and_fills_nullable():
    table = pa.table({"message": ["m"], "stage": ["s"], "error_type": ["e"], "input": ["i"], "extra": [1]})
    out = schemas.conform(table, schemas.ERRORS)
    assert out.schema.names == schemas.ERRORS.names
    assert out.column("source").null_count == 1


def test_conform_rejects_missing_required_and_nulls():
    with pytest.raises(ValueError, match="missing required column 'stage'"):
        schemas.conform(pa.table({"input": ["i"]}), schemas.ERRORS)
    bad = pa.table({"stage": [None], "input": ["i"], "error_type": ["e"], "message": ["m"]})
    with pytest.raises(ValueError, match="not nullable"):
        schemas.conform(bad, schemas.ERRORS)
