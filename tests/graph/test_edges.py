"""Pure graph/pair helpers: parsing, dedupe, caps, partitions, fan-out cap, FAISS factory scaling."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twhin_data.transforms.graph import edges as gc
from twhin_data.transforms.graph import pair_scoring as pcore
from twhin_data.transforms.graph.logs import parse_column_map
from twhin_data.transforms.graph.pbg import config_text, tsv_lines
from twhin_data.transforms.graph.read_steps import WindowSpec, clean_rows


def edges(rows: list[tuple]) -> pa.Table:
    """rows: (user, tweet, rel, ts) with ts None = unknown."""
    return pa.table(
        {
            "user": pa.array([r[0] for r in rows], pa.uint64()),
            "tweet": pa.array([r[1] for r in rows], pa.uint64()),
            "rel": pa.array([r[2] for r in rows], pa.int8()),
            "ts": pa.array([gc.NO_TS if r[3] is None else r[3] for r in rows], pa.int64()),
            "source": pa.array([0] * len(rows), pa.int8()),
        }
    )


def test_parse_ids_accepts_1_to_19_digits_and_rejects_the_rest():
    values = pa.array(
        ["1", " 42 ", "9999999999999999999", "18446744073709551615", "1.48E+18", "", None, "-5"]
    )
    ids, ok = gc.parse_ids(values)
    assert ok.tolist() == [True, True, True, False, False, False, False, False]
    assert ids[:3].tolist() == [1, 42, 10**19 - 1]


def test_parse_ts_iso_naive_epoch_and_invalid():
    values = pa.array(
        ["2022-01-01T00:00:00Z", "2022-01-01 00:00:00", "1640995200", "1640995200000", "", "yesterday"]
    )
    ms, ok = gc.parse_ts(values)
    assert ok.tolist() == [True, True, True, True, True, False]
    assert ms[:4].tolist() == [1640995200000] * 4
    assert ms[4] == gc.NO_TS
    epochs, ok = gc.parse_ts(pa.array(["1640995200", " 1640995200000 "]))  # all epoch digits: no filter
    assert epochs.tolist() == [1640995200000] * 2 and ok.all()


def test_clean_rows_counts_every_row_once():
    raw = pa.table(
        {
            "user_id": ["1", "2", "x", "4", "5", "6"],
            "tweet_id": ["10", "11", "12", "bad", "14", "15"],
            "type": ["like", "reply", "fav", "fav", "follow", "quote"],
            "ts": ["2022-01-01T00:00:00Z", "2021-01-01T00:00:00Z", "", "", "", "2022-02-01T00:00:00Z"],
        }
    )
    spec = WindowSpec(types=["fav", "reply"], start_ms=gc.iso_to_ms("2021-06-01"), end_ms=None)
    out, rejects, counts = clean_rows(raw, source=0, spec=spec)
    assert sorted(kind for _, kind, _ in rejects) == ["invalid_tweet_id", "invalid_type", "invalid_user_id"]
    assert counts["filtered_type"] == 1  # the quote
    assert counts["filtered_time_window"] == 1  # the 2021 reply
    assert out.num_rows == 1 and out.column("rel").to_pylist() == [0]  # like -> fav
    assert (
        counts["rows_in"]
        == out.num_rows + len(rejects) + counts["filtered_type"] + counts["filtered_time_window"]
    )


def test_column_map_rejects_unknown_names():
    assert parse_column_map("user_id=uid,ts=time")["user_id"] == "uid"
    with pytest.raises(Exception, match="column_map"):
        parse_column_map("author=uid")


def test_dedupe_keeps_earliest_and_counts_per_type():
    table = edges([(1, 10, 0, 500), (1, 10, 0, 100), (1, 10, 1, 300), (2, 10, 0, None), (2, 10, 0, 50)])
    out, dropped = gc.dedupe(table)
    assert out.num_rows == 3
    assert dropped.tolist() == [2, 0, 0, 0]
    assert out.column("ts").to_pylist() == [100, 300, 50]


@pytest.mark.parametrize("policy", ["recent", "hash"])
def test_cap_per_user_bounds_degree_and_respects_alive(policy):
    rows = [(1, t, 0, t * 10) for t in range(1, 21)] + [(2, 5, 0, 1)]
    table = edges(rows)
    alive = np.ones(len(rows), dtype=bool)
    alive[19] = False  # user 1's most recent edge points to a dead tweet
    sel = gc.cap_per_user(table, alive, 5, policy)
    assert sel[:20].sum() == 5 and sel[20]
    assert not sel[19]
    if policy == "recent":
        assert np.flatnonzero(sel[:20]).tolist() == [14, 15, 16, 17, 18]


def test_range_shards_preserve_numeric_order():
    sample = np.arange(1000, dtype=np.uint64) * 7
    splits = gc.quantile_splits(sample, 8)
    shards = gc.range_shard(np.sort(sample), splits)
    assert (np.diff(shards) >= 0).all() and shards.max() == len(splits)


def test_user_pairs_fanout_cap_bounds_pairs_and_counts_drops():
    n = 400  # one heavy user: 79,800 candidate pairs
    table = edges([(1, 1000 + i, 0, i * 1000) for i in range(n)])
    left, right, counts = pcore.user_pairs(table, gap_ms=0, fanout_cap=500)
    assert len(left) == 500
    assert counts["pairs_candidates"] == n * (n - 1) // 2
    assert counts["pairs_dropped_fanout_cap"] == n * (n - 1) // 2 - 500
    assert (right - left == 1).sum() == n - 1  # all adjacent-in-time pairs come first


def test_user_pairs_time_gap():
    table = edges([(1, 1, 0, 0), (1, 2, 0, 1000), (1, 3, 0, 5000), (1, 4, 0, None)])
    left, right, counts = pcore.user_pairs(table, gap_ms=2000, fanout_cap=0)
    assert sorted(zip(left.tolist(), right.tolist(), strict=True)) == [(1, 2)]
    assert counts["pair_edges_no_ts"] == 1


def test_aggregate_coded_matches_the_two_key_aggregation():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 2**62, size=300, dtype=np.uint64) + np.uint64(2**63)  # above int64
    focal, other = rng.choice(ids, 20_000), rng.choice(ids, 20_000)
    want = pcore.aggregate_directed(focal, other, np.ones(20_000, np.int64))
    keys, first, codes = pcore.dense_codes(np.r_[focal, other])
    assert (keys[codes] == np.r_[focal, other]).all() and (np.r_[focal, other][first] == keys).all()
    f, o, c = pcore.aggregate_coded(codes[:20_000], codes[20_000:], len(keys))
    for got, expected in zip((keys[f], keys[o], c), want, strict=True):
        assert got.tolist() == expected.tolist()
    for n in (65_536, 65_537):  # the largest n with uint32 keys, and the first with int64 keys
        codes = rng.integers(n - 3, n, size=(2, 5_000))
        want = pcore.aggregate_directed(codes[0], codes[1], np.ones(5_000, np.int64))
        got = pcore.aggregate_coded(codes[0], codes[1], n)
        assert [a.tolist() for a in got] == [a.tolist() for a in want] and got[0].dtype == np.int64
    empty = pcore.aggregate_coded(np.zeros(0, np.int64), np.zeros(0, np.int64), 0)
    assert [len(a) for a in empty] == [0, 0, 0]
    with pytest.raises(ValueError, match="--partitions"):  # n * n would overflow int64
        pcore.aggregate_coded(np.zeros(1, np.int64), np.zeros(1, np.int64), pcore.MAX_CODES + 1)


@pytest.mark.parametrize("sorted_slices", [True, False])
def test_sum_directed_matches_the_two_key_aggregation(sorted_slices):
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 2**62, size=200, dtype=np.uint64) + np.uint64(2**63)
    degree = dict(zip(ids.tolist(), rng.integers(1, 50, 200).tolist(), strict=True))  # engagers of each tweet
    slices = []
    for _ in range(5):  # one slice per user shard, each summed and sorted by (tweet, other) as directed_pairs writes
        f, o, c = pcore.aggregate_directed(rng.choice(ids, 4_000), rng.choice(ids, 4_000), rng.integers(1, 5, 4_000))
        if not sorted_slices:
            shuffle = rng.permutation(len(f))
            f, o, c = f[shuffle], o[shuffle], c[shuffle]
        deg_f, deg_o = ([degree[t] for t in side.tolist()] for side in (f, o))
        slices.append(pa.table({"tweet": f, "other": o, "count": c, "deg_f": deg_f, "deg_o": deg_o}))
    table = pa.concat_tables(slices)
    focal, other, count = (table.column(n).to_numpy() for n in ("tweet", "other", "count"))
    want = pcore.aggregate_directed(focal, other, count)
    got = pcore.sum_directed(table)
    for a, b in zip(got[:3], want, strict=True):
        assert a.tolist() == b.tolist()
    assert got[3].tolist() == [degree[t] for t in want[0].tolist()]
    assert got[4].tolist() == [degree[t] for t in want[1].tolist()]
    assert [len(a) for a in pcore.sum_directed(table.slice(0, 0))] == [0] * 5


def test_resolve_factory_scales_to_n():
    assert pcore.resolve_factory("auto", 1000, 256, 2000) == ("Flat", 2000)
    assert pcore.resolve_factory("auto", 200_000, 256, 2000) == ("IVF1024,Flat", 32)
    assert pcore.resolve_factory("auto", 10_000_000, 256, 2000) == ("OPQ64,IVF8192,PQ64", 250)
    assert pcore.resolve_factory("IVF65536,PQ64", 20_000, 48, 10)[0] == "IVF512,PQ48"
    assert pcore.resolve_factory("OPQ64,IVF65536,PQ64", 3000, 64, 2000) == ("IVF76,Flat", 3)


def test_knn_pairs_with_a_scaled_ivf_index_finds_communities():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(20, 32))
    community = rng.integers(0, 20, size=3000)
    vecs = (centers[community] + 0.35 * rng.normal(size=(3000, 32))).astype(np.float32)
    ids = np.arange(10**18, 10**18 + 3000, dtype=np.uint64)
    table, info = pcore.knn_pairs(ids, vecs, k=5, min_score=0.0, factory="OPQ64,IVF65536,PQ64", nprobe=2000)
    assert info["factory"] == "IVF76,Flat" and info["nprobe"] == 3
    a = (table.column("a").to_numpy() - ids[0]).astype(np.int64)
    b = (table.column("b").to_numpy() - ids[0]).astype(np.int64)
    assert table.num_rows > 3000 and (community[a] == community[b]).mean() >= 0.9


def test_knn_pairs_canonical_without_self_matches():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, 16)).astype(np.float32)
    ids = np.arange(100, 150, dtype=np.uint64)
    table, info = pcore.knn_pairs(ids, vecs, k=3, min_score=-1.0, factory="auto", nprobe=1)
    a, b = table.column("a").to_numpy(), table.column("b").to_numpy()
    assert (a < b).all() and len(set(zip(a, b, strict=True))) == len(a)
    assert info["factory"] == "Flat" and table.column("rank").to_numpy().max() <= 3


def test_pbg_tsv_and_config():
    table = edges([(7, 9, 2, None)])
    assert tsv_lines(table, ["retweet"]) == b"u7\tretweet\tt9\n"
    text = config_text(["fav", "retweet"])
    namespace: dict = {"__file__": "/x/graph/pbg/config.py"}
    exec(compile(text, "config.py", "exec"), namespace)  # noqa: S102 - our own generated config
    config = namespace["get_torchbiggraph_config"]()
    assert config["dimension"] == 256 and config["num_epochs"] == 10
    assert [r["operator"] for r in config["relations"]] == ["translation", "translation"]
    assert config["entity_path"] == "/x/graph/pbg/data"


@pytest.mark.parametrize("suffix,opener", [(".gz", "gzip"), (".bz2", "bz2")])
def test_compressed_logs_read_like_plain_ones(tmp_path, suffix, opener):
    """.gz/.bz2 logs are decompressed by suffix (Beam's FileSystems); its handle reports `closed` as
    a method, which pyarrow's CSV reader took for a closed file: every compressed log crashed."""
    import importlib

    from twhin_data.transforms.graph.logs import read_raw

    texts = {
        ".csv": "user_id,tweet_id,type,ts\n1,10,fav,2022-01-01T00:00:00Z\n2,10,reply,1641000000\n3,11\n",
        ".jsonl": '{"user_id": 1, "tweet_id": "10", "type": "fav"}\nnot json\n{"user_id": "2", "tweet_id": 11, "type": "rt"}\n',
    }
    mapping = parse_column_map(None)
    for kind, text in texts.items():
        plain = tmp_path / f"eng{kind}"
        plain.write_text(text)
        packed = tmp_path / f"eng{kind}{suffix}"
        with importlib.import_module(opener).open(packed, "wt") as handle:
            handle.write(text)
        want = [(t.to_pylist() if t is not None else None, bad) for t, bad in read_raw(str(plain), mapping)]
        got = [(t.to_pylist() if t is not None else None, bad) for t, bad in read_raw(str(packed), mapping)]
        assert got == want and any(rows for rows, _ in want) and any(bad for _, bad in want), kind
