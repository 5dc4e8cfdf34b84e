"""prepare's near-dedup step 3 (transforms/prepare/clusters.py) against a plain-Python reference:
edges spread over many spill files, read one file at a time, give the map, counts and report
examples of one in-memory pass over all of them."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twhin_data.core.pool import Tagged
from twhin_data.core.spill import SliceRef, read_slices, write_slices
from twhin_data.core.tags import COUNTS, STATS
from twhin_data.transforms.prepare import clusters
from twhin_data.transforms.prepare.near_dedup import EDGE_LAYOUT, EXAMPLES, MAP_FILE, MINHASH


def _reference_components(a: list[int], b: list[int]) -> dict[int, int]:
    """Node -> lowest node of its component (breadth-first search)."""
    adjacent: dict[int, set[int]] = {}
    for x, y in zip(a, b, strict=True):
        adjacent.setdefault(x, set()).add(y)
        adjacent.setdefault(y, set()).add(x)
    root: dict[int, int] = {}
    for start in sorted(adjacent):
        if start in root:
            continue
        seen, todo = {start}, [start]
        while todo:
            for nxt in adjacent[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        for node in seen:
            root[node] = min(seen)
    return root


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_union_find_in_batches_equals_a_search(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 400, 600).astype(np.uint64) * np.uint64(7919)
    b = rng.integers(0, 400, 600).astype(np.uint64) * np.uint64(7919)
    expected = _reference_components(a.tolist(), b.tolist())
    nodes, label = clusters.connected_components(a, b)
    assert {int(n): int(nodes[r]) for n, r in zip(nodes, label, strict=True)} == expected
    # The same edges joined a batch at a time (as step 3 reads its spill files) give the same roots.
    parent = np.arange(nodes.size)
    u, v = np.searchsorted(nodes, a), np.searchsorted(nodes, b)
    for start in range(0, a.size, 37):
        clusters.union(parent, u[start : start + 37], v[start : start + 37])
    assert np.array_equal(clusters.flatten(parent), label)


def _edges(rng: random.Random, n: int) -> list[dict]:
    """MinHash edges (id > kept, as the verify step writes them; repeated pairs, null languages)
    and exact / view copies, some of whose kept tweets are clustered."""
    rows = []
    for _ in range(n):
        if rng.random() < 0.7:
            kept, removed = sorted(rng.sample(range(100, 400), 2))
            reason, kept_lang = MINHASH, rng.choice(["en", "ja", None])
        else:
            kept, removed = rng.randint(100, 400), rng.randint(380, 460)
            reason, kept_lang = rng.choice(["exact_duplicate", "duplicate_text"]), None
        rows.append(
            {
                "id": removed, "kept": kept, "reason": reason, "lang": rng.choice(["en", "fr", None, ""]),
                "kept_lang": kept_lang, "jaccard": 0.5, "view": f"v{removed}-{rng.randint(0, 3)}",
                "kept_view": f"k{kept}-{rng.randint(0, 3)}" if rng.random() < 0.9 else None,
            }
        )  # fmt: skip
    return rows


def _spill(tmp_path, rows: list[dict], files: int) -> list[SliceRef]:
    refs = []
    step = -(-len(rows) // files)
    for f in range(files):
        part = rows[f * step : (f + 1) * step]
        halves = [(0, pa.Table.from_pylist(half, schema=EDGE_LAYOUT)) for half in (part[: len(part) // 2], part[len(part) // 2 :])]
        refs.extend(ref for _, ref in write_slices(str(tmp_path / f"edges-{f:05d}.arrow"), EDGE_LAYOUT, halves))
    return refs


def _reference(rows: list[dict]) -> tuple[list[dict], dict, dict]:
    near = [r for r in rows if r["reason"] == MINHASH]
    root = _reference_components([r["id"] for r in near], [r["kept"] for r in near])
    moved = sorted(n for n, r in root.items() if n != r)

    def first(node, side, column):
        return next((r[column] for r in near if r[side] == node and r[column] is not None), None)

    removed = [
        {"id": n, "kept": root[n], "reason": MINHASH, "lang": own if (own := first(n, "id", "lang")) is not None else first(n, "kept", "kept_lang")}
        for n in moved
    ]  # "" is a known language here (the counts below read it as "und")
    copies = [r for r in rows if r["reason"] != MINHASH]
    stays = {r["kept"] for r in copies} - set(moved)
    removed += [
        {"id": r["id"], "kept": root.get(r["kept"], r["kept"]), "reason": r["reason"], "lang": r["lang"]} for r in copies
    ]
    best: dict[int, dict] = {}
    for r in removed:
        if r["id"] == r["kept"] or r["id"] in stays:
            continue
        if r["id"] not in best or (r["kept"], r["reason"]) < (best[r["id"]]["kept"], best[r["id"]]["reason"]):
            best[r["id"]] = r
    expected = [
        {"tweet_id": str(i), "kept_tweet_id": str(r["kept"]), "reason": r["reason"], "lang": r["lang"]}
        for i, r in sorted(best.items())
    ]
    counts: dict = {}
    for r in expected:
        if r["reason"] == MINHASH:
            counts[r["lang"] or "und"] = counts.get(r["lang"] or "und", 0) - 1

    def view(node):
        for side, column in (("id", "view"), ("kept", "kept_view")):
            hit = next((r for r in near if r[side] == node), None)
            if hit is not None:
                return hit[column] or ""
        return ""

    size: dict[int, int] = {}
    for r in near:
        size[root[r["id"]]] = size.get(root[r["id"]], 0) + 1
    top = sorted(size, key=lambda r: (-size[r], r))[:EXAMPLES]
    examples = {}
    for n, r in enumerate(top):
        members = sorted({x["id"] for x in near if root[x["id"]] == r})
        examples[str(n)] = {"kept": view(r), "removed": "\n".join(view(m) for m in members[:3]), "size": str(len(members) + 1)}
    stats = {"removed": sum(r["reason"] == MINHASH for r in expected), "clusters": len(set(root.values()))}
    return expected, counts, {"near_dedup": stats, "near_examples": examples}


@pytest.mark.parametrize(("seed", "files", "merge_every"), [(0, 1, 1 << 20), (1, 9, 5), (2, 23, 1)])
def test_components_over_many_files_equal_one_pass_over_all_edges(tmp_path, monkeypatch, seed, files, merge_every):
    monkeypatch.setattr(clusters, "MERGE_EVERY", merge_every)  # pass 1 merges its node IDs early
    rows = _edges(random.Random(seed), 900)
    refs = _spill(tmp_path / "edges", rows, files)
    assert read_slices(refs, EDGE_LAYOUT).to_pylist() == rows  # the global order the reference reads
    random.Random(seed).shuffle(refs)  # refs arrive from a shuffle in any order
    out = clusters.components((0, refs), num_parts=3, part_salt="s", tmp=str(tmp_path / "tmp"), map_dir=str(tmp_path / "map"))
    expected, counts, stats = _reference(rows)
    assert pq.read_table(tmp_path / "map" / MAP_FILE).to_pylist() == expected
    tagged = {t.tag: t.value for t in out if isinstance(t, Tagged)}
    assert list(tagged[COUNTS].items()) == list(counts.items())  # languages in the order of their first removal
    assert tagged[STATS] == stats
    drops = [ref for ref in out if not isinstance(ref, Tagged)]
    dropped = read_slices([ref for _, ref in drops], clusters.DROP_LAYOUT).column("tweet_id").to_pylist()
    assert sorted(dropped) == sorted(r["tweet_id"] for r in expected if r["reason"] == MINHASH)


def test_components_without_edges_write_an_empty_map(tmp_path):
    out = clusters.components((0, []), num_parts=2, part_salt="s", tmp=str(tmp_path / "tmp"), map_dir=str(tmp_path / "map"))
    assert pq.read_table(tmp_path / "map" / MAP_FILE).num_rows == 0
    assert {t.tag: t.value for t in out} == {
        COUNTS: {},
        STATS: {"near_dedup": {"removed": 0, "clusters": 0}, "near_examples": {}},
    }
