"""The layout rules, checked on the source tree: stage sub-packages, imports that only go down,
one home for each mechanism, module sizes, and docs that speak only of what ships here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp
import pytest

import twhin_data

ROOT = Path(twhin_data.__file__).parent
REPO = ROOT.parent
STAGES = ("hydrate", "prepare", "graph", "shard", "benchmark")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def test_each_stage_is_a_sub_package_of_transforms():
    transforms = ROOT / "transforms"
    for stage in STAGES:
        assert (transforms / stage / "__init__.py").is_file(), stage
    flat = [p.name for p in transforms.glob("*.py") if p.stem.split("_")[0] in STAGES]
    assert flat == [], "stage code belongs in its sub-package"


def test_no_module_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            recurse = False
            for j in range(i, len(edges[node])):
                nxt = edges[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    recurse = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if recurse:
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def test_no_import_cycle_among_modules_counting_function_level_imports():
    graph = grimp.build_graph("twhin_data")  # grimp reads every import statement, in functions too
    modules = {m for m in graph.modules if m.startswith("twhin_data")}
    assert len(modules) > 50
    assert _cycles(graph, modules) == []


def test_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(name)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.y", imported="a.z")
    assert _cycles(graph, {"a.x", "a.y", "a.z"}) == [["a.x", "a.y"]]


def _imports(path: Path) -> list[ast.ImportFrom]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom)]


def test_no_private_name_imported_across_modules():
    found = [
        f"{path.relative_to(REPO)}: {node.module}.{alias.name}"
        for path in ROOT.rglob("*.py")
        for node in _imports(path)
        if (node.module or "").startswith("twhin_data")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert found == []


def test_no_re_export_shims():
    shims = [
        f"{path.relative_to(REPO)}:{number}"
        for path in ROOT.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "noqa: F401" in line or "re-export" in line
    ]
    assert shims == []


def test_tweet_id_pattern_is_defined_once():
    pattern = re.compile(r"\[0-9\]\{1,19\}|\\d\{1,19\}")
    homes = [str(p.relative_to(REPO)) for p in ROOT.rglob("*.py") if pattern.search(p.read_text())]
    assert homes == ["twhin_data/core/ids.py"]


def test_plain_np_unique_only_through_sorted_unique():
    """numpy 2.3+ sends a plain ``np.unique(x)`` through a hash table first (17x slower than a sort
    on 1M IDs): distinct values come from core.tables.sorted_unique; np.unique only with return_* or axis."""
    calls = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("np.unique", "numpy.unique"):
                if not any(k.arg and (k.arg.startswith("return_") or k.arg == "axis") for k in node.keywords):
                    calls.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert calls == []


#: Files outside the repository and requirement tags of notes that do not ship with it.
OUTSIDE = re.compile(
    r"\.\./shared|DESIGN\.md|house-style|beam-and-anchors|twhin-bert-data\.md|reference/x-api"
    r"|x-api\.md (?:R|section |[0-9])|\bR(?:[1-9]|1[0-9]|2[0-2])\b(?![-.:/\w])"
)


def _text_files() -> list[Path]:
    docs = sorted((REPO / "docs").glob("*.md"))
    code = sorted(p for p in ROOT.rglob("*") if p.suffix in (".py", ".md", ".yaml", ".txt"))
    return [REPO / "README.md", *docs, *code]


@pytest.mark.parametrize("path", _text_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_code_and_docs_speak_only_of_what_ships(path: Path):
    hits = [
        f"{number}: {line.strip()[:120]}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert hits == []


def test_outside_reference_pattern_catches_what_it_should():
    for text in ("see ../shared/DESIGN.md", "the R5 set", "(R13)", "x-api.md R21", "x-api.md 1.8 field map"):
        assert OUTSIDE.search(text), text
    for text in ("docs/x-api.md", "R2D2", "CORPUS", "the 0.7 exponent", "R-tree"):
        assert not OUTSIDE.search(text), text


def test_architecture_doc_names_only_paths_that_exist():
    doc = (REPO / "docs" / "architecture.md").read_text()
    tree = doc.split("```")[1]  # the layout block
    folders = {f"twhin_data/{m}" for m in re.findall(r"^  (\w+)/", tree, re.M)}
    folders |= {f"twhin_data/transforms/{m}" for m in re.findall(r"^    (\w+)/", tree, re.M)}
    folders |= {m for m in re.findall(r"^(\w+)/", tree, re.M) if m != "twhin_data"}
    assert {"twhin_data/core", "twhin_data/transforms/shard", "tests"} <= folders
    missing = sorted(f for f in folders if not (REPO / f).is_dir())
    known = {p.name for root in ("twhin_data", "tests", "bench", "scripts") for p in (REPO / root).rglob("*.py")}
    named = set(re.findall(r"\b(\w+\.py)\b", doc))
    assert len(named) > 30
    missing += sorted(n for n in named if n not in known)
    paths = set(re.findall(r"`((?:twhin_data|tests|bench|docs|scripts|deploy)/[\w/.-]*)`", doc))
    missing += sorted(p for p in paths if not (REPO / p.rstrip("/")).exists())
    assert missing == []
