"""`twhin-data shard` end to end on a small synthetic corpus (+ pairs), through the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from twhin_data.data import synth
from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.corpus import CORPUS
from twhin_data.schemas.graph import PAIRS
from twhin_data.schemas.shards import MLM_SHARD, PAIR_SHARD
from twhin_data.text.tokenize import load_tokenizer

N_TWEETS = 800
MAX_LENGTH = 48


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """corpus/ (two files, with one bad ID, one blank text, one duplicate) and pairs/ (one dangling)."""
    base = tmp_path_factory.mktemp("shard-in")
    rows = [
        {"tweet_id": t["id"], "text": t["text"], "lang": t.get("lang") or "und", "normalizer": "test"}
        for t in synth.generate_tweets(N_TWEETS, seed=7)
    ]
    rows += [
        {"tweet_id": "12x", "text": "bad id", "lang": "en", "normalizer": "test"},
        {"tweet_id": "42", "text": "  ", "lang": "en", "normalizer": "test"},
        dict(rows[3]),
    ]
    (base / "corpus").mkdir()
    pq.write_table(to_table(rows[:400], CORPUS), base / "corpus" / "part-00000-of-00002.parquet")
    pq.write_table(to_table(rows[400:], CORPUS), base / "corpus" / "part-00001-of-00002.parquet")
    ids = [r["tweet_id"] for r in rows[:120]]
    pairs = [
        {"tweet_id_a": ids[i], "tweet_id_b": ids[i + 1], "score": 0.5, "method": "cooccurrence"}
        for i in range(0, 120, 2)
    ]
    pairs.append({"tweet_id_a": "7", "tweet_id_b": ids[0], "score": 0.1, "method": "cooccurrence"})
    (base / "pairs").mkdir()
    pq.write_table(to_table(pairs, PAIRS), base / "pairs" / "part-00000-of-00001.parquet")
    return base


def shard(inputs: Path, out: Path, *extra: str) -> int:
    argv = ["shard", "--corpus", str(inputs), "--pairs", str(inputs), "--output", str(out)]
    argv += ["--max_length", str(MAX_LENGTH), "--num_shards", "3", "--valid_fraction", "0.2", *extra]
    argv += ["--pair_batch_size=0"]  # hash order: batches have their own tests (test_pair_batches.py)
    return cli.main(argv)


@pytest.fixture(scope="module")
def runs(inputs, tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    base = tmp_path_factory.mktemp("shard-out")
    assert shard(inputs, base / "a", "--workers", "1") == 0
    assert shard(inputs, base / "b", "--workers", "1") == 0
    mp = ["--workers", "2", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    assert shard(inputs, base / "mp", *mp) == 0
    assert shard(inputs, base / "w2", "--workers", "2") == 0  # a pool of 2 for every pooled step
    return base / "a", base / "b", base / "mp", base / "w2"


def digests(folder: Path) -> dict[str, str]:
    names = sorted(folder.glob("*/*.parquet")) + [folder / "manifest.json", folder / "README.md"]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in names}


@pytest.mark.slow
def test_layout_and_completed(runs):
    out = runs[0]
    assert (out / "COMPLETED").is_file()
    names = sorted(p.name for p in (out / "mlm").iterdir())
    assert names == [
        "train-00000-of-00003.parquet",
        "train-00001-of-00003.parquet",
        "train-00002-of-00003.parquet",
        "validation-00000-of-00001.parquet",
    ]
    assert sorted(p.name for p in (out / "pairs").iterdir())[0] == "train-00000-of-00003.parquet"
    for path in (out / "mlm").iterdir():
        assert pq.read_schema(path).remove_metadata().equals(MLM_SHARD.remove_metadata())
        assert pq.read_metadata(path).num_rows > 0  # no empty shards
    for path in (out / "pairs").iterdir():
        assert pq.read_schema(path).remove_metadata().equals(PAIR_SHARD.remove_metadata())


@pytest.mark.slow
def test_byte_identical_across_runs_and_runners(runs):
    a, b, mp, w2 = runs
    assert digests(a) == digests(b)
    assert digests(a) == digests(mp)  # FnApiRunner in-memory vs multi_processing x2 (+ pool of 2)
    assert digests(a) == digests(w2)  # --workers 2: pool processes tokenize, route and write
    for out in runs:  # the spill files between the pooled steps are gone
        assert not (out / ".tmp_shard").exists()
        assert sorted(p.name for p in out.iterdir()) == sorted(
            ["COMPLETED", "README.md", "errors", "manifest.json", "mlm", "pairs", "reports"]
        )


@pytest.mark.slow
def test_manifest_counts_equal_a_recount_and_accounting_balances(runs):
    out = runs[0]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dtype"] == "int32" and manifest["max_length"] == MAX_LENGTH and manifest["pad_id"] == 1
    assert manifest["tokenizer"]["special_ids"]["eos"] == 2 and manifest["parameters"]["num_shards"] == 3
    langs: dict[str, list[int]] = {}
    for entry in manifest["shards"]:
        path = out / entry["file"]
        table = pq.read_table(path)
        data = path.read_bytes()
        assert entry["rows"] == table.num_rows and entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        if entry["dataset"] == "mlm":
            assert entry["tokens"] == sum(len(x) for x in table.column("input_ids").to_pylist())
            assert entry["tweets"] == sum(len(x) for x in table.column("tweet_ids").to_pylist())
            for row in table.to_pylist():
                ends = row["tweet_offsets"][1:] + [row["num_tokens"]]
                for lang, start, end in zip(row["langs"], row["tweet_offsets"], ends, strict=True):
                    langs.setdefault(lang, [0, 0])
                    langs[lang][0] += 1
                    langs[lang][1] += end - start
        else:
            ids = table.column("input_ids_a").to_pylist() + table.column("input_ids_b").to_pylist()
            assert entry["tokens"] == sum(len(x) for x in ids)
    assert {k: [v["tweets"], v["tokens"]] for k, v in manifest["languages"].items()} == langs
    counts = manifest["counts"]
    assert counts["tweets_in"] == N_TWEETS + 3
    assert counts["tweets_out"] == N_TWEETS
    assert (
        counts["tweets_in"]
        == counts["tweets_out"]
        + counts["rejected_invalid_id"]
        + counts["rejected_text_empty"]
        + counts["duplicates"]
    )
    assert counts["pairs_in"] == counts["pairs_out"] + counts["rejected_pair_tweet_missing"] == 61
    errors = pq.read_table(out / "errors" / "shard").to_pylist()
    assert sorted(e["error_type"] for e in errors) == ["invalid_id", "pair_tweet_missing", "text_empty"]
    stats = json.loads((out / "reports" / "shard" / "stats.json").read_text())
    assert stats["balanced"] and stats["pairs_balanced"] and stats["tweets_out"] == N_TWEETS


@pytest.mark.slow
def test_token_ids_lengths_and_decoding(runs, inputs):
    out = runs[0]
    tok, info = load_tokenizer("bundled")
    texts = {}
    for path in sorted((inputs / "corpus").iterdir()):
        for row in pq.read_table(path).to_pylist():
            texts[row["tweet_id"]] = row["text"]
    checked = truncated = 0
    for path in sorted((out / "mlm").iterdir()):
        for row in pq.read_table(path).to_pylist():
            ids = row["input_ids"]
            assert len(ids) == row["num_tokens"] <= MAX_LENGTH
            assert max(ids) < info.vocab_size and min(ids) >= 0
            ends = row["tweet_offsets"][1:] + [len(ids)]
            for tweet_id, start, end in zip(row["tweet_ids"], row["tweet_offsets"], ends, strict=True):
                piece = ids[start:end]
                assert piece[0] == info.special_ids["bos"] and piece[-1] == info.special_ids["eos"]
                expected = tok.encode(texts[tweet_id]).ids
                if len(expected) > MAX_LENGTH:
                    truncated += 1
                    assert piece == expected[: MAX_LENGTH - 1] + [expected[-1]]
                    continue
                assert piece == expected
                if info.special_ids["unk"] not in piece:
                    normalized = tok.normalizer.normalize_str(texts[tweet_id])
                    assert tok.decode(piece) == " ".join(normalized.split(" ")).strip()
                    checked += 1
    assert checked > N_TWEETS // 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["truncated"] == truncated


@pytest.mark.slow
def test_datasets_load_dataset_finds_both_splits(runs, tmp_path):
    datasets = pytest.importorskip("datasets")
    out = runs[0]
    manifest = json.loads((out / "manifest.json").read_text())
    mlm = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    for split in ("train", "validation"):
        assert mlm[split].num_rows == manifest["splits"]["mlm"][split]["rows"] > 0
    pairs = datasets.load_dataset(str(out), "pairs", cache_dir=str(tmp_path / "cache"))
    assert pairs["train"].num_rows == manifest["splits"]["pairs"]["train"]["rows"]


@pytest.mark.slow
def test_no_pack_and_overwrite(inputs, tmp_path, capsys):
    out = tmp_path / "np"
    assert shard(inputs, out, "--workers", "1", "--no_pack") == 0
    first = (out / "manifest.json").read_bytes()
    rows = pq.read_table(out / "mlm").to_pylist()
    assert all(len(r["tweet_ids"]) == 1 and r["tweet_offsets"] == [0] for r in rows)
    assert shard(inputs, out, "--workers", "1") == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert (out / "manifest.json").read_bytes() == first  # untouched
    assert shard(inputs, out, "--workers", "1", "--overwrite") == 0
    assert json.loads((out / "manifest.json").read_text())["parameters"]["pack"] is True


def test_bad_tokenizer_and_inputs_are_one_line_errors(inputs, tmp_path, capsys):
    assert shard(inputs, tmp_path / "x", "--tokenizer", str(tmp_path / "missing.json")) == 2
    assert "tokenizer file not found" in capsys.readouterr().err
    assert cli.main(["shard", "--corpus", str(tmp_path / "nothing"), "--output", str(tmp_path / "y")]) == 2
    assert "no input files match" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # argparse: one line, exit code 2
        shard(inputs, tmp_path / "z", "--num_shards", "2", "--target_shard_mb", "8")
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() or not (tmp_path / "x" / "COMPLETED").exists()


def test_tokenize_table_pure_function():
    import pyarrow as pa

    from twhin_data.core.pool import Tagged
    from twhin_data.transforms.shard.tokenize import tokenize_table

    table = pa.table(
        {
            "tweet_id": pa.array([1501, 1502, 1503], pa.int64()),
            "text": ["hello world", None, "x " * 300],
            "lang": ["en", "en", None],
            "source": ["f.parquet"] * 3,
        }
    )
    out = tokenize_table(table, tokenizer="bundled", max_length=16, valid_fraction=0.0, seed=0)
    tokens = next(o for o in out if isinstance(o, pa.Table))
    assert tokens.column("tweet_id").to_pylist() == ["1501", "1503"]
    assert tokens.column("lang").to_pylist() == ["en", "und"]
    assert tokens.column("split").to_pylist() == ["train", "train"]
    assert [len(x) for x in tokens.column("input_ids").to_pylist()][1] == 16
    tagged = [o for o in out if isinstance(o, Tagged)]
    errors = [o.value for o in tagged if o.tag == "errors"]
    stats = [o.value for o in tagged if o.tag == "stats"][0]
    assert [e["error_type"] for e in errors] == ["text_empty"] and errors[0]["source"] == "f.parquet"
    assert stats["tweets_in"] == 3 and stats["tokenized"] == 2 and stats["truncated"] == 1
    assert stats["mlm_rows_train"] == 2 and stats["mlm_rows_validation"] == 0


def test_spill_route_and_read_back(tmp_path):
    """Spilled tokens come back per shard (key % n), whole when a split has one shard."""
    import numpy as np
    import pyarrow as pa

    from twhin_data.core.pool import Tagged
    from twhin_data.core.spill import KeyShare, Pieces, read_slices
    from twhin_data.transforms.shard.steps import TOKENS, route_slice, spill_tokens

    ids = [str(1000 + i) for i in range(40)]
    table = pa.table({"tweet_id": ids, "text": [f"tweet {i}" for i in range(40)], "lang": ["en"] * 40})
    table = table.append_column("source", pa.array(["f.parquet"] * 40))
    out = spill_tokens(
        ("000000-000000-000000", table),
        tmp=str(tmp_path),
        tokenizer="bundled",
        max_length=16,
        valid_fraction=0.25,
        seed=0,
    )
    refs = dict(o for o in out if not isinstance(o, Tagged))
    assert sorted(refs) == ["train", "validation"]
    assert (tmp_path / "tokens" / "000000-000000-000000.arrow").is_file()
    whole = read_slices([refs["train"]], TOKENS)
    assert set(whole.column("split").to_pylist()) == {"train"}
    routed = route_slice(("train", refs["train"], 3))
    assert [key for key, _ in routed] == [("train", 0), ("train", 1), ("train", 2)]
    got = []
    for (_split, shard), (ref, share) in routed:
        assert share == KeyShare(shard, 3)  # two integers, no row index, go through the shuffle
        [rows] = Pieces([(ref, share)], TOKENS).rows
        part = read_slices([ref], TOKENS).take(pa.array(rows))
        keys = part.column("key").to_numpy()
        assert (keys % np.uint64(3) == shard).all()
        got += part.column("tweet_id").to_pylist()
    assert sorted(got) == sorted(whole.column("tweet_id").to_pylist())
    assert route_slice(("validation", refs["validation"], 1)) == [
        (("validation", 0), (refs["validation"], None))
    ]


def test_plan_renumber_and_dedupe():
    import pyarrow as pa

    from twhin_data.transforms.shard.steps import plan_shards, renumber

    totals = {
        "mlm_rows_train": 1000,
        "mlm_tokens_train": 30000,
        "mlm_rows_validation": 3,
        "mlm_tokens_validation": 90,
    }
    assert plan_shards(totals, prefix="mlm_", num_shards=8, target_bytes=1) == {"train": 8, "validation": 1}
    assert plan_shards(totals, prefix="mlm_", num_shards=None, target_bytes=50_000) == {
        "train": 4,
        "validation": 1,
    }
    assert plan_shards(
        {"mlm_rows_train": 2, "mlm_tokens_train": 9}, prefix="mlm_", num_shards=5, target_bytes=1
    ) == {"train": 2}
    assert renumber(("train", 5), [("train", 1), ("validation", 0), ("train", 5)]) == (1, 2)
    table = pa.table(
        {
            "tweet_id": ["9", "9", "3"],
            "lang": ["en"] * 3,
            "input_ids": pa.array([[0, 7, 2], [0, 5, 2], [0, 1, 2]], pa.list_(pa.int32())),
            "key": pa.array([2, 2, 1], pa.uint64()),
            "split": ["train"] * 3,
            "copy": pa.array([0, 0, 0], pa.int32()),
        }
    )
    order, dropped = _dedupe(table)
    kept = table.take(pa.array(order))
    assert dropped == 1
    assert kept.column("tweet_id").to_pylist() == ["3", "9"]
    assert kept.column("input_ids").to_pylist()[1] == [0, 5, 2]  # the smaller token list wins


def _dedupe(table):
    """`dedupe_order` on a TOKENS-like table."""
    import pyarrow as pa

    from twhin_data.transforms.shard.mlm_writer import dedupe_order

    def column(name):
        return lambda rows: table.column(name).take(pa.array(rows))

    return dedupe_order(
        table.column("key").to_numpy(),
        table.column("copy").to_numpy(),
        column("tweet_id"),
        lambda rows: column("input_ids")(rows).to_pylist(),
    )


def _dedupe_reference(table) -> tuple[list[int], int]:
    """Plain Python: rows sorted by (key, tweet_id, copy, row); of each (tweet_id, copy), the row
    with the smallest input_ids, then the first."""
    d = table.to_pydict()
    rows = sorted(range(table.num_rows), key=lambda r: (d["key"][r], d["tweet_id"][r], d["copy"][r], r))
    kept: list[int] = []
    for r in rows:
        last = kept[-1] if kept else None
        if last is not None and (d["tweet_id"][last], d["copy"][last]) == (d["tweet_id"][r], d["copy"][r]):
            if d["input_ids"][r] < d["input_ids"][last]:
                kept[-1] = r
            continue
        kept.append(r)
    return kept, table.num_rows - len(kept)


def test_dedupe_order_matches_a_plain_sort_with_shared_keys_copies_and_repeats():
    """Keys from a tiny space, so many rows share a key with another tweet ID (as two IDs whose
    hashes collide), repeated IDs, copies and equal token lists: the order and the rows kept are
    those of sorting every row by (key, tweet_id, copy, row)."""
    import random

    import pyarrow as pa

    rng = random.Random(5)
    for n, key_space, id_space in ((0, 1, 1), (1, 1, 1), (2, 1, 1), (50, 3, 9), (400, 40, 60), (300, 1000, 30)):
        ids = [str(rng.randrange(id_space) * 7 + 1) for _ in range(n)]  # "8" > "15" as strings
        salt = {i: rng.randrange(key_space) for i in set(ids)}
        table = pa.table(
            {
                "tweet_id": ids,
                "input_ids": pa.array([[rng.randrange(3) for _ in range(rng.randrange(1, 3))] for _ in ids], pa.list_(pa.int32())),
                "key": pa.array([salt[i] for i in ids], pa.uint64()),
                "copy": pa.array([rng.randrange(2) for _ in ids], pa.int32()),
            }
        )
        order, dropped = _dedupe(table)
        assert (order.tolist(), dropped) == _dedupe_reference(table), (n, key_space, id_space)


def test_streamed_shard_file_equals_the_whole_shard_written_at_once(tmp_path, monkeypatch):
    """write_mlm_file gathers, packs and writes one row group at a time; the file must be the bytes
    of sorting, deduplicating and packing the whole shard, then writing it in one go."""
    import hashlib

    import numpy as np
    import pyarrow as pa

    from twhin_data.core import files
    from twhin_data.core.pool import Tagged
    from twhin_data.core.spill import read_slices
    from twhin_data.transforms.shard import mlm_writer
    from twhin_data.transforms.shard.steps import TOKENS, spill_tokens

    monkeypatch.setattr(mlm_writer, "MLM_ROW_GROUP", 7)  # many row groups from a few hundred tweets
    pieces = []
    for name, first in (("000000-000000-000000", 0), ("000001-000000-000000", 150)):
        ids = [str(5000 + (first + i) % 260) for i in range(200)]  # 90 IDs in both files
        texts = [f"tweet {i} " + "word " * (i % 13) for i in range(200)]  # copies may differ in text
        table = pa.table({"tweet_id": ids, "text": texts, "lang": ["en", "fr"] * 100, "source": ["f"] * 200})
        out = spill_tokens((name, table), tmp=str(tmp_path), tokenizer="bundled", max_length=32, valid_fraction=0.0, seed=0)
        [ref] = [r for k, r in (o for o in out if not isinstance(o, Tagged)) if k == "train"]
        rows = np.flatnonzero(np.arange(read_slices([ref], TOKENS).num_rows) % 3 != 1)  # a subset, as route_slice gives
        pieces.append((ref, rows))
    whole = pa.concat_tables([read_slices([ref], TOKENS).take(pa.array(rows)) for ref, rows in pieces])
    order, dropped = _dedupe_reference(whole)
    for pack in (True, False):
        path = tmp_path / f"shard-{pack}.parquet"
        info = mlm_writer.write_mlm_file(str(path), pieces, max_length=32, pack=pack, tmp=str(tmp_path / "chunks"))
        expected = mlm_writer.mlm_rows(whole.take(pa.array(order)), max_length=32, pack=pack)
        data = files.table_to_parquet_bytes(expected, row_group_size=7)
        assert dropped == info["duplicates"] > 0 and info["tweets"] == len(order)
        assert info["rows"] == expected.num_rows and expected.num_rows > 3 * 7
        assert path.read_bytes() == data and info["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.slow
def test_manifest_counts_are_named_for_what_they_count(runs):
    """counts.<dataset>_{rows,tweets,tokens}_<split> equal a recount of that split's files."""
    out = runs[0]
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    for dataset in ("mlm", "pairs"):
        for split in ("train", "validation"):
            tables = [pq.read_table(p) for p in sorted((out / dataset).glob(f"{split}-*.parquet"))]
            rows = sum(t.num_rows for t in tables)
            if dataset == "mlm":
                tweets = sum(len(x) for t in tables for x in t.column("tweet_ids").to_pylist())
                tokens = sum(len(x) for t in tables for x in t.column("input_ids").to_pylist())
            else:
                tweets = 2 * rows
                tokens = sum(len(x) for t in tables for c in ("input_ids_a", "input_ids_b") for x in t.column(c).to_pylist())
            assert (counts[f"{dataset}_rows_{split}"], counts[f"{dataset}_tweets_{split}"]) == (rows, tweets), (dataset, split)
            assert counts[f"{dataset}_tokens_{split}"] == tokens, (dataset, split)
    assert counts["mlm_rows_train"] < counts["mlm_tweets_train"]  # packed: several tweets a row


