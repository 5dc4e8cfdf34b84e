"""Renders twhin-data's HTML reports in a real headless browser and fails on clipped or overlapping text.

    python scripts/check_reports.py OUT [--screenshots DIR] [--chromium /usr/bin/chromium]

OUT is a run's output folder (every ``report.html`` below it and ``reports/index.html`` are
checked) or one HTML file. Each page is loaded in headless Chromium (Debian's ``chromium``
package) with a small script appended that measures, after layout, every SVG text against its
chart's box (clipped) and against the other texts of the chart (overlapping), and every link of
an index against the files it names. With --screenshots, a PNG of each page is written too.
Exit status: 0 when every page passes, 1 otherwise, 2 when Chromium is missing.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHECK = """
<script>
(function () {
  const problems = [];
  const box = (el) => el.getBoundingClientRect();
  const area = (a, b) => Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left)) *
                         Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top));
  document.querySelectorAll("svg").forEach((svg, i) => {
    const frame = box(svg);
    const texts = Array.from(svg.querySelectorAll("text")).filter((t) => t.textContent.trim());
    texts.forEach((t) => {
      const r = box(t);
      if (r.left < frame.left - 0.5 || r.right > frame.right + 0.5 || r.top < frame.top - 0.5 ||
          r.bottom > frame.bottom + 0.5) {
        problems.push(`chart ${i + 1}: text "${t.textContent.trim()}" is clipped`);
      }
    });
    for (let a = 0; a < texts.length; a++) {
      for (let b = a + 1; b < texts.length; b++) {
        if (area(box(texts[a]), box(texts[b])) > 2) {
          problems.push(`chart ${i + 1}: "${texts[a].textContent.trim()}" overlaps "${texts[b].textContent.trim()}"`);
        }
      }
    }
  });
  const pre = document.createElement("pre");
  pre.id = "twhin-check";
  pre.textContent = JSON.stringify({problems: problems, charts: document.querySelectorAll("svg").length});
  document.body.appendChild(pre);
})();
</script>
"""
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=3000",
]


def pages(target: Path) -> list[Path]:
    if target.is_file():
        return [target]
    return sorted(target.rglob("report.html")) + sorted(target.rglob("index.html"))


def check_links(page: Path) -> list[str]:
    """Links of an index page that name no file."""
    hrefs = re.findall(r'href="([^"#:]+)"', page.read_text(encoding="utf-8"))
    return [f"link {href} names no file" for href in hrefs if not (page.parent / href).is_file()]


def render(chromium: str, page: Path, workdir: Path, screenshot: Path | None) -> list[str]:
    copy = workdir / f"{abs(hash(str(page)))}.html"
    text = page.read_text(encoding="utf-8")
    copy.write_text(text.replace("</body>", CHECK + "</body>") if "</body>" in text else text + CHECK, "utf-8")
    profile = workdir / "profile"
    cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1600", "--dump-dom", copy.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="twhin-check">(.*?)</pre>', done.stdout, re.S)
    if not match:
        return [f"the page did not render (chromium exit {done.returncode}: {done.stderr.strip()[-300:]})"]
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    if screenshot is not None:
        shot = [chromium, *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1600", f"--screenshot={screenshot}", page.as_uri()]
        subprocess.run(shot, capture_output=True, timeout=120)
    return result["problems"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="A run's output folder or one HTML file.")
    parser.add_argument("--screenshots", type=Path, default=None, help="Write a PNG of each page here.")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"check_reports: {args.chromium} not found (apt-get install chromium)", file=sys.stderr)
        return 2
    found = pages(args.target)
    if not found:
        print(f"check_reports: no report.html or index.html under {args.target}", file=sys.stderr)
        return 1
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for number, page in enumerate(found):
            shot = args.screenshots / f"{number:02d}-{page.parent.name}.png" if args.screenshots else None
            problems = render(args.chromium, page, Path(tmp), shot)
            if page.name == "index.html":
                problems += check_links(page)
            failed += bool(problems)
            print(f"{'FAIL' if problems else 'ok  '} {page}")
            for problem in problems:
                print(f"     {problem}")
    print(f"{len(found) - failed} of {len(found)} pages pass")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
