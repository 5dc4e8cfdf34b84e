"""Runs one benchmark or all of them: every bench/bench_*.py module exposing main(argv) -> int.

  python bench/run.py --list            names and one-line descriptions
  python bench/run.py NAME [args...]    run bench/bench_NAME.py with its own arguments
  python bench/run.py all               run every benchmark with its default (small) arguments

`synth` (generator throughput, bench/synth.py speed) is listed too. Benchmarks print their figures;
record them in bench/RESULTS.md under your own heading (machine, date, ratios vs the baseline
measured in the same run).
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent
#: Benchmarks that are not bench_*.py files: name -> (file, arguments put before the user's).
EXTRA = {"synth": ("synth.py", ["speed"])}


def discover() -> dict[str, tuple[Path, list[str]]]:
    """Benchmark name -> (script path, leading arguments), sorted by name."""
    found = {p.stem[len("bench_") :]: (p, []) for p in BENCH_DIR.glob("bench_*.py")}
    for name, (file, lead) in EXTRA.items():
        if (BENCH_DIR / file).is_file():
            found.setdefault(name, (BENCH_DIR / file, lead))
    return dict(sorted(found.items()))


def load(path: Path) -> ModuleType:
    """Imports a benchmark script by path (bench/ is not a package)."""
    if str(BENCH_DIR) not in sys.path:  # as when run directly: benchmarks may import bench/synth.py
        sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(f"bench_run_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def describe(path: Path) -> str:
    """The first line of the script's module docstring (read without importing it)."""
    import ast

    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else "(no description)"


def run_one(name: str, path: Path, argv: list[str]) -> tuple[int, float]:
    """Runs one benchmark's main(argv); returns (exit code, seconds)."""
    print(f"=== {name}: {path.relative_to(BENCH_DIR.parent)} {' '.join(argv)}", flush=True)
    start = time.perf_counter()
    saved_argv = sys.argv
    sys.argv = [str(path), *argv]  # for benchmarks that read sys.argv when argv is empty
    try:
        main: Callable[[list[str]], int | None] = load(path).main
        code = main(argv) or 0
    except SystemExit as exc:  # argparse inside a benchmark
        code = exc.code if isinstance(exc.code, int) else 1
    except Exception:  # one broken benchmark must not stop `all`
        traceback.print_exc()
        code = 1
    finally:
        sys.argv = saved_argv
    elapsed = time.perf_counter() - start
    print(f"=== {name}: exit {code} in {elapsed:.1f}s", flush=True)
    return code, elapsed


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    benches = discover()
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    if argv[0] == "--list":
        for name, (path, _) in benches.items():
            print(f"{name:24s} {describe(path)}")
        return 0
    if argv[0] == "all":
        results = {name: run_one(name, path, list(lead)) for name, (path, lead) in benches.items()}
        print("\nsummary:")
        for name, (code, elapsed) in results.items():
            print(f"  {name:24s} {'ok' if code == 0 else f'FAILED ({code})':12s} {elapsed:8.1f}s")
        return 0 if all(code == 0 for code, _ in results.values()) else 1
    name, rest = argv[0], argv[1:]
    if name not in benches:
        print(f"error: unknown benchmark {name!r}; known: {', '.join(benches) or 'none'}", file=sys.stderr)
        return 2
    path, lead = benches[name]
    return run_one(name, path, lead + rest)[0]


if __name__ == "__main__":
    sys.exit(main())
