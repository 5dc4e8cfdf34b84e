"""Logging for every command: our own level, tweepy never below INFO, and no Beam tracebacks for errors
that the CLI prints as one line."""

from __future__ import annotations

import logging

from twhin_data.core.errors import ConfigError, FatalApiError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _DropFatalTracebacks(logging.Filter):
    """Beam logs a DoFn's exception with its traceback before the CLI prints it as one line: for
    ConfigError/FatalApiError (a bad token, a usage cap, a bad input file) the one line is the story."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConfigError | FatalApiError))


class _DropImportNoise(logging.Filter):
    """Beam's bigquery client logs "apitools not found" at import when the gcp extra is not installed:
    nothing a user of twhin-data needs (its GCS and Dataflow paths say what they need when used)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def quiet_import_warnings() -> None:
    """Call before importing Beam: our log format first, and without Beam's import-time noise."""
    root = logging.getLogger()
    if not any(isinstance(f, _DropImportNoise) for f in root.filters):
        root.addFilter(_DropImportNoise())
    logging.basicConfig(level=logging.WARNING, format=FORMAT)


def configure_logging(level: str = "INFO") -> None:
    quiet_import_warnings()
    logging.getLogger("twhin_data").setLevel(level)
    # tweepy logs the request headers (Authorization included) at DEBUG: never let them through.
    logging.getLogger("tweepy").setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    for name in ("apache_beam.runners.common", "apache_beam.runners.worker.sdk_worker"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropFatalTracebacks) for f in logger.filters):
            logger.addFilter(_DropFatalTracebacks())
