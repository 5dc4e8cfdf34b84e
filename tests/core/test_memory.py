"""core.memory: the allocator settings a command runs with, and the release after a pooled task."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from twhin_data.core import memory
from twhin_data.core import pool as pools


def _configure_in_child(env: dict[str, str]) -> str:
    code = (
        "from twhin_data.core import memory; import pyarrow as pa; "
        "print(memory.configure(), pa.default_memory_pool().backend_name)"
    )
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_configure_sets_the_system_pool_and_the_mmap_threshold() -> None:
    out = _configure_in_child({"PATH": "/usr/bin:/bin"})
    assert out.strip() == "{'mmap_threshold': True, 'arrow_system_pool': True} system"


def test_configure_yields_to_the_environment() -> None:
    env = {"PATH": "/usr/bin:/bin", "MALLOC_MMAP_THRESHOLD_": "65536", "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}
    out = _configure_in_child(env)
    assert out.strip() == "{'mmap_threshold': False, 'arrow_system_pool': False} mimalloc"


def test_configure_exports_its_threshold_to_the_processes_started_after_it() -> None:
    grandchild = "from twhin_data.core import memory; print(memory.configure()['mmap_threshold'])"
    code = (
        "import os, subprocess, sys; from twhin_data.core import memory; "
        "print(memory.configure(memory.GRAPH_MMAP_THRESHOLD)['mmap_threshold'], os.environ[memory.MMAP_ENV]); "
        "sys.stdout.flush(); subprocess.run([sys.executable, '-c', sys.argv[1]]); "
        "print(memory.configure()['mmap_threshold'], os.environ[memory.MMAP_ENV]); "
        "print(memory.configure(memory.MMAP_THRESHOLD)['mmap_threshold'], os.environ[memory.MMAP_ENV])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, grandchild], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True
    )
    # The pool's processes start with graph's threshold from glibc and leave it, so does a pooled
    # step's setup (no threshold given); a command may change its own export, never a user's.
    assert done.stdout.split() == ["True", str(32 << 20), "False", "False", str(32 << 20), "True", str(1 << 20)]


_NATIVE = """
import os, sys
from twhin_data.core import memory
if sys.argv[1] == "after":
    import pyarrow
done = memory.configure()
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"x": np.arange(1_000_000)}), sys.argv[2])
pq.read_table(sys.argv[2])  # the Parquet reader allocates from Arrow's C++ default pool
print(done["arrow_system_pool"], os.environ["ARROW_DEFAULT_MEMORY_POOL"], pa.mimalloc_memory_pool().max_memory() > 0,
      [p.backend_name for p in memory._OTHER_POOLS])
"""


@pytest.mark.parametrize(
    ("when", "want"),
    [
        ("before", "True system False []"),  # Arrow loads after: even its C++ readers use the system pool
        ("after", "True system True ['mimalloc']"),  # loaded before: its C++ pool stays, and is released too
    ],
)
def test_configure_reaches_arrows_own_pool_when_it_runs_before_pyarrow_loads(tmp_path, when, want) -> None:
    pytest.importorskip("pyarrow").mimalloc_memory_pool()  # a pyarrow built without mimalloc raises here
    env = {"PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-c", _NATIVE, when, str(tmp_path / "x.parquet")], env=env, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == want


_HOLD = """
import sys
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from twhin_data.core import memory

def rss():
    return int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) >> 10

if sys.argv[1] == "configure":
    memory.configure()
base = pa.array(np.arange(250_000))
before = rss()
chunks = [pc.add(base, i) for i in range(160)]  # 160 x 2 MB from Arrow's pool, then freed
del chunks
held = rss() - before
memory.release()
print(held, rss() - before)
"""


def _held_mb(mode: str) -> tuple[int, int]:
    env = {"PATH": "/usr/bin:/bin", "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"} if mode == "mimalloc" else None
    run = subprocess.run([sys.executable, "-c", _HOLD, mode], env=env, capture_output=True, text=True, check=True)
    held, released = map(int, run.stdout.split())
    return held, released


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_release_hands_back_what_the_arrow_pool_kept() -> None:
    held, released = _held_mb("mimalloc")  # mimalloc keeps the freed 320 MB resident ...
    assert held > 200 and released < 100, (held, released)  # ... until release()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_configured_process_keeps_nothing_it_freed() -> None:
    held, _ = _held_mb("configure")
    assert held < 100, held


def _slow(n: int) -> list[int]:
    time.sleep(memory.MIN_TASK_S * 2)
    return [n]


@pytest.mark.parametrize(("fn", "released"), [(lambda n: [n, n], 0), (_slow, 1)])
def test_pool_call_releases_after_long_tasks_only(monkeypatch, fn, released) -> None:
    calls = []
    monkeypatch.setattr(memory, "release", lambda: calls.append(1))
    assert pools.call(fn, 3) == fn(3)
    assert len(calls) == released
