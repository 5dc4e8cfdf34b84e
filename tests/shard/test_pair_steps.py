"""The pairs join on spill files (transforms/shard/pair_steps.py), as pure functions: the pairs it
places, the dead letters and the per-tweet cap equal a plain-Python reference for any number of
join partitions."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pytest

from twhin_data.core.hashing import stable_hash64
from twhin_data.core.pool import Tagged
from twhin_data.core.spill import read_slices, slices_of, write_slices
from twhin_data.core.tags import ERRORS, STATS
from twhin_data.transforms.shard import pair_steps as ps
from twhin_data.transforms.shard.tokenize import TOKENS

SALT = "pairs:0"


def _corpus(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(300):
        tweet_id = str(10**15 + rng.randrange(10**15))
        split = "validation" if i % 17 == 0 else "train"
        for copy in range(rng.choice([1, 1, 2])):  # resampling's repeated copies: joined once
            rows.append(
                {
                    "tweet_id": tweet_id,
                    "lang": rng.choice(["en", "ja"]),
                    "input_ids": [0, i, 2],
                    "key": rng.randrange(2**63),
                    "split": split,
                    "copy": copy,
                    "author_id": str(i % 40) if i % 5 else None,
                }
            )
    return rows


def _pairs(rng: random.Random, ids: list[str]) -> list[dict]:
    hubs = ids[:6]
    pairs = []
    for _ in range(1500):
        a = rng.choice(hubs) if rng.random() < 0.3 else rng.choice(ids)
        b = rng.choice(ids)
        roll = rng.random()
        if roll < 0.03:
            b = str(10**17 + rng.randrange(10**16))  # not in the corpus
        elif roll < 0.05:
            a = rng.choice(["x1", "99999999999999999999", None])  # can never be a corpus ID
        elif roll < 0.06:
            b = "#" + b
        pairs.append({"tweet_id_a": a, "tweet_id_b": b, "score": rng.choice([0.5, 1.0, None, rng.random()])})
    return pairs + pairs[:40]  # repeated pairs


def _reference(corpus: list[dict], pairs: list[dict], cap: int) -> tuple[list[tuple], Counter]:
    tweets = {}
    for row in corpus:
        tweets.setdefault(row["tweet_id"], row)
    joined, missing = [], Counter()
    for pair in pairs:
        a, b = pair["tweet_id_a"], pair["tweet_id_b"]
        if a not in tweets:
            missing["a"] += 1
        elif b not in tweets:
            missing["b"] += 1
        else:
            valid = tweets[a]["split"] == "validation" or tweets[b]["split"] == "validation"
            joined.append((a, b, pair["score"], "validation" if valid else "train"))
    ends = defaultdict(list)
    for a, b, score, _ in joined:
        ends[a].append((-(score or 0.0), int(b), f"{a}:{b}", (a, b)))
        ends[b].append((-(score or 0.0), int(a), f"{a}:{b}", (a, b)))
    over = {key for ranked in ends.values() for *_, key in sorted(ranked)[cap:]} if cap else set()
    kept = [(a, b, s, split, stable_hash64(f"{a}:{b}", SALT)) for a, b, s, split in joined if (a, b) not in over]
    missing["over"] = len(joined) - len(kept)
    return sorted(kept, key=lambda r: (r[4], r[0], r[1])), missing


def _grouped(indexes: list, parts: int) -> dict:
    """What `pairs.ByPartition` hands the next step: each partition's slices, from the indexes."""
    return {p: refs for p in range(parts) if (refs := slices_of(indexes, p))}


