"""Contrastive-ready pair shards: every B consecutive rows hold no tweet twice, hubs capped, the
pairs no batch takes counted (transforms/shard/batches.py)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twhin_data.data import synth
from twhin_data.pipelines import shard as shard_pipeline
from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.corpus import CORPUS
from twhin_data.schemas.graph import PAIRS
from twhin_data.transforms.shard.batches import pack
from twhin_data.transforms.shard.pair_steps import batch_ends

KEYS = pa.schema([(c, pa.string()) for c in ("tweet_id_a", "tweet_id_b", "author_a", "author_b")])


def _batches_valid(a: list[str], b: list[str], size: int) -> bool:
    for lo in range(0, len(a), size):
        ends = a[lo : lo + size] + b[lo : lo + size]
        if len(set(ends)) != len(ends):
            return False
    return True


def _lists(packed: tuple) -> tuple[list[int], list[int]]:
    return packed[0].tolist(), packed[1].tolist()


def _known(codes) -> set[int]:
    return {c for c in codes.tolist() if c >= 0}


def test_pack_never_repeats_a_tweet_in_a_batch_and_is_deterministic():
    rng = random.Random(5)
    hubs = [str(i) for i in range(5)]
    rows = []
    for i in range(2000):
        a = rng.choice(hubs) if rng.random() < 0.2 else str(100 + rng.randrange(5000))
        b = str(10_000 + i)
        rows.append({"tweet_id_a": a, "tweet_id_b": b, "author_a": None, "author_b": None})
    ends = batch_ends(pa.Table.from_pylist(rows, KEYS))
    out, left = pack(ends, 16)
    out, left = out.tolist(), left.tolist()
    assert sorted(out + left) == list(range(len(rows)))
    a, b = [rows[i]["tweet_id_a"] for i in out], [rows[i]["tweet_id_b"] for i in out]
    assert _batches_valid(a, b, 16)
    assert len(left) <= 0.05 * len(rows)
    assert _lists(pack(ends, 16)) == (out, left)
    assert _lists(pack(ends, 0)) == (list(range(len(rows))), [])


def test_batch_ends_code_tweets_and_known_authors_apart():
    rows = [
        {"tweet_id_a": "1", "tweet_id_b": "2", "author_a": "2", "author_b": "2"},  # an author ID equal to a tweet ID
        {"tweet_id_a": "3", "tweet_id_b": "1", "author_a": None, "author_b": ""},  # unknown authors
    ]
    ends = batch_ends(pa.Table.from_pylist(rows, KEYS))
    tweet_codes = set(ends[0][:2].tolist()) | set(ends[1][:2].tolist())
    assert _known(ends[0]) - tweet_codes == {ends[0][2]} == {ends[0][3]}  # one author, coded apart from tweet "2"
    assert _known(ends[1]) == set(ends[1][:2].tolist())  # unknown authors: codes that are negative and unique
    assert set(ends[0].tolist()) & set(ends[1].tolist()) == {ends[0][0]}  # tweet 1 shared
    assert _lists(pack(ends, 2)) == ([0], [1])  # both pairs hold tweet 1: never one batch
    # Author "2" of pair 0 is not tweet "2": a pair holding tweet 2 by another author may join it.
    more = batch_ends(pa.Table.from_pylist([rows[0], {"tweet_id_a": "2", "tweet_id_b": "9", "author_a": "8", "author_b": None}], KEYS))
    assert set(more[0].tolist()) & set(more[1].tolist()) == {1}  # tweet 2 only
    more = batch_ends(pa.Table.from_pylist([rows[0], {"tweet_id_a": "7", "tweet_id_b": "9", "author_a": "2", "author_b": None}], KEYS))
    assert _lists(pack(more, 2)) == ([0], [1])  # the same author in both pairs


def _equal_pattern(ends) -> list[list[int]]:
    """The codes relabelled by first appearance: what `pack` sees (equal or not), not the values."""
    seen: dict[int, int] = {}
    return [[seen.setdefault(c, len(seen)) for c in row] for row in ends.tolist()]


def test_batch_ends_same_equalities_whatever_the_chunks_or_row_order():
    rng = random.Random(11)
    authors = [None, "", "1", "2", "3", "40"]
    rows = [
        {
            "tweet_id_a": str(rng.randrange(30)),
            "tweet_id_b": str(rng.randrange(30)),
            "author_a": rng.choice(authors),
            "author_b": rng.choice(authors),
        }
        for _ in range(300)
    ]
    whole = pa.Table.from_pylist(rows, KEYS)
    chunked = pa.concat_tables([whole.slice(0, 7), whole.slice(7, 150), whole.slice(157)])
    assert chunked.column("tweet_id_a").num_chunks == 3
    assert _equal_pattern(batch_ends(chunked)) == _equal_pattern(batch_ends(whole))
    order = np.array(rng.sample(range(300), 300))
    reordered = batch_ends(whole.take(pa.array(order)))
    assert _equal_pattern(batch_ends(chunked)[order]) == _equal_pattern(reordered)
    assert _lists(pack(batch_ends(chunked)[order], 8)) == _lists(pack(reordered, 8))


def _inputs(base: Path) -> tuple[Path, int]:
    rows = [
        {"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang") or "und", "normalizer": "test", "author_id": str(i % 700)}
        for i, t in enumerate(synth.generate_tweets(3000, seed=3))
    ]
    (base / "corpus").mkdir(parents=True)
    pq.write_table(to_table(rows, CORPUS), base / "corpus" / "part-00000-of-00001.parquet")
    ids = [r["tweet_id"] for r in rows]
    rng = random.Random(9)
    pairs = set()
    while len(pairs) < 3000:  # power-law-ish: a few hub tweets in many pairs
        a = ids[int(len(ids) * rng.random() ** 3)]
        b = ids[rng.randrange(len(ids))]
        if a != b:
            pairs.add((min(a, b, key=int), max(a, b, key=int)))
    table = [{"tweet_id_a": a, "tweet_id_b": b, "score": rng.random(), "method": "cooccurrence"} for a, b in sorted(pairs)]
    (base / "pairs").mkdir()
    pq.write_table(to_table(table, PAIRS), base / "pairs" / "part-00000-of-00001.parquet")
    return base, len(table)


@pytest.mark.slow
def test_every_batch_of_every_shard_is_valid_and_nearly_all_pairs_placed(tmp_path, monkeypatch):
    """...and the same bytes with 2 workers and over 64 join partitions instead of 8."""
    base, n_pairs = _inputs(tmp_path / "in")
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        argv = ["shard", f"--corpus={base}", f"--pairs={base}", f"--output={out}", "--num_shards=2"]
        argv += ["--pair_batch_size=16", "--max_pairs_per_tweet=16", "--valid_fraction=0.01", "--log_level=WARNING"]
        if name == "b":
            argv.append("--workers=2")
            assert shard_pipeline.pair_partitions([str(p) for p in base.rglob("*.parquet")]) == 8
            monkeypatch.setattr(shard_pipeline, "PAIR_PARTITION_BYTES", 1 << 10)
            assert shard_pipeline.pair_partitions([str(p) for p in base.rglob("*.parquet")]) > 64
        assert cli.main(argv) == 0
        outs.append(out)
    manifest = json.loads((outs[0] / "manifest.json").read_text())
    counts = manifest["counts"]
    assert manifest["parameters"]["pair_batch_size"] == 16
    capped = counts.get("rejected_pair_over_tweet_cap", 0)
    assert capped > 0  # the hubs were capped
    placed = counts["pairs_out"]
    assert counts["pairs_in"] == n_pairs == placed + capped + counts.get("rejected_pair_unplaced", 0)
    assert placed >= 0.99 * (n_pairs - capped)
    author = {r["tweet_id"]: r["author_id"] for r in pq.read_table(base / "corpus").to_pylist()}
    ends: dict[str, int] = {}
    for path in sorted((outs[0] / "pairs").glob("*.parquet")):
        table = pq.read_table(path)
        a, b = table.column("tweet_id_a").to_pylist(), table.column("tweet_id_b").to_pylist()
        assert table.num_rows > 0 and _batches_valid(a, b, 16), path.name
        for lo in range(0, len(a), 16):  # no author in two pairs of a batch
            per_pair = [{author[x], author[y]} for x, y in zip(a[lo : lo + 16], b[lo : lo + 16], strict=True)]
            flat = [w for authors in per_pair for w in authors]
            assert len(flat) == len(set(flat)), path.name
        for t in a + b:
            ends[t] = ends.get(t, 0) + 1
    assert max(ends.values()) <= 16
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for out in outs for p in sorted((out / "pairs").glob("*.parquet"))]
    assert digest[: len(digest) // 2] == digest[len(digest) // 2 :]
