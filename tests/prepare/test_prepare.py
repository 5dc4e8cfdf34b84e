"""prepare end to end (CLI on FnApiRunner) and its pure pieces: accounting, bad input, dedup, resampling."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from apache_beam.io.localfilesystem import LocalFileSystem

from twhin_data.runners import cli
from twhin_data.schemas import to_table
from twhin_data.schemas.corpus import CORPUS
from twhin_data.schemas.tweets import TWEETS
from twhin_data.transforms.prepare.dedup import dedup_table
from twhin_data.transforms.prepare.resample import resample_rates, resample_table
from twhin_data.transforms.prepare.table import KEPT, text_hash

EN = "The weather is really nice today, going for a long walk in the park"
JA = "今日はとても良い天気なので公園を散歩します"
ES = "Hoy hace muy buen tiempo, vamos a caminar por el parque con amigos"
BAD_UTF8 = b"caf\xff\xfe broken bytes"
CESU_PAIR = b"smile " + b"\xed\xa0\xbd\xed\xb8\x80" + b" ok today with friends"
CESU_LONE = b"lonely " + b"\xed\xa0\xbd" + b" surrogate"


def _rows() -> list[dict]:
    return [
        {"tweet_id": "200", "text": EN + " @bob https://t.co/a", "lang": "en"},
        {"tweet_id": "150", "text": EN + " @alice https://t.co/b", "lang": "en"},  # same text: 150 stays
        {"tweet_id": "300", "text": JA, "lang": "ja"},
        {
            "tweet_id": "301",
            "text": JA,
            "lang": "ja",
            "referenced_tweets": [{"type": "retweeted", "id": "300"}],
        },
        {
            "tweet_id": "302",
            "text": ES,
            "lang": "es",
            "referenced_tweets": [{"type": "retweeted", "id": "90"}],
        },
        {
            "tweet_id": "303",
            "text": ES,
            "lang": "es",
            "referenced_tweets": [{"type": "retweeted", "id": "90"}],
        },
        {"tweet_id": "400", "text": None, "lang": "en"},
        {"tweet_id": "401", "text": "x" * 1_000_000, "lang": "en"},
        {"tweet_id": "402", "text": "\u200b \u200f ", "lang": "und"},
        {"tweet_id": "403", "text": "ok", "lang": "en"},
        {"tweet_id": "12a", "text": "not an id", "lang": "en"},
        {"tweet_id": "404", "text": "PLACEHOLDER_BAD_UTF8", "lang": "en"},
        {"tweet_id": "405", "text": "PLACEHOLDER_CESU_PAIR", "lang": "en"},
        {"tweet_id": "406", "text": "PLACEHOLDER_CESU_LONE", "lang": "en"},
        {"tweet_id": "200", "text": EN + " @bob https://t.co/a", "lang": "en"},  # the same tweet twice
    ]


def write_tweets(path: Path, rows: list[dict]) -> None:
    """Writes hydrate-layout Parquet; PLACEHOLDER_* texts become raw (possibly invalid) bytes."""
    table = to_table(rows, TWEETS)
    raw = {
        "PLACEHOLDER_BAD_UTF8": BAD_UTF8,
        "PLACEHOLDER_CESU_PAIR": CESU_PAIR,
        "PLACEHOLDER_CESU_LONE": CESU_LONE,
    }
    texts = [
        raw.get(t, t.encode("utf-8") if t is not None else None) for t in table.column("text").to_pylist()
    ]
    column = pa.array(texts, pa.binary()).view(pa.string())
    table = table.set_column(table.schema.get_field_index("text"), TWEETS.field("text"), column)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def run_prepare(tmp: Path, *flags: str, name: str = "out") -> Path:
    out = tmp / name
    code = cli.main(["prepare", f"--tweets={tmp / 'in'}", f"--output={out}", "--log_level=WARNING", *flags])
    assert code == 0
    return out


def _stats(out: Path) -> dict:
    return json.loads((out / "reports" / "prepare" / "stats.json").read_text())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("prep")
    write_tweets(tmp / "in" / "tweets" / "part-0.parquet", _rows())
    return run_prepare(tmp, "--workers=1", "--min_chars=5")


def test_every_record_accounted_for(prepared: Path) -> None:
    stats = _stats(prepared)
    assert stats["in"] == 15
    assert stats["in"] == stats["out"] + stats["rejected_total"] + stats["duplicates_total"]
    assert stats["balanced"] is True
    assert not (prepared / "_tmp_prepare").exists()  # the pooled steps' slices are removed
    assert stats["rejected"] == {
        "empty_after_normalization": 1,
        "invalid_id": 1,
        "invalid_utf8": 1,
        "lone_surrogate": 1,
        "text_null": 1,
        "text_too_long": 1,
        "too_short": 1,
    }
    assert stats["duplicates"] == {"duplicate_id": 1, "duplicate_text": 1, "retweet_duplicate": 2}
    assert stats["out"] == 4


def test_bad_input_goes_to_dead_letters(prepared: Path) -> None:
    errors = pq.read_table(prepared / "errors" / "prepare").to_pylist()
    by_type = {e["error_type"]: e for e in errors}
    assert sorted(by_type) == ["invalid_id", "invalid_utf8", "lone_surrogate", "text_null", "text_too_long"]
    assert len(by_type["text_too_long"]["input"]) <= 1000
    assert "1000000 characters" in by_type["text_too_long"]["message"]
    assert "not valid UTF-8" in by_type["invalid_utf8"]["message"]
    assert all(e["stage"] == "prepare" and e["source"].endswith("part-0.parquet") for e in errors)


def test_dedup_and_retweets(prepared: Path) -> None:
    corpus = pq.read_table(prepared / "corpus")
    assert corpus.schema.equals(CORPUS, check_metadata=False)
    rows = {r["tweet_id"]: r for r in corpus.to_pylist()}
    assert sorted(rows) == ["150", "300", "405", "90"]
    assert rows["150"]["text"] == EN + " @user http"  # lowest ID of the duplicated text
    assert rows["300"]["source_tweet_id"] == "300"  # the original beat its retweet
    assert rows["90"]["source_tweet_id"] == "302"  # absent original: kept once under its own ID
    assert rows["90"]["author_id"] is None and rows["90"]["created_at"] is not None
    assert rows["405"]["text"] == "smile 😀 ok today with friends"  # CESU-8 pair repaired
    assert rows["300"]["lang"] == "ja" and rows["90"]["lang"] == "es" and rows["150"]["lang"] == "en"
    assert rows["150"]["normalizer"] == "normalize_v1+user+http"
    assert rows["150"]["text_raw"] is None


def test_report_is_self_contained(prepared: Path) -> None:
    html = (prepared / "reports" / "prepare" / "report.html").read_text()
    assert html.count("<svg") >= 3
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "retweet_duplicate" in html


def test_filters_languages_and_raw_text(tmp_path: Path) -> None:
    write_tweets(
        tmp_path / "in" / "p.parquet", [r for r in _rows() if r["tweet_id"] in ("150", "300", "302")]
    )
    out = run_prepare(tmp_path, "--workers=1", "--languages=ja,es", "--keep_raw_text", "--dedup=none")
    stats = _stats(out)
    assert stats["rejected"] == {"language_not_wanted": 1}
    corpus = pq.read_table(out / "corpus").to_pylist()
    assert [r["tweet_id"] for r in corpus] == ["300", "90"]
    assert corpus[0]["text_raw"] == JA


def test_wrong_schema_is_one_line_error(tmp_path: Path, capsys) -> None:
    pq.write_table(pa.table({"tweet_id": ["1"], "body": ["x"]}), tmp_path / "in.parquet")
    code = cli.main(["prepare", f"--tweets={tmp_path / 'in.parquet'}", f"--output={tmp_path / 'o'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "missing column 'text'" in err
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    code = cli.main(["prepare", f"--tweets={tmp_path / 'junk.parquet'}", f"--output={tmp_path / 'o'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "not a readable Parquet file" in err


def test_existing_output_needs_overwrite(prepared: Path, capsys) -> None:
    code = cli.main(["prepare", f"--tweets={prepared.parent / 'in'}", f"--output={prepared}"])
    assert code == 2 and "--overwrite" in capsys.readouterr().err


def _kept_table(rows: list[tuple[str, str, bool]]) -> pa.Table:
    data = [
        {
            "tweet_id": i,
            "source_tweet_id": i,
            "text": t,
            "lang": "en",
            "normalizer": "n",
            "_rt": rt,
            "_h": text_hash(t),
        }
        for i, t, rt in rows
    ]
    return to_table(data, KEPT)


def test_dedup_independent_of_arrival_order() -> None:
    rows = [(str(i), f"text {i % 7}", i % 5 == 0) for i in range(1, 60)] + [("3", "text 3", True)]
    expected, _ = dedup_table(_kept_table(rows), exact=True)
    for seed in range(3):
        random.Random(seed).shuffle(rows)
        got, stats = dedup_table(_kept_table(rows), exact=True)
        assert got.equals(expected)
    assert sorted(expected.column("text").to_pylist()) == [f"text {k}" for k in range(7)]
    assert expected.column("tweet_id").to_pylist()[0] in {str(k) for k in range(1, 8)}
    assert sum(stats.to_dict()["duplicates"].values()) == len(rows) - 7


def test_dedup_exact_even_when_hashes_collide() -> None:
    rows = [("1", "a", False), ("2", "b", False), ("3", "a", False), ("4", "b", False)]
    table = _kept_table(rows)
    table = table.set_column(
        table.schema.get_field_index("_h"), KEPT.field("_h"), pa.array([7] * 4, pa.uint64())
    )
    got, _ = dedup_table(table, exact=True)
    assert sorted(got.column("tweet_id").to_pylist()) == ["1", "2"]


def test_dedup_ids_compared_numerically() -> None:
    got, _ = dedup_table(_kept_table([("10", "same", False), ("9", "same", False)]), exact=True)
    assert got.column("tweet_id").to_pylist() == ["9"]


def test_resample_rates_follow_power_law_and_keep_the_volume() -> None:
    counts = {"en": 10_000, "ja": 1_000, "xx": 100, "und": 50, "rare": 5}
    rates = resample_rates(counts, alpha=0.7, min_count=100)
    assert rates["und"] == 1.0 and rates["rare"] == 1.0  # the floor: kept whole, never repeated
    copies = {k: counts[k] * rates[k] for k in counts}
    assert copies["en"] / copies["ja"] == pytest.approx(10**0.7)
    assert copies["ja"] / copies["xx"] == pytest.approx(10**0.7)
    assert sum(copies.values()) == pytest.approx(sum(counts.values()))  # default target: same size
    assert rates["en"] < 1.0 < rates["xx"]  # the big language shrinks, the small one is repeated
    assert resample_rates(counts, alpha=1.0) == dict.fromkeys(counts, 1.0)
    doubled = resample_rates(counts, alpha=1.0, target=2 * sum(counts.values()) - 55)
    assert doubled["en"] == pytest.approx(2.0) and doubled["und"] == 1.0


def test_skewed_million_tweets_match_the_power_law_within_one_percent() -> None:
    """One language 60%, several under 1%: shares of the written copies vs n^0.7 / sum n^0.7."""
    shares = {"en": 0.60, "ja": 0.20, "es": 0.12, "pt": 0.05, "ar": 0.0094, "th": 0.0081, "ko": 0.0065, "tr": 0.006}
    n = 1_000_000
    counts = {lang: int(n * share) for lang, share in shares.items()}
    langs = np.concatenate([np.full(c, lang, dtype=object) for lang, c in counts.items()])
    ids = [str(1_200_000_000_000_000_000 + 7919 * i) for i in range(len(langs))]
    table = pa.table(
        {"tweet_id": pa.array(ids), "lang": pa.array(langs.tolist()), "num_chars": pa.array(np.ones(len(ids), np.int32))}
    )
    target = 1_500_000
    rates = resample_rates(counts, alpha=0.7, min_count=100, target=target)
    kept, _ = resample_table(table, rates)
    copies = kept.column("copies").to_numpy()
    total = int(copies.sum())
    assert abs(total - target) / target < 0.01
    z = sum(c**0.7 for c in counts.values())
    got = pa.table({"lang": kept.column("lang"), "c": copies}).group_by("lang").aggregate([("c", "sum")]).to_pydict()
    for lang, c in zip(got["lang"], got["c_sum"], strict=True):
        assert abs(c / total - counts[lang] ** 0.7 / z) < 0.01, lang
    again, _ = resample_table(table.take(np.arange(table.num_rows)[::-1]), rates)
    assert again.sort_by("tweet_id").equals(kept.sort_by("tweet_id"))  # same tweets, same copies


def test_resample_deterministic_by_id() -> None:
    ids = [str(10**15 + i) for i in range(20_000)]
    table = to_table(
        [{"tweet_id": i, "text": "t", "lang": "en", "normalizer": "n", "num_chars": 1} for i in ids], CORPUS
    ).drop_columns(["copies"])
    kept1, stats = resample_table(table, {"en": 0.25})
    kept2, _ = resample_table(table.take(np.arange(table.num_rows)[::-1]), {"en": 0.25})
    assert sorted(kept1.column("tweet_id").to_pylist()) == sorted(kept2.column("tweet_id").to_pylist())
    assert abs(kept1.num_rows / 20_000 - 0.25) < 0.02
    assert stats.to_dict()["rejected"]["resampled_out"] == 20_000 - kept1.num_rows
    repeated, stats = resample_table(table, {"en": 2.5})
    copies = repeated.column("copies").to_numpy()
    assert repeated.num_rows == 20_000 and set(copies.tolist()) == {2, 3}
    assert abs(copies.mean() - 2.5) < 0.02 and stats.to_dict()["repeated_copies"] == copies.sum() - 20_000
    weights, _ = resample_table(table, {"en": 0.25}, mode="weights")
    assert weights.num_rows == 20_000 and set(weights.column("copies").to_pylist()) == {1}


def test_resampling_end_to_end(tmp_path: Path) -> None:
    rows = [{"tweet_id": str(1000 + i), "text": f"{EN} number {i}", "lang": "en"} for i in range(300)]
    rows += [{"tweet_id": str(5000 + i), "text": f"{ES} número {i}", "lang": "es"} for i in range(30)]
    write_tweets(tmp_path / "in" / "p.parquet", rows)
    out = run_prepare(tmp_path, "--workers=1", "--resample_alpha=0.5", "--resample_min_count=10", "--dedup=exact", "--near_dedup=off")
    stats = _stats(out)
    assert stats["languages"]["before_resampling"] == {"en": 300, "es": 30}
    # q_en = sqrt(300) / (sqrt(300) + sqrt(30)) = 0.76 of 330: en 251 copies (down), es 79 (repeated)
    after, rows_out = stats["languages"]["after_resampling"], stats["languages"]["corpus_rows"]
    assert 230 <= after["en"] <= 270 and 70 <= after["es"] <= 90
    assert rows_out["es"] == 30 and rows_out["en"] == after["en"]
    assert stats["rejected"]["resampled_out"] == 300 - rows_out["en"]
    plan = stats["resampling"]["languages"]
    assert plan["es"]["repeated"] == after["es"] - 30 and plan["en"]["resource_class"] == "low"
    assert stats["balanced"] and abs(stats["out_copies"] - 330) <= 15
    corpus = pq.read_table(out / "corpus")
    assert int(pc.sum(corpus.column("copies")).as_py()) == stats["out_copies"]


def test_read_tasks_cover_every_row_once(tmp_path: Path) -> None:
    from twhin_data.transforms.prepare.read import plan_tasks, read_task

    rows = [{"tweet_id": str(i), "text": f"t{i}"} for i in range(7_001)]
    pq.write_table(to_table(rows, TWEETS), tmp_path / "a.parquet", row_group_size=3_000)
    pq.write_table(to_table(rows[:5], TWEETS), tmp_path / "b.parquet")
    paths = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    assert len(plan_tasks(paths, rows_per_task=4_000)) == 4  # a: groups of 3000, 3000, 1001 rows; b: 1
    tasks = plan_tasks(paths, rows_per_task=2_000)
    assert len(tasks) == 6  # 2 + 2 + 1 batches of 2000 in a, 1 in b
    ids = [i for task in tasks for table in read_task(task) for i in table.column("tweet_id").to_pylist()]
    assert ids == [r["tweet_id"] for r in rows] + [str(i) for i in range(5)]


class _SchemeFS(LocalFileSystem):
    """A 'spilltest://' filesystem over a local directory: exercises the remote (gs://-like) paths."""

    ROOT = ""

    @classmethod
    def scheme(cls) -> str:
        return "spilltest"

    def _local(self, path: str) -> str:
        if not path.startswith("spilltest://"):  # already local (LocalFileSystem.match calls back)
            return path
        return str(Path(self.ROOT) / path[len("spilltest://") :])

    def create(self, path, *args, **kwargs):
        Path(self._local(path)).parent.mkdir(parents=True, exist_ok=True)
        return super().create(self._local(path), *args, **kwargs)

    def open(self, path, *args, **kwargs):
        return super().open(self._local(path), *args, **kwargs)

    def exists(self, path) -> bool:
        return super().exists(self._local(path))

    def rename(self, sources, destinations) -> None:
        super().rename([self._local(p) for p in sources], [self._local(p) for p in destinations])

    def delete(self, paths) -> None:
        import shutil

        for path in map(Path, map(self._local, paths)):  # (LocalFileSystem.delete calls match)
            shutil.rmtree(path) if path.is_dir() else path.unlink()

    def match(self, patterns, limits=None):
        from apache_beam.io.filesystem import FileMetadata, MatchResult

        results = super().match([self._local(p) for p in patterns], limits)
        root = str(Path(self.ROOT))
        return [
            MatchResult(
                pattern,
                [
                    FileMetadata("spilltest://" + str(Path(m.path).relative_to(root)), m.size_in_bytes)
                    for m in result.metadata_list
                ],
            )
            for pattern, result in zip(patterns, results, strict=True)
        ]


@pytest.mark.parametrize("remote", [False, True])
def test_spilled_slices_read_back_in_name_order(tmp_path: Path, remote: bool) -> None:
    from twhin_data.core.spill import read_slices, write_slices

    _SchemeFS.ROOT = str(tmp_path)
    base = "spilltest://spill" if remote else str(tmp_path / "spill")
    table = _kept_table([(str(i), f"text {i}", False) for i in range(10)])
    refs_a = write_slices(
        f"{base}/task-0000001.arrow", KEPT, [(0, table.slice(0, 4)), (1, table.slice(4, 3))]
    )
    refs_b = write_slices(
        f"{base}/task-0000000.arrow", KEPT, [(0, table.slice(7, 3)), (1, table.slice(0, 0))]
    )
    assert [k for k, _ in refs_a] == [0, 1] and [k for k, _ in refs_b] == [0]  # empty slices are skipped
    bucket0 = [ref for key, ref in refs_a + refs_b if key == 0]
    got = read_slices(bucket0, KEPT)
    assert got.column("tweet_id").to_pylist() == ["7", "8", "9", "0", "1", "2", "3"]  # task 0 first
    assert read_slices(list(reversed(bucket0)), KEPT).equals(got)
    assert read_slices([], KEPT).num_rows == 0


@pytest.mark.parametrize("remote", [False, True])
def test_remove_tree_deletes_only_below_the_folder(tmp_path: Path, remote: bool) -> None:
    """The spill folders of prepare and shard are removed, locally and on object stores."""
    from twhin_data.core import files
    from twhin_data.core.files import remove as remove_tree

    _SchemeFS.ROOT = str(tmp_path)
    base = "spilltest://out" if remote else str(tmp_path / "out")
    for name in ("_tmp/tokens/a.arrow", "_tmp/tokens/b.arrow", "_tmp/x.arrow", "_tmp_other/keep.arrow"):
        files.write_bytes_atomic(files.join(base, name), b"x")
    remove_tree(files.join(base, "_tmp"))
    left = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert left == ["_tmp_other/keep.arrow"]
    remove_tree(files.join(base, "_tmp"))  # nothing left to delete: no error


def test_part_writer_matches_write_dataset(tmp_path: Path) -> None:
    """write_part puts rows in the parts WriteDataset picks, with the same bytes."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

    from tests.conftest import fnapi_options
    from twhin_data.transforms.io import WriteDataset
    from twhin_data.transforms.prepare.steps import dedup_bucket, write_part

    rows = [(str(10**12 + i * 7919 % 1000), f"text {i % 400}", False) for i in range(1000)]
    table = _kept_table(rows)
    ref = _spill_one(tmp_path, table)
    outputs = dedup_bucket((0, [ref]), exact=True, num_parts=3, tmp=str(tmp_path / "tmp"))
    by_part: dict[int, list] = {}
    for out in outputs:
        if isinstance(out, tuple):
            by_part.setdefault(out[0], []).append(out[1])
    assert sorted(by_part) == [0, 1, 2]
    for part, refs in by_part.items():
        write_part((part, refs, {"en": 1.0}, {}), path=str(tmp_path / "spill_corpus"), num_parts=3)
    kept, _ = dedup_table(table, exact=True)
    kept = kept.append_column("copies", pa.array([1] * kept.num_rows, pa.int32()))  # rate 1: one copy each
    with BeamTestPipeline(options=fnapi_options()) as p:
        _ = p | beam.Create([kept]) | WriteDataset(str(tmp_path / "ref_corpus"), CORPUS, num_shards=3)
    names = sorted(f.name for f in (tmp_path / "ref_corpus").iterdir())
    assert names == sorted(f.name for f in (tmp_path / "spill_corpus").iterdir()) and len(names) == 3
    for name in names:
        assert (tmp_path / "ref_corpus" / name).read_bytes() == (
            tmp_path / "spill_corpus" / name
        ).read_bytes()


def _spill_one(tmp_path: Path, table: pa.Table):
    from twhin_data.core.spill import write_slices

    [(_key, ref)] = write_slices(str(tmp_path / "in.arrow"), KEPT, [(0, table)])
    return ref


@pytest.mark.slow
def test_output_independent_of_bucket_count(tmp_path: Path) -> None:
    """A retweet whose text differs from its original's meets it only in the writer: same bytes anyway."""
    rows = [{"tweet_id": str(1000 + i), "text": f"{EN} number {i}", "lang": "en"} for i in range(200)]
    rows += [
        {
            "tweet_id": str(5000 + i),
            "text": f"RT @x: {EN} number {i} and more",
            "lang": "en",
            "referenced_tweets": [{"type": "retweeted", "id": str(1000 + i)}],
        }
        for i in range(0, 200, 3)
    ]
    write_tweets(tmp_path / "in" / "p.parquet", rows)
    outs = [
        run_prepare(tmp_path, "--workers=1", f"--dedup_buckets={b}", "--num_output_shards=2", "--dedup=exact", "--near_dedup=off", name=f"b{b}")
        for b in (1, 7)
    ]
    parts = [sorted((out / "corpus").iterdir()) for out in outs]
    assert [p.name for p in parts[0]] == [p.name for p in parts[1]]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(*parts, strict=True))
    ids = pq.read_table(outs[0] / "corpus").column("tweet_id").to_pylist()
    assert len(ids) == len(set(ids)) == 200  # one row per ID: the 67 retweets collapsed into originals
    assert _stats(outs[0])["duplicates"]["retweet_duplicate"] == 67


