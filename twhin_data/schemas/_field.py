"""Helper that attaches a documentation string to every pyarrow field."""

from __future__ import annotations

import pyarrow as pa


def field(name: str, type_: pa.DataType, doc: str, *, nullable: bool = True) -> pa.Field:
    """A pyarrow field carrying its documentation in the field metadata (key ``doc``)."""
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


def schema(fields: list[pa.Field], doc: str) -> pa.Schema:
    """A pyarrow schema carrying its documentation in the schema metadata (key ``doc``)."""
    return pa.schema(fields, metadata={"doc": doc})


TIMESTAMP = pa.timestamp("ms", tz="UTC")
