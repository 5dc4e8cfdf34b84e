"""Pacing: a window budget shared by processes using one token; clamps; partitioned budgets."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from twhin_data.xapi.client import ClientConfig, XClient
from twhin_data.xapi.mock.server import MockXApi
from twhin_data.xapi.pacing import MAX_WAIT_S, Pacer, clamp_wait, default_pacing_dir

TOKEN = "pacing-token"
TWEETS = [{"id": str(i), "text": f"tweet {i}", "edit_history_tweet_ids": [str(i)]} for i in range(1, 201)]


def _worker(base_url: str, pacing_dir: str, offset: int, batches: int, queue) -> None:
    config = ClientConfig(base_url=base_url, pacing_dir=pacing_dir, backoff_base=0.01, reset_margin_s=0.2)
    with XClient(config, TOKEN) as client:
        settled = rate_limited = 0
        for batch in range(batches):
            ids = [str(offset + batch * 5 + k) for k in range(1, 6)]
            out = client.lookup(ids)
            settled += len(out.tweets) + len(out.unavailable)
            rate_limited += out.rate_limited
    queue.put((settled, rate_limited))


@pytest.mark.slow
def test_two_processes_share_one_window_budget(tmp_path):
    limit, batches = 8, 10  # 2 x 10 requests over a budget of 8 per 1 s window: at least 3 windows
    with MockXApi(TWEETS, token=TOKEN, rate_limit=limit, window_s=1) as api:
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        procs = [
            ctx.Process(target=_worker, args=(api.base_url, str(tmp_path), offset, batches, queue))
            for offset in (0, 100)
        ]
        start = time.monotonic()
        for proc in procs:
            proc.start()
        results = [queue.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=10)
        elapsed = time.monotonic() - start
        windows = dict(api._windows)
    assert sum(r[0] for r in results) == 2 * batches * 5
    first_window = min(w for _, w in windows)
    after_first = [n for (_, w), n in windows.items() if w > first_window]
    assert all(n <= limit for n in after_first), windows  # never over the budget after the first window
    assert api.count_status(429) == 0 and sum(r[1] for r in results) == 0
    assert len(api.request_log) == 2 * batches
    assert elapsed < 15


def test_pacer_waits_for_reset_when_remaining_hits_zero(tmp_path):
    now = [1000.0]
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(str(tmp_path), sleep=sleep, clock=lambda: now[0], margin_s=1.0)
    with pacer.slot():
        pass
    pacer.update(
        {"x-rate-limit-limit": "2", "x-rate-limit-remaining": "1", "x-rate-limit-reset": "1010"}, 200
    )
    with pacer.slot():
        pass  # the last request of the window
    pacer.update(
        {"x-rate-limit-limit": "2", "x-rate-limit-remaining": "0", "x-rate-limit-reset": "1010"}, 200
    )
    with pacer.slot():
        pass
    assert slept == [pytest.approx(11.0)] and pacer.waited_s == pytest.approx(11.0)


def test_configured_budget_and_partitions(tmp_path):
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    # 10 per 60 s window shared by 2 machines: this one sends 5, then waits for the next window.
    pacer = Pacer(
        str(tmp_path),
        requests_per_window=10,
        window_s=60,
        partitions=2,
        sleep=sleep,
        clock=lambda: now[0],
        margin_s=1.0,
    )
    sent_at = []
    for _ in range(7):
        with pacer.slot():
            sent_at.append(now[0])
    assert sent_at[:5] == [0.0] * 5 and sent_at[5] >= 60.0 and sent_at[6] == sent_at[5]


def test_clamps_and_skew_warning(tmp_path, caplog):
    assert clamp_wait(-5) == 1.0 and clamp_wait(5000, 1.0) == MAX_WAIT_S + 1.0
    pacer = Pacer(str(tmp_path), clock=lambda: 1000.0)
    pacer.update({"x-rate-limit-remaining": "3", "x-rate-limit-reset": "999999"}, 200)
    pacer.update({"x-rate-limit-remaining": "2", "x-rate-limit-reset": "999999"}, 200)
    assert caplog.text.count("check the clock") == 1  # warned once, not on every response


def test_default_pacing_dir_hides_the_token():
    path = default_pacing_dir("super-secret-token", "https://api.twitter.com")
    assert "super-secret-token" not in path
    assert path == default_pacing_dir("super-secret-token", "https://api.twitter.com")
    assert path != default_pacing_dir("other-token", "https://api.twitter.com")


def test_concurrency_slots_bound_in_flight_requests(tmp_path):
    import fcntl
    import os

    pacer = Pacer(str(tmp_path), max_concurrency=2)
    with pacer.slot(), pacer.slot():
        # Both slot files are locked now, so a third request (any process) cannot start.
        for index in range(2):
            with open(os.path.join(str(tmp_path), f"slot-{index}.lock"), "a+") as probe:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(os.path.join(str(tmp_path), "slot-0.lock"), "a+") as probe:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on exit


def _fake_time():
    now = [10_000.0]
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    return now, slept, sleep


def test_server_clock_skew_is_corrected_from_the_date_header(tmp_path):
    from email.utils import formatdate

    now, slept, sleep = _fake_time()
    pacer = Pacer(str(tmp_path), sleep=sleep, clock=lambda: now[0], margin_s=1.0)
    server_now = now[0] + 3600  # the server's clock is an hour ahead
    headers = {
        "date": formatdate(server_now, usegmt=True),
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": str(int(server_now + 10)),
    }
    pacer.update(headers, 200)
    with pacer.slot():
        pass
    assert slept == [pytest.approx(11.0, abs=1.0)]  # not the 901 s clamp of a naive reading


def test_a_429_with_a_past_reset_still_waits(tmp_path):
    now, slept, sleep = _fake_time()
    pacer = Pacer(str(tmp_path), sleep=sleep, clock=lambda: now[0], margin_s=1.0)
    assert pacer.on_rate_limited(int(now[0]) - 30) == 1.0
    with pacer.slot():
        pass
    with pacer.slot():
        pass
    assert slept == [pytest.approx(1.0)]  # one wait, then the window counts as new
