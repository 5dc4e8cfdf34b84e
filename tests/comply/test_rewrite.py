"""comply's pure rewriters on small tables written by hand: what leaves, what stays, what is re-packed."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from twhin_data.schemas import to_table
from twhin_data.schemas.benchmark import BENCH_TWEETS, ENGAGEMENT_CANDIDATES
from twhin_data.schemas.shards import MLM_SHARD
from twhin_data.schemas.tweets import TWEETS
from twhin_data.transforms.comply.benchmarks import replace_candidates
from twhin_data.transforms.comply.job import removal_ids
from twhin_data.transforms.comply.manifests import update_shards
from twhin_data.transforms.comply.removals import Removals, mentions, removed_in, removed_in_lists
from twhin_data.transforms.comply.rewrite import Context, hit_rows, repack_mlm, rewrite_table, rewrite_tsv
from twhin_data.xapi.compliance import parse_events


def _removed(*ids: str) -> np.ndarray:
    return np.array(sorted(int(i) for i in ids), dtype=np.uint64)


def test_membership_on_string_integer_list_and_text_columns():
    removed = _removed("10", "1477000000000000001")
    assert removed_in(pa.array(["10", "11", None, "x1", "1477000000000000001"]), removed).tolist() == [True, False, False, False, True]
    assert removed_in(pa.array([10, 12], pa.int64()), removed).tolist() == [True, False]
    per_element, per_row = removed_in_lists(pa.array([["1", "10"], [], ["2"]]), removed)
    assert per_element.tolist() == [False, True, False] and per_row.tolist() == [True, False, False]
    assert mentions(['{"tweet_id": "10"}', "id 100", None], removed).tolist() == [True, False, False]
    removals = Removals()
    removals.add(["10", "3", "10"], "requested")
    assert removals.ids.tolist() == [3, 10] and removals.reasons["requested"] == 3


def _mlm(rows: list[list[tuple[str, list[int]]]]) -> pa.Table:
    out = []
    for row in rows:
        ids, offsets = [], []
        for _tweet, tokens in row:
            offsets.append(len(ids))
            ids.extend(tokens)
        out.append(
            {"input_ids": ids, "tweet_offsets": offsets, "tweet_ids": [t for t, _ in row], "langs": ["en"] * len(row), "num_tokens": len(ids)}
        )
    return to_table(out, MLM_SHARD)


def test_mlm_rows_are_repacked_without_the_removed_spans():
    table = _mlm([[("1", [0, 5, 6, 2]), ("2", [0, 7, 2]), ("3", [0, 8, 9, 9, 2])], [("2", [0, 7, 2])], [("4", [0, 4, 2])]])
    out, tweets, tokens, langs = repack_mlm(table, _removed("2"))
    assert out.to_pylist() == [
        {"input_ids": [0, 5, 6, 2, 0, 8, 9, 9, 2], "tweet_offsets": [0, 4], "tweet_ids": ["1", "3"], "langs": ["en", "en"], "num_tokens": 9},
        {"input_ids": [0, 4, 2], "tweet_offsets": [0], "tweet_ids": ["4"], "langs": ["en"], "num_tokens": 3},
    ]  # the row that held only tweet 2 is gone; the others keep their order
    assert (tweets, tokens, langs) == (2, 6, {"en": [2, 6]})
    with pytest.raises(ValueError, match="not a twhin-data shard"):
        repack_mlm(table.set_column(1, "tweet_offsets", pa.array([[0, 4, 20], [0], [0]], pa.list_(pa.int32()))), _removed("2"))
    with pytest.raises(ValueError, match="not a twhin-data shard"):
        repack_mlm(table.set_column(1, "tweet_offsets", pa.array([[0, 4], [0], [0]], pa.list_(pa.int32()))), _removed("2"))


def test_tweets_lose_removed_rows_and_retweets_and_scrub_references():
    rows = [
        {"tweet_id": "1", "text": "gone"},
        {"tweet_id": "2", "text": "RT of 1", "referenced_tweets": [{"type": "retweeted", "id": "1"}]},
        {"tweet_id": "3", "text": "reply", "conversation_id": "1", "referenced_tweets": [{"type": "replied_to", "id": "1"}, {"type": "quoted", "id": "9"}]},
        {"tweet_id": "4", "text": "kept", "edit_history_tweet_ids": ["1", "4"]},
    ]
    table = to_table(rows, TWEETS)
    ctx = Context(_removed("1"))
    assert hit_rows("tweets", table, ctx).tolist() == [True, True, True, True]
    out, info = rewrite_table("tweets", table, ctx)
    got = {r["tweet_id"]: r for r in out.to_pylist()}
    assert sorted(got) == ["3", "4"] and info == {"rows_before": 4, "rows_after": 2}
    assert got["3"]["conversation_id"] is None and got["3"]["referenced_tweets"] == [{"type": "quoted", "id": "9"}]
    assert got["4"]["edit_history_tweet_ids"] == ["4"] and got["4"]["text"] == "kept"


def test_graph_edges_users_and_pbg_lines():
    edges = pa.table({"lhs": pa.array([0, 0, 1], pa.int64()), "rel": pa.array([0, 1, 0], pa.int32()), "rhs": pa.array([5, 6, 5], pa.int64()), "ts": pa.array([None] * 3, pa.int64())})
    ctx = Context(_removed(), graph_removed=np.array([5], np.int64), degree_drop={0: 1, 1: 1})
    assert rewrite_table("graph_edges", edges, ctx)[0].column("rhs").to_pylist() == [6]
    users = pa.table({"index": pa.array([0, 1, 2], pa.int64()), "user_id": ["u0", "u1", "u2"], "degree": pa.array([2, 1, 4], pa.int64())})
    assert rewrite_table("graph_users", users, ctx)[0].column("degree").to_pylist() == [1, 0, 4]
    data, info = rewrite_tsv(b"u1\tfav\tt10\nu2\treply\tt11\nu3\tfav\tt10\n", _removed("10"))
    assert data == b"u2\treply\tt11\n" and info == {"rows_before": 3, "rows_after": 1}


def test_candidate_lists_keep_their_size_with_replacement_negatives():
    tweets = to_table(
        [{"tweet_id": str(i), "lang": "en", "split": "test", "text": "t"} for i in range(1, 9)]
        + [{"tweet_id": "50", "lang": "en", "split": "validation", "text": "t"}],
        BENCH_TWEETS,
    )
    lists = to_table(
        [
            {"lang": "en", "split": "test", "user_row": 0, "candidate_tweet_ids": ["1", "2", "3"], "positive_index": 0},
            {"lang": "en", "split": "test", "user_row": 1, "candidate_tweet_ids": ["4", "2", "5"], "positive_index": 1},
            {"lang": "en", "split": "test", "user_row": 2, "candidate_tweet_ids": ["6", "7"], "positive_index": 1},
        ],
        ENGAGEMENT_CANDIDATES,
    )
    new, info = replace_candidates(lists, tweets, "test", _removed("2"))
    rows = new.to_pylist()
    assert [r["user_row"] for r in rows] == [0, 2]  # user 1's engaged tweet was removed: its list leaves
    assert len(rows[0]["candidate_tweet_ids"]) == 3 and "2" not in rows[0]["candidate_tweet_ids"]
    assert rows[0]["candidate_tweet_ids"][0] == "1" and rows[0]["candidate_tweet_ids"][2] == "3"
    assert rows[0]["candidate_tweet_ids"][1] in {"4", "5", "6", "7", "8"}  # same split, never "50"
    assert info["negatives_replaced"] == 1 and info["short_candidate_lists"] == 0
    again, _ = replace_candidates(lists, tweets, "test", _removed("2"))
    assert again.equals(new)  # deterministic
    starved, info = replace_candidates(lists, tweets.slice(0, 5), "test", _removed("2", "4", "5"))
    assert info["short_candidate_lists"] == 1 and starved.to_pylist()[0]["candidate_tweet_ids"] == ["1", "3"]


def test_compliance_results_and_the_shards_manifest():
    result = parse_events(['{"id":"5","action":"delete","reason":"deleted"}', '{"id":"6","action":"scrub_geo","reason":"scrub_geo"}', "not json", '{"id":"x"}'])
    assert removal_ids(result) == {"deleted": ["5"]} and result.bad_lines == 2
    manifest = {
        "shards": [
            {"file": "mlm/train-00000-of-00001.parquet", "dataset": "mlm", "split": "train", "rows": 3, "tweets": 4, "tokens": 19, "bytes": 10, "sha256": "a"},
            {"file": "pairs/train-00000-of-00001.parquet", "dataset": "pairs", "split": "train", "rows": 2, "tweets": 4, "tokens": 20, "bytes": 9, "sha256": "b"},
        ],
        "counts": {"mlm_rows_train": 3},
        "languages": {"en": {"tweets": 4, "tokens": 19}},
    }
    info = {"rel": "shards/mlm/train-00000-of-00001.parquet", "kind": "mlm", "rows_before": 3, "rows_after": 2, "tweets": 3, "tokens": 16, "bytes": 8, "sha256": "c", "tweets_removed": 1, "langs_removed": {"en": [1, 3]}}
    out = update_shards(manifest, [info], {"date": "2026-12-01", "sources": ["remove_ids:x.txt"], "removed_ids": 1})
    assert out["shards"][0]["sha256"] == "c" and out["shards"][1]["sha256"] == "b"
    assert out["splits"]["mlm"]["train"]["rows"] == 2 and out["counts"]["mlm_rows_train"] == 2
    assert out["languages"]["en"] == {"tweets": 3, "tokens": 16} and out["version"] == 2
    assert out["compliance"][0]["rows_removed"] == 1 and update_shards(manifest, [], {}) is None
