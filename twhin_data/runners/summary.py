"""The summary every command prints when it ends: aligned text for people, JSON with ``--json``.

One format for `twhin-data run` and for each command: a block per stage, its numbers aligned in
one column, every mapping of counts sorted by size (largest first), booleans as yes/no, and the
path of the report last. ``--json`` prints the same summary as one JSON document instead.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Keys shown elsewhere in a block (the head line, the outputs list) or too long for a terminal.
_SKIP = {"stage", "elapsed_s", "stats", "counters"}
_LIMIT = 12
_NUMBER = re.compile(r"^-?[\d,]+(\.\d+)?$")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):  # one spelling for booleans (a bool is an int too: check it first)
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if value is None:
        return "-"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _by_size(mapping: dict) -> list[tuple[str, Any]]:
    """Counts largest first (ties by name); a mapping that is not all numbers keeps its order."""
    items = [(str(k), v) for k, v in mapping.items()]
    if items and all(_is_number(v) for _, v in items):
        return sorted(items, key=lambda kv: (-kv[1], kv[0]))
    return items


def _rows(summary: dict, indent: int = 2, *, top: bool = True) -> list[tuple[int, str, str]]:
    """(indent, label, value) rows of one summary mapping (its own order at the top, by size below);
    nested mappings become indented groups."""
    rows: list[tuple[int, str, str]] = []
    for key, value in summary.items() if top else _by_size(summary):
        if key in _SKIP or value == {} or value == []:
            continue
        if isinstance(value, dict):
            rows.append((indent, key, ""))
            items = _by_size(value)
            for sub_key, sub in items[:_LIMIT]:
                if isinstance(sub, dict):
                    rows += [(indent + 2, sub_key, "")] + _rows(sub, indent + 4, top=False)
                else:
                    rows.append((indent + 2, sub_key, _fmt(sub)))
            if len(items) > _LIMIT:
                rows.append((indent + 2, f"(+{len(items) - _LIMIT} more)", ""))
        elif isinstance(value, list):
            rows.append((indent, key, ", ".join(_fmt(v) for v in value[:_LIMIT])))
        else:
            rows.append((indent, key, _fmt(value)))
    return rows


def render_stage(stage: str, summary: dict) -> list[str]:
    """One stage's block: ``[stage] 1.5 s`` then its rows, values in one column."""
    elapsed = summary.get("elapsed_s")
    lines = [f"[{stage}]" + (f" {elapsed:.1f} s" if _is_number(elapsed) else "")]
    scalars = {k: v for k, v in summary.items() if not isinstance(v, dict | list)}
    groups = {k: v for k, v in summary.items() if isinstance(v, dict | list)}
    rows = _rows(scalars) + _rows(groups)
    width = max((indent + len(label) for indent, label, _ in rows), default=0) + 2
    numbers = [value for _, _, value in rows if _NUMBER.match(value)]
    digits = max((len(v) for v in numbers), default=0)
    for indent, label, value in rows:  # numbers right-aligned in one column, text starts there
        shown = value.rjust(digits) if _NUMBER.match(value) else value
        lines.append(f"{' ' * indent}{label:<{width - indent}}{shown}".rstrip())
    return lines


def render_command(stage: str, summary: dict) -> str:
    """What `twhin-data <command>` prints: its block, then where the report is."""
    lines = render_stage(stage, {k: v for k, v in summary.items() if k != "report"})
    if summary.get("report"):
        lines += ["", f"Report: {summary['report']}"]
    return "\n".join(lines)


def render(report: dict) -> str:
    """What `twhin-data run` prints: one block per stage, the total time, the report index."""
    lines = ["", "twhin-data run: summary", "=" * 24]
    for stage, summary in report.get("stages", {}).items():
        lines += render_stage(stage, {k: v for k, v in (summary or {}).items() if k != "report"})
    lines += ["", f"All outputs under {report.get('output')} ({report.get('elapsed_s')} s)."]
    if report.get("reports"):
        lines.append(f"Reports of every stage: {report['reports']}")
    lines.append("")
    return "\n".join(lines)


def dump(summary: dict) -> str:
    """``--json``: the summary as one JSON document, in its own order."""
    return json.dumps(summary, indent=2, default=str)