def test_resampled_copies_become_separate_training_rows(tmp_path):
    """A corpus row with copies = k (prepare's up-sampling) is written k times in train, each copy at
    its own place of the packed stream; validation keeps one; pair shards see each tweet once."""
    rows = [
        {"tweet_id": t["id"], "text": t["text"], "lang": "en", "normalizer": "test", "copies": 3 if i % 2 else 1}
        for i, t in enumerate(synth.generate_tweets(200, seed=11))
    ]
    (tmp_path / "corpus").mkdir()
    pq.write_table(to_table(rows, CORPUS), tmp_path / "corpus" / "part-00000-of-00001.parquet")
    ids = [r["tweet_id"] for r in rows]
    pairs = [{"tweet_id_a": ids[i], "tweet_id_b": ids[i + 1], "score": 1.0, "method": "cooccurrence"} for i in range(0, 40, 2)]
    (tmp_path / "pairs").mkdir()
    pq.write_table(to_table(pairs, PAIRS), tmp_path / "pairs" / "part-00000-of-00001.parquet")
    assert shard(tmp_path, tmp_path / "out", "--workers", "1") == 0
    seen: dict[str, list[tuple[str, int]]] = {}
    for path in sorted((tmp_path / "out" / "mlm").glob("*.parquet")):
        split = path.name.split("-")[0]
        for row, tweet_ids in enumerate(pq.read_table(path).column("tweet_ids").to_pylist()):
            for tweet_id in tweet_ids:
                seen.setdefault(tweet_id, []).append((f"{path.name}:{row}", split))
    copies = {r["tweet_id"]: r["copies"] for r in rows}
    assert set(seen) == set(copies)
    for tweet_id, places in seen.items():
        splits = {split for _, split in places}
        assert len(splits) == 1  # a tweet's copies never cross train/validation
        assert len(places) == (copies[tweet_id] if splits == {"train"} else 1)
    spread = [len({p for p, _ in places}) == len(places) for t, places in seen.items() if len(places) > 1]
    assert sum(spread) / len(spread) > 0.8  # copies land in different packed rows (by hash, not by order)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    pair_ids = pq.read_table(tmp_path / "out" / "pairs").column("tweet_id_a").to_pylist()
    assert len(pair_ids) == len(set(pair_ids)) == 20 and manifest["counts"]["mlm_repeated_copies"] > 0
    stats = json.loads((tmp_path / "out" / "reports" / "shard" / "stats.json").read_text())
    assert stats["balanced"] and stats["repeated_copies"] == manifest["counts"]["mlm_repeated_copies"]
