"""Rebuilds the bundled synthetic sample in twhin_data/data/ (deterministic: rerun gives the same files).

Usage: python scripts/make_sample.py [--out DIR]

Every text is produced by twhin_data/data/synth.py from hand-written phrase lists; nothing is a real
tweet. tests/test_synth.py regenerates the sample into a temporary folder and compares it with the
committed files, so run this script after changing the generator and commit its output.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from twhin_data.core.files import table_to_parquet_bytes
from twhin_data.data import synth, synth_logs

SEED = 20240501
N_TWEETS = 640
N_AUTHORS = 400
N_ENGAGING_USERS = 600
N_ENGAGEMENTS = 5000
COMMUNITIES = 6
N_UNAVAILABLE = 24
EMBEDDING_DIM = 32
TEXTS_PER_LANGUAGE = 30
MEAN_GAP_MS = 15 * 60 * 1000

FILES = (
    "sample_tweets.jsonl",
    "sample_status.json",
    "sample_ids.txt",
    "sample_engagements.csv",
    "sample_hashtag_labels.csv",
    "sample_user_embeddings.parquet",
    "sample_tweet_embeddings.parquet",
    "sample_texts_labelled.jsonl",
)
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "twhin_data" / "data"


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode("utf-8")


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _embeddings(key: str, ids: list[str], communities: np.ndarray, seed: int) -> bytes:
    vectors = synth_logs.community_embeddings(ids, communities, EMBEDDING_DIM, seed)
    values = pa.array(vectors.reshape(-1), pa.float32())
    column = pa.FixedSizeListArray.from_arrays(values, EMBEDDING_DIM).cast(pa.list_(pa.float32()))
    table = pa.table({key: pa.array(ids, pa.string()), "embedding": column})
    return table_to_parquet_bytes(table)


def _engagement_rows(tweets: list[dict]) -> list[list[str]]:
    # Engagements with a retweet count for its original, so the log names originals only.
    originals = [t for t in tweets if not t["text"].startswith("RT @")]
    rows = [
        [e["user_id"], e["tweet_id"], e["type"], e["ts"]]
        for e in synth_logs.generate_engagements(
            originals, N_ENGAGING_USERS, N_ENGAGEMENTS, SEED, communities=COMMUNITIES
        )
    ]
    rng = random.Random(SEED)
    some = rows[len(rows) // 2]
    malformed = [
        ["abc", some[1], "fav", some[3]],  # user_id not digits
        [some[0], some[1], "like", some[3]],  # unknown engagement type
        [some[0], f"{int(some[1]):.2E}", "retweet", some[3]],  # Excel-damaged tweet ID
        [some[0], some[1], "reply", "yesterday"],  # unparseable timestamp
        [some[0], some[1]],  # missing columns
    ]
    for row in malformed:
        rows.insert(rng.randrange(1, len(rows)), row)
    return rows


def _hashtag_labels(labelled: list[tuple[dict, synth.TweetInfo]]) -> list[list[str]]:
    popular = {lang.code: set(lang.hashtags) for lang in synth.languages()}
    rows = []
    for tweet, info in labelled:
        if info.kind == "retweet" or info.true_lang not in popular:
            continue
        entities = (tweet.get("note_tweet") or tweet).get("entities", {})
        tags = [h["tag"] for h in entities.get("hashtags", []) if h["tag"] in popular[info.true_lang]]
        if tags:
            rows.append([tweet["id"], tags[0], info.true_lang])
    return rows


def build() -> dict[str, bytes]:
    """The sample files by name, as bytes."""
    labelled = list(
        synth.generate_labelled_tweets(N_TWEETS, SEED, n_users=N_AUTHORS, mean_gap_ms=MEAN_GAP_MS)
    )
    tweets = [t for t, _ in labelled]
    ids = [t["id"] for t in tweets]
    status = synth_logs.unavailable_ids(ids, N_UNAVAILABLE, SEED)
    id_lines = synth_logs.generate_id_list(ids, sorted(status), SEED)
    users = [synth_logs.user_id(i) for i in range(N_ENGAGING_USERS)]
    texts = [{"text": t, "lang": c} for t, c in synth.generate_labelled_texts(TEXTS_PER_LANGUAGE, SEED)]
    return {
        "sample_tweets.jsonl": _jsonl(tweets),
        "sample_status.json": (json.dumps(status, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        "sample_ids.txt": "".join(line + "\n" for line in id_lines).encode("utf-8"),
        "sample_engagements.csv": _csv(["user_id", "tweet_id", "type", "ts"], _engagement_rows(tweets)),
        "sample_hashtag_labels.csv": _csv(["ID", "label", "lang"], _hashtag_labels(labelled)),
        "sample_user_embeddings.parquet": _embeddings(
            "user_id", users, synth_logs.user_community(users, COMMUNITIES), SEED
        ),
        "sample_tweet_embeddings.parquet": _embeddings(
            "tweet_id", ids, synth_logs.tweet_community(ids, COMMUNITIES), SEED + 1
        ),
        "sample_texts_labelled.jsonl": _jsonl(texts),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="Folder to write the sample files into."
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, data in build().items():
        (args.out / name).write_bytes(data)
        total += len(data)
        print(f"{name:34s} {len(data):>9,d} bytes")
    print(f"{'total':34s} {total:>9,d} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
