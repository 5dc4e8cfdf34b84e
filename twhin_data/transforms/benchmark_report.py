"""Run bookkeeping of the benchmark builders: output checks, counters, stats.json."""

from __future__ import annotations

import json

from apache_beam.io.filesystems import FileSystems

from twhin_data.core import files
from twhin_data.core.errors import ConfigError


def read_json(path: str) -> dict:
    return json.loads(files.read_bytes(path).decode("utf-8"))


def check_output(output: str, overwrite: bool, stage: str) -> None:
    """Refuses to replace a finished benchmark without --overwrite; with it, removes the old files.

    A finished benchmark has a ``manifest.json``; the files it lists, and the stage's errors and
    reports, are deleted so no file of the previous run survives beside the new ones.
    """
    manifest_path = files.join(output, "manifest.json")
    if not files.exists(manifest_path):
        return
    if not overwrite:
        raise ConfigError(
            f"{output} already holds a benchmark (manifest.json); pass --overwrite to replace it"
        )
    try:
        old = read_json(manifest_path)
    except (ValueError, OSError):
        old = {"files": []}
    stale = [files.join(output, f["path"]) for f in old.get("files", [])]
    stale += [files.join(output, "errors", stage), files.join(output, "reports", stage), manifest_path]
    stale.append(files.join(output, "README.md"))
    existing = [path for path in stale if FileSystems.exists(path)]
    if existing:
        FileSystems.delete(existing)


def counters_of(result, namespace: str) -> dict[str, int]:
    from twhin_data.runners.launch import counters

    return counters(result, namespace)


def write_stats(output: str, stage: str, stats: dict) -> str:
    """Writes ``<output>/reports/<stage>/stats.json``; returns its path."""
    path = files.join(output, "reports", stage, "stats.json")
    files.write_json(path, stats)
    return path


def rejected_of(counts: dict[str, int]) -> dict[str, int]:
    """``rejected_<reason>`` counters as {reason: n} (zeros left out), sorted."""
    return dict(
        sorted((k[len("rejected_") :], v) for k, v in counts.items() if k.startswith("rejected_") and v)
    )
