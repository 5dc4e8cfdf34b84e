"""Error taxonomy and dead-letter records shared by every stage."""

from __future__ import annotations

import json
from typing import Any

MAX_INPUT_CHARS = 1000


class TwhinError(Exception):
    """Base class of the project's own exceptions."""


class ConfigError(TwhinError):
    """Bad flags, config or environment: fatal before (or at) pipeline submission."""


class FatalApiError(TwhinError):
    """The API refuses the whole job (401/403, usage cap): stop, and say why once."""


class InputRejectedError(TwhinError):
    """A stage rejected all of its input (or more than --max_rejected_share): its output is useless."""


class RetryableApiError(TwhinError):
    """A transient API failure (5xx, timeout, connection reset): the client retries."""


class RecordError(TwhinError):
    """One record is bad: it goes to the dead-letter output with this message."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def truncate_input(value: Any, limit: int = MAX_INPUT_CHARS) -> str:
    """Renders a bad input for a dead-letter record, truncated to `limit` characters."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", errors="backslashreplace")
    elif isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    # Lone surrogates cannot be encoded into Parquet strings: make them visible instead.
    text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_record(stage: str, value: Any, error_type: str, message: str, source: str | None = None) -> dict:
    """Builds one row of the errors schema (`schemas.errors.ERRORS`)."""
    return {
        "stage": stage,
        "input": truncate_input(value),
        "error_type": error_type,
        "message": truncate_input(message, 2000),
        "source": source,
    }