def test_retweet_with_truncated_text_does_not_duplicate_its_original(tmp_path: Path) -> None:
    # Hydrated without the original in `includes`, a retweet keeps its own truncated "RT @x: …" text;
    # dedup (by text) cannot meet it with its original, so the writer must keep one row per ID.
    rows = [
        {"tweet_id": "500", "text": ES, "lang": "es"},
        {
            "tweet_id": "501",
            "text": "RT @ana: " + ES[:30] + "…",
            "lang": "es",
            "referenced_tweets": [{"type": "retweeted", "id": "500"}],
        },
        {"tweet_id": "600", "text": EN, "lang": "en"},
    ]
    write_tweets(tmp_path / "in" / "tweets" / "part-0.parquet", rows)
    out = run_prepare(tmp_path, "--workers=1", "--strip_rt")
    corpus = pq.read_table(out / "corpus").to_pylist()
    ids = [r["tweet_id"] for r in corpus]
    assert sorted(ids) == ["500", "600"]
    assert {r["tweet_id"]: r["source_tweet_id"] for r in corpus}["500"] == "500"  # the original stays
    stats = _stats(out)
    assert stats["duplicates"].get("retweet_duplicate") == 1
    assert stats["in"] == stats["out"] + sum(stats["rejected"].values()) + sum(stats["duplicates"].values())


def test_drop_duplicate_ids_keeps_the_original() -> None:
    from twhin_data.transforms.prepare.dedup import drop_duplicate_ids

    table = pa.table(
        {
            "tweet_id": ["7", "7", "7", "8"],
            "source_tweet_id": ["9", "7", "8", "8"],
            "lang": ["en", "en", "en", "ja"],
        }
    )
    kept, stats = drop_duplicate_ids(table)
    assert kept.to_pylist() == [
        {"tweet_id": "7", "source_tweet_id": "7", "lang": "en"},
        {"tweet_id": "8", "source_tweet_id": "8", "lang": "ja"},
    ]
    assert stats.to_dict()["duplicates"] == {"retweet_duplicate": 2}
    assert stats.to_dict()["lang_before"] == {"en": -2}
