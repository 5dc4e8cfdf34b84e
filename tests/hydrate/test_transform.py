"""HydrateTweets and its pieces: batch planning, resume carry-over, progress reuse on retries."""

from __future__ import annotations

from datetime import UTC, datetime

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import fnapi_options
from twhin_data.schemas import to_table
from twhin_data.schemas.tweets import TWEETS, UNAVAILABLE
from twhin_data.transforms.hydrate.lookup import Batch, LookupBatchFn, settle_rows
from twhin_data.transforms.hydrate.transform import HydrateTweets, _PlanShardFn, make_plan
from twhin_data.xapi.auth import TokenSource
from twhin_data.xapi.client import ClientConfig
from twhin_data.xapi.mock.server import MockXApi

TOKEN = "transform-test-token"


def _tweet(i: str) -> dict:
    return {"id": i, "text": f"t{i}", "lang": "en", "edit_history_tweet_ids": [i]}


def test_plan_collapses_duplicates_and_cuts_sorted_batches():
    fn = _PlanShardFn(batch_size=3)
    values = [("ids", ["5", "10", "5", "7"]), ("ids", ["1", "2", "10"])]
    batches = list(fn.process((4, values)))
    assert batches == [Batch("00004-0000000", ("1", "2", "5")), Batch("00004-0000001", ("7", "10"))]
    # The same IDs in another order and split give the same batches (bundle retries, reruns).
    again = list(fn.process((4, [("ids", ["10", "7", "2"]), ("ids", ["1", "5"])])))
    assert again == batches and again[0].digest == batches[0].digest


def test_plan_carries_settled_rows_and_skips_them():
    fn = _PlanShardFn(batch_size=100)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    prev_tweets = to_table(
        [
            {"tweet_id": "1", "text": "a", "retrieved_at": when},
            {"tweet_id": "1", "text": "a", "retrieved_at": when},
            {"tweet_id": "99", "text": "not in input", "retrieved_at": when},
        ],
        TWEETS,
    )
    prev_unav = to_table(
        [
            {"tweet_id": "2", "status": "not_found", "retrieved_at": when},
            {"tweet_id": "3", "status": "failed", "retrieved_at": when},
        ],
        UNAVAILABLE,
    )
    out = list(
        fn.process((0, [("ids", ["1", "2", "3", "4"]), ("tweets", prev_tweets), ("unavailable", prev_unav)]))
    )
    batches = [o for o in out if isinstance(o, Batch)]
    tagged = {o.tag: o.value for o in out if isinstance(o, beam.pvalue.TaggedOutput)}
    assert batches == [Batch("00000-0000000", ("3", "4"))]  # failed IDs are retried
    assert tagged["carried_tweets"].column("tweet_id").to_pylist() == ["1"]
    assert tagged["carried_unavailable"].column("tweet_id").to_pylist() == ["2"]


def test_make_plan_admits_whole_batches_within_budget():
    sizes = [("00000-0000001", 100), ("00000-0000000", 100), ("00001-0000000", 50)]
    plan = make_plan(sizes, 220)
    assert plan.total_ids == 250 and plan.last_allowed == "00000-0000001"
    assert plan.allows(Batch("00000-0000000", ())) and not plan.allows(Batch("00001-0000000", ()))
    assert not make_plan(sizes, 0).allows(Batch("00000-0000000", ()))
    assert make_plan(sizes, None).allows(Batch("00001-0000000", ()))


def test_settle_rows_guarantees_one_record_per_id():
    tweets, unavailable, repaired = settle_rows(
        ["1", "2", "3"], [{"tweet_id": "1"}, {"tweet_id": "1"}, {"tweet_id": "9"}], [{"tweet_id": "1"}]
    )
    assert [r["tweet_id"] for r in tweets] == ["1"]
    assert [(r["tweet_id"], r["status"]) for r in unavailable] == [("2", "failed"), ("3", "failed")]
    assert repaired == 5


def test_retried_batch_reuses_progress_and_does_not_rebill(tmp_path, monkeypatch):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    with MockXApi({"1": _tweet("1")}, token=TOKEN) as m:
        config = ClientConfig(base_url=m.base_url, pacing_dir=str(tmp_path / "pacing"))
        plan = make_plan([("00000-0000000", 2)], None)
        batch = Batch("00000-0000000", ("1", "2"))
        outputs = []
        for _attempt in range(2):  # a bundle retry builds a fresh DoFn instance
            fn = LookupBatchFn(
                client_config=config, token_source=TokenSource(), progress_dir=str(tmp_path / "p")
            )
            fn.setup()
            outputs.append(list(fn.process(batch, plan)))
            fn.teardown()
        assert len(m.request_log) == 1
    first, second = outputs
    assert first[0].equals(second[0]) and first[1].value.equals(second[1].value)
    assert first[0].column("tweet_id").to_pylist() == ["1"]
    assert first[1].value.column("status").to_pylist() == ["not_found"]


@pytest.mark.slow
@pytest.mark.parametrize("concurrency", [1, 3])
def test_hydrate_tweets_transform(tmp_path, monkeypatch, concurrency):
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    store = {str(i): _tweet(str(i)) for i in range(1, 250)}
    with MockXApi(store, statuses={"300": "protected"}, token=TOKEN) as m:
        config = ClientConfig(
            base_url=m.base_url, pacing_dir=str(tmp_path / "pacing"), max_concurrency=concurrency
        )
        with TestPipeline(runner="FnApiRunner", options=fnapi_options()) as p:
            ids = p | beam.Create([[str(i) for i in range(1, 200)], [str(i) for i in range(150, 301)]])
            out = {"ids": ids} | HydrateTweets(
                client_config=config,
                token_source=TokenSource(),
                progress_dir=str(tmp_path / "progress"),
                num_id_shards=3,
            )
            tweet_ids = out["tweets"] | "TweetIds" >> beam.FlatMap(lambda t: t.column("tweet_id").to_pylist())
            assert_that(tweet_ids, equal_to([str(i) for i in range(1, 250)]), label="Tweets")
            statuses = out["unavailable"] | "Statuses" >> beam.FlatMap(
                lambda t: zip(t.column("tweet_id").to_pylist(), t.column("status").to_pylist(), strict=True)
            )
            expected = [(str(i), "not_found") for i in range(250, 300)] + [("300", "not_authorized")]
            assert_that(statuses, equal_to(expected), label="Unavailable")
        assert all(len(batch) <= 100 for batch in m.request_log)
        assert sorted(i for batch in m.request_log for i in batch) == sorted(str(i) for i in range(1, 301))
