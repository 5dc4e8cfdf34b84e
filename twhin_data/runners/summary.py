"""Renders the short, human-readable summary that `twhin-data run` prints."""

from __future__ import annotations

from typing import Any

_SKIP = {"stage", "elapsed_s", "outputs", "report", "stats", "counters"}


def _fmt(value: Any) -> str:
    if isinstance(value, bool):  # one spelling for booleans (a bool is an int too: check it first)
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _mapping(name: str, value: dict, indent: str, limit: int = 12) -> list[str]:
    items = sorted(value.items(), key=lambda kv: (-kv[1], kv[0]) if isinstance(kv[1], int | float) else (0, kv[0]))
    shown = ", ".join(f"{k}={_fmt(v)}" for k, v in items[:limit] if not isinstance(v, dict | list))
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    if shown:
        return [f"{indent}{name}: {shown}{more}"]
    lines = [f"{indent}{name}:"]
    for key, sub in items[:limit]:
        if isinstance(sub, dict):
            lines += _mapping(str(key), sub, indent + "  ", limit)
    return lines


def render_stage(stage: str, summary: dict) -> list[str]:
    elapsed = summary.get("elapsed_s")
    head = f"[{stage}]" + (f" {elapsed:.1f} s" if isinstance(elapsed, int | float) else "")
    lines = [head]
    scalars = {k: v for k, v in summary.items() if k not in _SKIP and not isinstance(v, dict | list)}
    if scalars:
        lines.append("  " + ", ".join(f"{k}={_fmt(v)}" for k, v in scalars.items()))
    for key, value in summary.items():
        if key in _SKIP or not isinstance(value, dict) or not value:
            continue
        lines += _mapping(key, value, "  ")
    outputs = summary.get("outputs")
    if isinstance(outputs, dict):
        for key, path in outputs.items():
            lines.append(f"  -> {key}: {path}")
    return lines


def render(report: dict) -> str:
    lines = ["", "twhin-data run: summary", "=" * 24]
    for stage, summary in report.get("stages", {}).items():
        lines += render_stage(stage, summary or {})
    lines += ["", f"All outputs under {report.get('output')} ({report.get('elapsed_s')} s)."]
    if report.get("reports"):
        lines.append(f"Reports of every stage: {report['reports']}")
    lines.append("")
    return "\n".join(lines)