def _run(tmp: str, corpus: list[dict], pairs: list[dict], parts: int, cap: int) -> tuple[list, list, Counter]:
    token_refs = write_slices(f"{tmp}/tokens/t.arrow", TOKENS, [("train", pa.Table.from_pylist(corpus, TOKENS))])
    pair_table = pa.Table.from_pylist(
        [dict(p, source="pairs.parquet") for p in pairs],
        pa.schema([("tweet_id_a", pa.string()), ("tweet_id_b", pa.string()), ("score", pa.float32()), ("source", pa.string())]),
    )
    where = dict(tmp=tmp, parts=parts)
    tagged: list[Tagged] = []

    def step(outputs: list) -> list:
        tagged.extend(o for o in outputs if isinstance(o, Tagged))
        return [o for o in outputs if not isinstance(o, Tagged)]

    tweets = [o for ref in token_refs for o in ps.spill_pair_tweets(ref, **where)]
    with_a = step(ps.spill_pairs(("00-00", pair_table), **where))
    joined_a = [o for item in _grouped(tweets + with_a, parts).items() for o in step(ps.join_side(item, side="a", **where))]
    joined = [o for item in _grouped(tweets + joined_a, parts).items() for o in step(ps.join_side(item, side="b", cap=cap, **where))]
    ends = [o.value for o in tagged if o.tag == ps.ENDS]
    over = [o for item in _grouped(ends, parts).items() for o in ps.cap_pairs(item, cap=cap, **where)]
    placed = [o for item in sorted(_grouped(joined + over, parts).items()) for o in step(ps.place_pairs(item, tmp=tmp, salt=SALT))]
    rows = read_slices([ref for _, ref in placed], ps.PLACED).to_pylist()
    got = sorted(
        ((r["tweet_id_a"], r["tweet_id_b"], r["score"], r["split"], r["key"]) for r in rows), key=lambda r: (r[4], r[0], r[1])
    )
    stats = Counter()
    for o in tagged:
        if o.tag == STATS:
            stats.update(o.value)
    errors = [o.value for o in tagged if o.tag == ERRORS]
    assert all(isinstance(e, pa.Table) and e.num_rows for e in errors)  # a table per task, never empty
    return got, [row for table in errors for row in table.to_pylist()], stats


@pytest.mark.parametrize("cap", [0, 3])
def test_join_and_cap_equal_a_plain_reference_for_any_partition_count(tmp_path, cap):
    rng = random.Random(cap)
    corpus = _corpus(rng)
    pairs = _pairs(rng, sorted({r["tweet_id"] for r in corpus}))
    want, missing = _reference(corpus, pairs, cap)
    for parts in (1, 7):
        got, errors, stats = _run(str(tmp_path / f"p{parts}"), corpus, pairs, parts, cap)
        assert [(a, b, s, split, key) for a, b, s, split, key in got] == [
            (a, b, None if s is None else pytest.approx(s), split, key) for a, b, s, split, key in want
        ]
        assert Counter(e["message"].split()[0] for e in errors) == {"tweet_a": missing["a"], "tweet_b": missing["b"]}
        assert all(e["error_type"] == "pair_tweet_missing" and e["source"] == "pairs.parquet" for e in errors)
        assert stats["pairs_in"] == len(pairs) == len(got) + len(errors) + missing["over"]
        assert stats["rejected_pair_tweet_missing"] == len(errors)
        assert stats.get("rejected_pair_over_tweet_cap", 0) == missing["over"]
        assert stats["pairs_rows_train"] + stats["pairs_rows_validation"] == len(got)
        if cap:
            assert missing["over"] > 0  # the hubs were capped
            kept = Counter(t for a, b, *_ in got for t in {a, b})
            assert max(kept.values()) <= cap


def test_by_partition_gathers_each_partitions_slices_from_the_indexes(tmp_path):
    """`pairs.ByPartition` in a pipeline: the same per-partition slices a GroupByKey of every
    ``(partition, (kind, SliceRef))`` would give, partitions without rows left out."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from twhin_data.core.spill import SliceIndex, write_split
    from twhin_data.transforms.shard.pairs import ByPartition

    schema = pa.schema([("x", pa.int64())])
    parts, first, second, want = 6, [], [], {}
    for f, keys in enumerate([[0, 0, 3], [3, 5, 5, 5], [0]]):
        refs = write_split(str(tmp_path / f"{f}.arrow"), schema, pa.table({"x": list(range(len(keys)))}, schema), np.array(keys))
        kind = "tweets" if f == 1 else "pairs"
        (first if f < 2 else second).extend((kind, index) for index in SliceIndex.of(refs, parts))
        for key, ref in refs:
            want.setdefault(key, []).append((kind, ref))
    expected = [(key, sorted(refs, key=lambda item: (item[1].path, item[0]))) for key, refs in want.items()]
    with TestPipeline(runner="FnApiRunner") as p:
        got = (p | "First" >> beam.Create(first), p | "Second" >> beam.Create(second)) | ByPartition(parts)
        assert_that(got, equal_to(expected))
