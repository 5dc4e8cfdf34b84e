"""Graph stage: BuildGraph semantics, conservation, CLI end to end, determinism, multi-processing."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.graph.test_pairs import planted, write_csv
from twhin_data.core.spill import read_slices, write_slices
from twhin_data.runners.cli import main
from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS
from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph import read_steps as rs
from twhin_data.transforms.graph.build_steps import EDGES_SCHEMA
from twhin_data.transforms.graph.transform import BuildGraph
from twhin_data.transforms.graph.write_steps import GraphOutputs

#: Whole commands end to end: not in the fast suite (-m "not slow").
pytestmark = pytest.mark.slow

QUIET = ["--log_level", "WARNING"]


def edge_table(rows: list[tuple[int, int, int]]) -> pa.Table:
    """(user, tweet, ts) fav edges."""
    return pa.table(
        {
            "user": pa.array([r[0] for r in rows], pa.uint64()),
            "tweet": pa.array([r[1] for r in rows], pa.uint64()),
            "rel": pa.array([0] * len(rows), pa.int8()),
            "ts": pa.array([r[2] for r in rows], pa.int64()),
            "source": pa.array([0] * len(rows), pa.int8()),
        }
    )


# u1's most recent edge goes to tweet 40, which only u1 likes: round 1 wastes one of u1's two cap
# slots on it; round 2 gives the slot back to tweet 10.
ITERATION_CASE = [(1, 10, 1), (1, 20, 2), (1, 40, 3), (2, 10, 1), (2, 20, 2), (3, 10, 1), (3, 20, 2)]


def _read_results(tables: list[pa.Table], tmp: Path) -> list:
    """Edge tables as read_steps.read_input hands them on: (index, [SliceRef], sample)."""
    out = []
    for i, table in enumerate(tables):
        refs = [ref for _, ref in write_slices(str(tmp / f"in-{i}.arrow"), gc.EDGE_SCHEMA, [(0, table)])]
        out.append((i, refs, rs.sample_edges(table, 256 * 3)))
    return out


@pytest.mark.parametrize(
    "iterations,expected",
    [
        (1, [(0, 1, 1, 20), (1, 0, 2, 10), (1, 1, 2, 20), (2, 0, 3, 10), (2, 1, 3, 20)]),
        (2, [(0, 0, 1, 10), (0, 1, 1, 20), (1, 0, 2, 10), (1, 1, 2, 20), (2, 0, 3, 10), (2, 1, 3, 20)]),
    ],
)
def test_build_graph_cap_min_rounds_and_indices(tmp_path, iterations, expected):
    inputs = _read_results([edge_table(ITERATION_CASE[:4]), edge_table(ITERATION_CASE[4:])], tmp_path)
    out = tmp_path / "out"
    with TestPipeline(runner="FnApiRunner") as p:
        graph = (
            p
            | beam.Create(inputs)
            | BuildGraph(
                num_shards=3,
                max_per_user=2,
                min_per_tweet=2,
                iterations=iterations,
                cap_policy="recent",
                outputs=GraphOutputs(str(out), ("fav",)),
                tmp=str(tmp_path / "spill"),
            )
        )
        edges = graph["edges"] | "ReadEdges" >> beam.Map(lambda item: read_slices([item[1]], EDGES_SCHEMA))
        rows = edges | "EdgeTuples" >> beam.FlatMap(
            lambda t: zip(*(t.column(c).to_pylist() for c in ("lhs", "rhs", "user", "tweet")), strict=True)
        )
        engagers = edges | "Engagers" >> beam.FlatMap(
            lambda t: zip(*(t.column(c).to_pylist() for c in ("tweet", "engagers")), strict=True)
        ) | beam.Distinct()
        assert_that(rows, equal_to(expected), label="CheckEdges")
        assert_that(engagers, equal_to([(10, 3 if iterations == 2 else 2), (20, 3)]), label="CheckEngagers")
    users = pq.read_table(out / "graph" / "users").to_pylist()
    tweets = pq.read_table(out / "graph" / "tweets").to_pylist()
    assert [(u["index"], u["user_id"]) for u in users] == [(0, "1"), (1, "2"), (2, "3")]
    assert [(t["index"], t["tweet_id"]) for t in tweets] == [(0, "10"), (1, "20")]
    assert len(pq.read_table(out / "graph" / "edges")) == len(expected)


def _messy_inputs(tmp: Path) -> list[str]:
    """Every kind of row the reader can meet, under mapped column names (uid, tid, action, time)."""
    (tmp / "logs").mkdir()
    (tmp / "logs" / "a.csv").write_text(
        "uid,tid,action,time\n"
        "1,100,fav,2022-01-01T00:00:00Z\n"
        "1,100,fav,2022-01-01T01:00:00Z\n"  # duplicate
        "2,100,like,1641000000\n"
        "3,101,follow,2022-01-01T00:00:00Z\n"  # invalid_type
        "abc,101,fav,2022-01-01\n"  # invalid_user_id
        "4,101\n"  # bad_row
        "4,101,reply,yesterday\n"  # invalid_ts
        "4,102,quote,2022-01-01T00:00:00Z\n"  # filtered_type
        "5,102,fav,2020-01-01T00:00:00Z\n"  # filtered_time_window
        "5,103,fav,\n"  # no ts while a window is set: filtered_time_window
    )
    (tmp / "logs" / "empty.csv").write_text("uid,tid,action,time\n")  # a header without rows
    (tmp / "logs" / "b.jsonl").write_text(
        '{"uid": 6, "tid": "104", "action": "retweet", "time": 1641000000000}\n'
        "{not json\n"
        "[1, 2]\n"
        '{"uid": "7", "tid": "1.5e18", "action": "fav", "time": "2022-01-01T00:00:00Z"}\n'
    )
    ts = pa.array([1641081600000, 1641168000000], pa.timestamp("ms", tz="UTC"))
    pq.write_table(pa.table({"uid": ["8", "8"], "tid": ["105", "105"], "action": ["reply"] * 2, "time": ts}),
                   tmp / "logs" / "c.parquet")  # fmt: skip
    (tmp / "hyd" / "tweets").mkdir(parents=True)
    created = 1641340800000
    tweets = [
        {"tweet_id": "200", "author_id": "9", "created_at": created, "referenced_tweets": [{"type": "replied_to", "id": "100"}]},
        {"tweet_id": "201", "author_id": "9", "created_at": created,
         "referenced_tweets": [{"type": "retweeted", "id": "104"}, {"type": "quoted", "id": "105"}]},
        {"tweet_id": "202", "author_id": None, "created_at": created, "referenced_tweets": [{"type": "replied_to", "id": "100"}]},
        {"tweet_id": "203", "author_id": "10", "created_at": created, "referenced_tweets": []},
    ]  # fmt: skip
    pq.write_table(to_table(tweets, TWEETS), tmp / "hyd" / "tweets" / "part-00000.parquet")
    return ["--engagements", str(tmp / "logs"), "--tweets", str(tmp / "hyd"), "--column_map",
            "user_id=uid,tweet_id=tid,type=action,ts=time", "--types", "fav,reply,retweet", "--start", "2021-06-01",
            "--min_per_tweet", "1", "--max_per_user", "0"]  # fmt: skip


def test_conservation_every_row_accounted(tmp_path):
    out = tmp_path / "out"
    assert main(["graph", *_messy_inputs(tmp_path), "--output", str(out), *QUIET]) == 0
    stats = json.loads((out / "reports" / "graph" / "stats.json").read_text())
    assert stats["rejected"] == {
        "bad_json": 2, "bad_row": 1, "invalid_ts": 1, "invalid_tweet_id": 1, "invalid_type": 1, "invalid_user_id": 2
    }  # fmt: skip
    assert stats["filtered"] == {"type": 2, "time_window": 2, "max_per_user": 0, "min_per_tweet": 0, "benchmark": 0}
    assert stats["duplicates"] == 2 and stats["edges"] == 6 and stats["input"]["derived_rows"] == 4
    assert stats["accounting"] == {
        "in": 20,
        "out": 6,
        "rejected": 8,
        "filtered": 4,
        "duplicates": 2,
        "balanced": True,
    }
    errors = pq.read_table(out / "errors" / "graph")
    assert errors.num_rows == 8 and set(errors.column("stage").to_pylist()) == {"graph"}
    engagements = pq.read_table(out / "engagements").to_pylist()
    got = sorted((r["user_id"], r["tweet_id"], r["type"], r["source"]) for r in engagements)
    assert got == [
        ("1", "100", "fav", "log"), ("2", "100", "fav", "log"), ("6", "104", "retweet", "log"),
        ("8", "105", "reply", "log"), ("9", "100", "reply", "derived"), ("9", "104", "retweet", "derived"),
    ]  # fmt: skip
    first = [r for r in engagements if r["user_id"] == "1"][0]
    assert first["ts"].isoformat() == "2022-01-01T00:00:00+00:00"  # the earliest duplicate is kept
    assert "<svg" in (out / "reports" / "graph" / "report.html").read_text()


def test_tweets_only_derives_engagements(tmp_path):
    _messy_inputs(tmp_path)
    out = tmp_path / "out"
    argv = ["graph", "--tweets", str(tmp_path / "hyd"), "--output", str(out), "--min_per_tweet", "1", *QUIET]
    assert main(argv) == 0
    stats = json.loads((out / "reports" / "graph" / "stats.json").read_text())
    # 4 references: reply, retweet, quote (kept: all types by default) and one without an author.
    assert stats["accounting"] == {
        "in": 4,
        "out": 3,
        "rejected": 1,
        "filtered": 0,
        "duplicates": 0,
        "balanced": True,
    }
    got = sorted(
        (r["user_id"], r["tweet_id"], r["type"]) for r in pq.read_table(out / "engagements").to_pylist()
    )
    assert got == [("9", "100", "reply"), ("9", "104", "retweet"), ("9", "105", "quote")]


def _digest(root: Path) -> dict[str, str]:
    names = ["engagements", "graph", "pairs", "reports/graph/stats.json"]
    out = {}
    for name in names:
        base = root / name
        for path in sorted([base] if base.is_file() else base.rglob("*")):
            if path.is_file():
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def planted_graph(tmp_path_factory) -> tuple[Path, list[str]]:
    tmp = tmp_path_factory.mktemp("graph")
    rows, _ = planted(seed=21)
    argv = ["graph", "--engagements", str(write_csv(tmp / "eng.csv", rows)), "--max_per_user", "8"]
    argv += ["--min_per_tweet", "4", "--filter_iterations", "3", "--partitions", "5", *QUIET]
    assert main([*argv, "--output", str(tmp / "run1")]) == 0
    return tmp, argv


def test_graph_invariants_and_contiguous_indices(planted_graph):
    tmp, _ = planted_graph
    run = tmp / "run1"
    edges = pq.read_table(run / "graph" / "edges")
    users = pq.read_table(run / "graph" / "users").sort_by("index")
    tweets = pq.read_table(run / "graph" / "tweets").sort_by("index")
    for vocab, column in ((users, "user_id"), (tweets, "tweet_id")):
        assert vocab.column("index").to_pylist() == list(range(vocab.num_rows))
        ids = [int(x) for x in vocab.column(column).to_pylist()]
        assert ids == sorted(ids)  # index = rank of the ID in numeric order
    lhs, rhs = edges.column("lhs").to_numpy(), edges.column("rhs").to_numpy()
    assert np.bincount(lhs).max() <= 8
    assert np.bincount(lhs).tolist() == users.column("degree").to_pylist()
    assert np.bincount(rhs, minlength=tweets.num_rows).tolist() == tweets.column("degree").to_pylist()
    engagers = {}
    for _user, t in set(zip(lhs.tolist(), rhs.tolist(), strict=True)):
        engagers[t] = engagers.get(t, 0) + 1
    assert min(engagers.values()) >= 4 and len(engagers) == tweets.num_rows
    stats = json.loads((run / "reports" / "graph" / "stats.json").read_text())
    assert stats["accounting"]["balanced"] and stats["edges"] == edges.num_rows
    assert (
        stats["users"] == users.num_rows
        and sum(b["count"] for b in stats["degrees"]["user"]) == users.num_rows
    )
    pbg_lines = sum(len(p.read_text().splitlines()) for p in (run / "graph" / "pbg" / "edges").glob("*.tsv"))
    assert pbg_lines == edges.num_rows
    relations = pq.read_table(run / "graph" / "relations").to_pylist()
    assert [r["name"] for r in relations] == ["fav", "reply", "retweet", "quote"]


def test_same_input_same_bytes(planted_graph):
    tmp, argv = planted_graph
    assert main([*argv, "--output", str(tmp / "run2")]) == 0
    first, second = _digest(tmp / "run1"), _digest(tmp / "run2")
    assert len(first) > 10 and first == second


def test_worker_count_does_not_change_a_byte(planted_graph):
    """--workers N runs the read, build, write and pair steps in N processes (spill files between
    them): one worker and three give the bytes of the default run."""
    tmp, argv = planted_graph
    for workers in (1, 3):
        assert main([*argv, "--output", str(tmp / f"w{workers}"), f"--workers={workers}"]) == 0
        assert _digest(tmp / f"w{workers}") == _digest(tmp / "run1"), workers
        assert not (tmp / f"w{workers}" / "_tmp_graph").exists()  # the spill folder is gone


def test_multi_processing_run_equals_in_memory_run(planted_graph):
    tmp, argv = planted_graph
    beam_flags = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert main([*argv, "--output", str(tmp / "mp"), *beam_flags]) == 0
    assert _digest(tmp / "run1") == _digest(tmp / "mp")


def test_sample_end_to_end_with_default_flags(tmp_path, sample_dir):
    sample = sample_dir / "sample_engagements.csv"
    if not sample.exists():
        pytest.skip("the bundled sample is not generated yet")
    out = tmp_path / "out"
    assert (
        main(["graph", "--engagements", str(sample), "--output", str(out), "--min_per_tweet", "2", *QUIET])
        == 0
    )
    stats = json.loads((out / "reports" / "graph" / "stats.json").read_text())
    assert stats["accounting"]["balanced"] and stats["edges"] > 0 and stats["pairs"]["cooccurrence"] > 0
    namespace: dict = {"__file__": str(out / "graph" / "pbg" / "config.py")}
    exec((out / "graph" / "pbg" / "config.py").read_text(), namespace)  # noqa: S102 - our generated config
    config = namespace["get_torchbiggraph_config"]()
    assert [r["name"] for r in config["relations"]] == ["fav", "reply", "retweet", "quote"]
    assert config["entity_path"] == str(out / "graph" / "pbg" / "data")
    # A second run refuses to overwrite without --overwrite, with a one-line error.
    assert main(["graph", "--engagements", str(sample), "--output", str(out), *QUIET]) == 2


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--column_map", "user_id=uid"], "missing column(s) user_id (column 'uid')"),
        (["--pairs", "embeddings"], "--pairs embeddings needs --embeddings"),
        (["--types", "fav,follow"], "--types: unknown follow"),
        (["--start", "last week"], "--start/--end"),
        # Without h5py: the install hint; with it (the pbg extra): the missing entity names file.
        (["--pairs", "embeddings", "--embeddings", "EMB_H5"], "entity names not found" if importlib.util.find_spec("h5py") else "need h5py"),
    ],
)
def test_config_errors_are_one_line(tmp_path, capsys, extra, message):
    path = write_csv(tmp_path / "e.csv", [{"user_id": "1", "tweet_id": "2", "type": "fav", "ts": ""}])
    (tmp_path / "emb.h5").write_bytes(b"\x89HDF")
    extra = [str(tmp_path / "emb.h5") if x == "EMB_H5" else x for x in extra]
    code = main(["graph", "--engagements", str(path), "--output", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err


def test_ts_helpers_round_trip():
    assert gc.iso_to_ms("1970-01-02") == 86_400_000
    with pytest.raises(ValueError):
        gc.iso_to_ms("soon")


def _reference(rows: list[dict], cap: int, min_users: int, rounds: int, top_k: int, min_count: int):
    """A plain-Python statement of the documented semantics (dedupe, rounds, pairs)."""
    best: dict = {}
    for r in rows:
        key = (int(r["user_id"]), int(r["tweet_id"]), r["type"])
        ts = int(r["ts"]) if r["ts"] else None
        if key not in best or (ts is not None and (best[key] is None or ts < best[key])):
            best[key] = ts
    alive = {t for (_, t, _) in best}
    for _ in range(rounds):
        by_user: dict = {}
        for (u, t, k), ts in best.items():
            if t in alive:
                by_user.setdefault(u, []).append((-(ts if ts is not None else -(2**62)), t, k))
        sel = {(u, t, k) for u, items in by_user.items() for _, t, k in sorted(items)[:cap]}
        users_of: dict = {}
        for u, t, _ in sel:
            users_of.setdefault(t, set()).add(u)
        alive = {t for t in alive if len(users_of.get(t, ())) >= min_users}
    final = {e for e in sel if e[1] in alive}
    engagers: dict = {}
    tweets_of: dict = {}
    for u, t, _ in final:
        engagers.setdefault(t, set()).add(u)
        tweets_of.setdefault(u, set()).add(t)
    count: dict = {}
    for ts in tweets_of.values():
        for a in ts:
            for b in ts:
                if a < b:
                    count[(a, b)] = count.get((a, b), 0) + 1
    scored = {
        p: c / (len(engagers[p[0]]) * len(engagers[p[1]])) ** 0.5 for p, c in count.items() if c >= min_count
    }
    rank: dict = {}
    for focal in engagers:
        nbrs = [(-s, -count[p], p[1] if p[0] == focal else p[0], p) for p, s in scored.items() if focal in p]
        for i, (*_, p) in enumerate(sorted(nbrs)[:top_k], start=1):
            rank[p] = min(rank.get(p, i), i)
    pairs = {(str(a), str(b)): (count[(a, b)], r) for (a, b), r in rank.items()}
    return {(str(u), str(t), k) for u, t, k in final}, pairs


def test_matches_a_plain_python_reference(tmp_path):
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(400):
        ts = "" if rng.random() < 0.1 else str(1_600_000_000_000 + int(rng.integers(0, 50)) * 1000)
        rows.append({"user_id": str(int(rng.integers(1, 30))), "tweet_id": str(int(rng.integers(100, 140))),
                     "type": ["fav", "reply", "retweet"][int(rng.integers(3))], "ts": ts})  # fmt: skip
    out = tmp_path / "out"
    argv = ["graph", "--engagements", str(write_csv(tmp_path / "e.csv", rows)), "--output", str(out), *QUIET]
    argv += ["--max_per_user", "6", "--min_per_tweet", "4", "--filter_iterations", "2", "--top_k", "3"]
    assert main(argv + ["--partitions", "4"]) == 0
    edges, pairs = _reference(rows, cap=6, min_users=4, rounds=2, top_k=3, min_count=2)
    got = {(r["user_id"], r["tweet_id"], r["type"]) for r in pq.read_table(out / "engagements").to_pylist()}
    assert got == edges and len(edges) > 50
    table = pq.read_table(out / "pairs").to_pylist()
    assert {(r["tweet_id_a"], r["tweet_id_b"]): (r["count"], r["rank"]) for r in table} == pairs
    assert len(pairs) > 20 and len({r for _, r in pairs.values()}) == 3  # ranks 1..3 all occur
