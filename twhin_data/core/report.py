"""Self-contained HTML reports: inline SVG charts and tables, no JavaScript, no CDN.

Small generic API, shared by every stage that writes ``reports/<stage>/report.html``::

    from twhin_data.core.report import Report

    report = Report("prepare report", subtitle="run of 2026-01-01")
    report.heading("Languages")
    report.bar_chart({"en": 120, "ja": 80}, title="Tweets per language", second={"en": 90, "ja": 70},
                     labels=("before", "after"))
    report.histogram([(0, 10, 5), (10, 20, 7)], title="Length (chars)")   # (low, high, count)
    report.table(["reason", "count"], [["too_short", 3]], title="Drops")
    report.paragraph("Free text (escaped).")
    html_text = report.render()          # deterministic: same inputs -> same bytes

Every value is HTML-escaped. Charts are plain SVG with <title> tooltips, readable offline.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence

from twhin_data.core import files

_COLORS = ("#4c78a8", "#f58518", "#54a24b", "#e45756")
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}"
    "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
    "svg{display:block;margin:.5em 0}.legend span{margin-right:1.5em}.sub{color:#666}"
)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3g}"


class Report:
    """Accumulates sections and renders one self-contained HTML page."""

    def __init__(self, title: str, *, subtitle: str | None = None):
        self._title = title
        self._parts: list[str] = [f"<h1>{_esc(title)}</h1>"]
        if subtitle:
            self._parts.append(f'<p class="sub">{_esc(subtitle)}</p>')

    def heading(self, text: str) -> Report:
        self._parts.append(f"<h2>{_esc(text)}</h2>")
        return self

    def paragraph(self, text: str) -> Report:
        self._parts.append(f"<p>{_esc(text)}</p>")
        return self

    def table(
        self, header: Sequence[str], rows: Sequence[Sequence[object]], *, title: str | None = None
    ) -> Report:
        """A table; numbers are formatted with thousands separators."""
        out = [f"<h3>{_esc(title)}</h3>"] if title else []
        out.append("<table><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            cells = (
                _fmt(c) if isinstance(c, (int, float)) and not isinstance(c, bool) else _esc(c) for c in row
            )
            out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        out.append("</table>")
        self._parts.append("".join(out))
        return self

    def bar_chart(
        self,
        values: Mapping[str, float],
        *,
        title: str,
        second: Mapping[str, float] | None = None,
        labels: tuple[str, str] = ("", ""),
        max_bars: int = 40,
        log_scale: bool = False,
    ) -> Report:
        """Horizontal bars, one per key (in the given order, at most `max_bars`), optionally paired."""
        keys = list(values)[:max_bars]
        series = [values] + ([second] if second is not None else [])
        self._parts.append(_svg_bars(keys, series, title=title, labels=labels, log_scale=log_scale))
        if len(values) > max_bars:
            self.paragraph(f"({len(values) - max_bars} more not shown)")
        return self

    def histogram(
        self, bins: Sequence[tuple[float, float, float]], *, title: str, x_label: str = ""
    ) -> Report:
        """Vertical bars for (low, high, count) bins, in order."""
        self._parts.append(_svg_histogram(list(bins), title=title, x_label=x_label))
        return self

    def render(self) -> str:
        body = "\n".join(self._parts)
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{_esc(self._title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
        )


def _svg_bars(keys, series, *, title, labels, log_scale) -> str:
    import math

    # The label column is as wide as the longest label (about 7 px a character at 12 px): never clipped.
    bar_h, gap, width = 14, 6, 520
    left = max(60, 12 + 7 * max([len(str(k)) for k in keys] or [0]))
    per_key = bar_h * len(series) + gap
    height = 30 + per_key * max(1, len(keys))
    top = max([max([float(s.get(k, 0) or 0) for k in keys] or [0]) for s in series] or [0]) or 1.0

    def scale(v: float) -> float:
        if log_scale:
            return width * math.log10(1 + v) / math.log10(1 + top)
        return width * v / top

    out = [f"<h3>{_esc(title)}{' (log scale)' if log_scale else ''}</h3>"]
    if len(series) > 1:
        out.append(
            '<div class="legend">'
            + "".join(
                f'<span><svg width="12" height="12" style="display:inline"><rect width="12" height="12" '
                f'fill="{_COLORS[i]}"/></svg> {_esc(lab)}</span>'
                for i, lab in enumerate(labels[: len(series)])
            )
            + "</div>"
        )
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 110}" height="{height}">')
    for row, key in enumerate(keys):
        y0 = 10 + row * per_key
        out.append(
            f'<text x="{left - 6}" y="{y0 + bar_h}" font-size="12" text-anchor="end">{_esc(key)}</text>'
        )
        for i, s in enumerate(series):
            v = float(s.get(key, 0) or 0)
            y = y0 + i * bar_h
            w = scale(v)
            out.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{_COLORS[i % 4]}">'
                f"<title>{_esc(key)}: {_fmt(v)}</title></rect>"
                f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 3}" font-size="11">{_fmt(v)}</text>'
            )
    out.append("</svg>")
    return "".join(out)


def _svg_histogram(bins, *, title, x_label) -> str:
    left, width, height, bottom = 60, 640, 220, 40
    top = max([float(b[2]) for b in bins] or [0]) or 1.0
    n = max(1, len(bins))
    bw = width / n
    uneven = len({round(float(high) - float(low), 9) for low, high, _count in bins}) > 1
    note = " (bins of unequal width, drawn equally wide; each labelled by its lower edge)" if uneven else ""
    out = [f"<h3>{_esc(title)}</h3>", f'<p class="sub">y: count; x: {_esc(x_label)}{_esc(note)}</p>']
    out.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" height="{height + bottom}">'
    )
    out.append(f'<text x="{left - 6}" y="14" font-size="11" text-anchor="end">{_fmt(top)}</text>')
    out.append(f'<text x="{left - 6}" y="{height}" font-size="11" text-anchor="end">0</text>')
    for i, (low, high, count) in enumerate(bins):
        h = height * float(count) / top
        x = left + i * bw
        out.append(
            f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{max(bw - 1, 1):.1f}" height="{h:.1f}" '
            f'fill="{_COLORS[0]}"><title>[{_fmt(low)}, {_fmt(high)}): {_fmt(count)}</title></rect>'
        )
        if n <= 12 or i % max(1, n // 10) == 0:
            out.append(f'<text x="{x:.1f}" y="{height + 14}" font-size="10">{_fmt(low)}</text>')
    out.append(
        f'<line x1="{left}" y1="{height}" x2="{left + width}" y2="{height}" stroke="#888"/>'
        f'<text x="{left + width / 2:.0f}" y="{height + 32}" font-size="12" text-anchor="middle">'
        f"{_esc(x_label)}</text></svg>"
    )
    return "".join(out)


def stats_report(title: str, stats: dict, *, subtitle: str | None = None) -> str:
    """A report of any stats.json document: its scalars in one table, each mapping of numbers as a
    table and, when it has several entries, a bar chart sorted by size; a mapping of records as a
    table with one column per field."""
    report = Report(title, subtitle=subtitle)
    scalars = [[k, v] for k, v in stats.items() if not isinstance(v, dict | list)]
    if scalars:
        report.table(["", "value"], scalars, title="Summary")
    for key, value in stats.items():
        if not isinstance(value, dict) or not value:
            continue
        flat = {k: v for k, v in value.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        if len(flat) == len(value):
            ordered = dict(sorted(flat.items(), key=lambda kv: (-kv[1], str(kv[0]))))
            report.table([key, "count"], [[k, v] for k, v in ordered.items()], title=key.replace("_", " "))
            if len(ordered) > 1:
                report.bar_chart(ordered, title=f"{key.replace('_', ' ')}, by size")
        elif all(isinstance(v, dict) and not any(isinstance(x, dict | list) for x in v.values()) for v in value.values()):
            # A mapping of records (e.g. per output: rows before, rows removed): one column per field.
            columns = list(dict.fromkeys(field for record in value.values() for field in record))
            rows = [[k, *(record.get(c, "") for c in columns)] for k, record in value.items()]
            report.table([key, *columns], rows, title=key.replace("_", " "))
        else:
            rows = [[k, json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v] for k, v in value.items()]
            report.table([key, "value"], rows, title=key.replace("_", " "))
    return report.render()


def write_stats(output: str, stage: str, stats: dict, render: Callable[[dict], str] | None = None) -> str:
    """Writes ``<output>/reports/<stage>/stats.json`` (and ``report.html``, `render` of the stats,
    when given); returns the stats.json path. Every stage writes its statistics through here.

    Both are meant to be shared with the data: paths of this machine are written relative to
    `output`, or by their file name when outside it (`files.shareable`)."""
    stats = files.shareable(stats, output)
    report_dir = files.join(output, "reports", stage)
    path = files.join(report_dir, "stats.json")
    files.write_json(path, stats)
    if render is not None:
        files.write_bytes_atomic(files.join(report_dir, "report.html"), render(stats).encode("utf-8"))
    return path
