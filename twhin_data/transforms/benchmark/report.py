"""Run bookkeeping of the benchmark builders: output checks, counters, stats.json."""

from __future__ import annotations

import json

from apache_beam.io.filesystems import FileSystems

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.report import Report
from twhin_data.transforms.benchmark.common import STAGING


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


def open_output(output: str, overwrite: bool, stage: str) -> None:
    """A benchmark's `prepare_output`: refuse or clear a previous benchmark (`check_output`), drop a
    killed run's staged files, and mark the folder incomplete until the card step finishes it."""
    check_output(output, overwrite, stage)
    files.remove(files.join(output, STAGING))
    files.begin_output(output, stage)


def _flat(prefix: str, value: object) -> list[tuple[str, object]]:
    if isinstance(value, dict):
        return [row for k, v in value.items() for row in _flat(f"{prefix}.{k}" if prefix else str(k), v)]
    return [(prefix, value)]


def render_report(stage: str, stats: dict) -> str:
    """A self-contained HTML page: the funnel, rejections by reason, files per language."""
    checks = ", ".join(f"{k}: {'ok' if v else 'FAILED'}" for k, v in stats.get("checks", {}).items())
    report = Report(f"{stage} report", subtitle=f"in {stats['in']:,}, out {stats['out']:,}; {checks}")
    report.table(["step", "count"], _flat("", stats.get("steps", {})), title="Counts at each step")
    rejected = stats.get("rejected", {})
    if rejected:
        ordered = dict(sorted(rejected.items(), key=lambda kv: (-kv[1], kv[0])))
        report.bar_chart(ordered, title="Rejected, by reason")
    per_language = stats.get("per_language", {})
    if per_language:
        names = sorted({name for row in per_language.values() for name in row})
        rows = [[lang, *(row.get(n, 0) for n in names)] for lang, row in sorted(per_language.items())]
        report.table(["lang", *names], rows, title="Rows per language and file")
    report.table(["parameter", "value"], sorted(stats.get("parameters", {}).items()), title="Parameters")
    return report.render()


def rejected_of(counts: dict[str, int]) -> dict[str, int]:
    """``rejected_<reason>`` counters as {reason: n} (zeros left out), sorted."""
    return dict(
        sorted((k[len("rejected_") :], v) for k, v in counts.items() if k.startswith("rejected_") and v)
    )
