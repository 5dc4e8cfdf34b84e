"""PoolMapFn with 2 processes: order, tagged outputs, errors, and byte-identical prepare output."""

from __future__ import annotations

import hashlib
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import fnapi_options
from tests.prepare.test_prepare import _rows, run_prepare, write_tweets
from twhin_data.transforms.parallel import PoolMapFn


def square_and_tag(x: int) -> list:
    """Module-level, so the pool can import it."""
    out = [x * x]
    if x % 3 == 0:
        out.append(beam.pvalue.TaggedOutput("threes", x))
    return out


def fail_on_seven(x: int) -> list:
    if x == 7:
        raise ValueError(f"cannot handle {x}: seven is bad")
    return [x]


def _pid(_x: int) -> list:
    import os

    return [os.getpid()]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_outputs_and_tags(workers: int) -> None:
    with BeamTestPipeline(options=fnapi_options()) as p:
        result = (
            p
            | beam.Create(list(range(20)))
            | beam.ParDo(PoolMapFn(square_and_tag, workers=workers, max_in_flight=3)).with_outputs(
                "threes", main="sq"
            )
        )
        assert_that(result.sq, equal_to([x * x for x in range(20)]), label="CheckSquares")
        assert_that(result.threes, equal_to([x for x in range(20) if x % 3 == 0]), label="CheckThrees")


def test_order_preserved_within_bundle() -> None:
    fn = PoolMapFn(square_and_tag, workers=2, max_in_flight=2)
    fn.setup()
    try:
        fn.start_bundle()
        emitted = [o for x in range(12) for o in fn.process(x) if not isinstance(o, beam.pvalue.TaggedOutput)]
        emitted += [o.value for o in fn.finish_bundle() if not isinstance(o, beam.pvalue.TaggedOutput)]
        assert emitted == [x * x for x in range(12)]
    finally:
        fn.teardown()


def test_runs_in_other_processes() -> None:
    import os

    fn = PoolMapFn(_pid, workers=2)
    fn.setup()
    try:
        fn.start_bundle()
        pids = [o for x in range(8) for o in fn.process(x)] + [o.value for o in fn.finish_bundle()]
        assert os.getpid() not in pids and len(pids) == 8
    finally:
        fn.teardown()
    assert fn._pool is None


def test_error_propagates_with_original_message() -> None:
    with pytest.raises(Exception, match="seven is bad"):
        with BeamTestPipeline(options=fnapi_options()) as p:
            _ = p | beam.Create(list(range(10))) | beam.ParDo(PoolMapFn(fail_on_seven, workers=2))


def _digest(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name not in ("stats.json", "report.html"):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.slow
def test_two_workers_byte_identical_to_one(tmp_path: Path) -> None:
    rows = _rows() + [
        {"tweet_id": str(10_000 + i), "text": f"tweet number {i} about the weather {i % 40}", "lang": "en"}
        for i in range(3000)
    ]
    write_tweets(tmp_path / "in" / "tweets" / "a.parquet", rows[:1500])
    write_tweets(tmp_path / "in" / "tweets" / "b.parquet", rows[1500:])
    flags = ("--resample_alpha=0.7", "--resample_min_count=1", "--num_output_shards=3", "--dedup_buckets=4")
    one = run_prepare(tmp_path, "--workers=1", *flags, name="w1")
    two = run_prepare(tmp_path, "--workers=2", *flags, name="w2")
    d1, d2 = _digest(one), _digest(two)
    assert any(k.startswith("corpus/") for k in d1) and any(k.startswith("errors/") for k in d1)
    assert d1 == d2


@pytest.mark.slow
def test_script_without_main_guard(tmp_path: Path) -> None:
    """multiprocessing would re-run an unguarded script in each child; PoolMapFn must not."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import apache_beam as beam\n"
        "from apache_beam.options.pipeline_options import PipelineOptions\n"
        "from tests.transforms.test_parallel import square_and_tag\n"
        "from twhin_data.transforms.parallel import PoolMapFn\n"
        "with beam.Pipeline(options=PipelineOptions(['--runner=FnApiRunner'])) as p:\n"
        "    (p | beam.Create(list(range(6))) | beam.ParDo(PoolMapFn(square_and_tag, workers=2))\n"
        "       | beam.combiners.ToList() | beam.Map(lambda xs: print('RESULT', sorted(xs))))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("RESULT") == 1
    assert "RESULT [0, 1, 4, 9, 16, 25]" in done.stdout


def test_shared_pool_started_once_and_closed_by_last_user() -> None:
    from twhin_data.core import pool

    first = PoolMapFn(_pid, workers=2, shared="test-shared")
    second = PoolMapFn(square_and_tag, workers=2, shared="test-shared")
    first.setup()
    second.setup()
    try:
        assert first._pool is second._pool
        first.start_bundle()
        pids = [o for x in range(6) for o in first.process(x)] + [o.value for o in first.finish_bundle()]
        assert len(set(pids)) <= 2
        first.teardown()
        # Still open for the other user.
        second.start_bundle()
        out = [o for x in range(4) for o in second.process(x)] + [o.value for o in second.finish_bundle()]
        assert [o for o in out if isinstance(o, int)] == [0, 1, 4, 9]
    finally:
        first.teardown()
        second.teardown()
    assert ("test-shared", 2) not in pool._SHARED


def test_pool_processes_never_import_beam() -> None:
    """The pooled steps' modules stay Beam-free: importing Beam costs ~1.2 s of CPU per pool start.

    Run in a fresh interpreter: the fork server is one per process, started with the first
    pool's preload list.
    """
    import subprocess
    import sys

    from twhin_data.pipelines import graph, prepare, shard

    preload = prepare.POOL_PRELOAD + shard.POOL_PRELOAD + graph.POOL_PRELOAD
    script = (
        "from twhin_data.core import pool\n"
        f"p = pool.make_pool(2, preload={preload!r})\n"
        "probe = \"sorted(m for m in __import__('sys').modules if m.startswith(('apache_beam', 'twhin_data.transforms')))\"\n"
        "print('CHILD', sorted({tuple(p.submit(eval, probe).result()) for _ in range(4)}))\n"
        "p.shutdown()\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("CHILD"))
    modules = eval(line[len("CHILD ") :])  # one distinct module list across the children
    assert len(modules) == 1, modules
    assert "twhin_data.transforms.prepare.steps" in modules[0]  # preloaded by the fork server
    assert "twhin_data.transforms.shard.steps" in modules[0]
    assert set(graph.POOL_PRELOAD) <= set(modules[0])  # graph's read, build, pair and kNN steps
    assert not [m for m in modules[0] if m.startswith("apache_beam")], modules[0]
