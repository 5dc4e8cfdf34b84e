"""Handing freed memory back to the operating system, so a long run's memory follows what it holds.

A step that builds large tables frees them when it returns, but the allocators keep the pages,
and over a long run a process's resident memory climbs with the number of tasks it has run, not
with what it holds. Three settings, measured together on `shard` with pairs (bench/RESULTS.md,
"shard pairs memory, run 6": peak RSS 656 -> 538 MB at 400k tweets, 973 -> 727 MB at 2M):

* glibc's malloc (numpy, Python's large objects, the tokenizers' Rust code) raises its mmap
  threshold each time a large block is freed (up to 32 MiB), so later large arrays come from the
  heap, whose pages stay. `configure` fixes the threshold at `MMAP_THRESHOLD`: arrays of 1 MiB and
  more are mapped and unmapped whole.
  `twhin-data graph` is the exception (`GRAPH_MMAP_THRESHOLD`, 32 MiB, the most glibc's own rule
  reaches; `twhin-data run`, which also runs shard, keeps 1 MiB for all its stages): graph's
  steps allocate and free many arrays of 1-32 MiB, each of which a 1 MiB threshold maps afresh
  and faults in page by page (640-675k page faults a run at 1M engagements against 420-440k, about
  8% of its time), while the heap it keeps instead measured no memory growth (bench/RESULTS.md,
  "graph, run 4"). The threshold is exported as ``MALLOC_MMAP_THRESHOLD_``, so the pool's
  processes start with it (a Dataflow worker, which runs no command, keeps 1 MiB).
* Arrow's default pool (mimalloc) keeps freed pages resident (320 MB of freed buffers stay until
  a collect: tests/core/test_memory.py). `configure` makes Arrow allocate through glibc (the system
  pool), at the same speed on shard and graph in our runs. Arrow's C++ library picks the pool of
  its own allocations (the Parquet and IPC readers, compute kernels) once, from
  ``ARROW_DEFAULT_MEMORY_POOL``, when it is loaded; pyarrow's `set_memory_pool` reaches only the
  calls made from Python. So `configure` sets that variable when pyarrow is not loaded yet (a
  command: `runners.cli` imports no pyarrow before it; the variable also reaches every pool child),
  and calls `set_memory_pool` when it is (a Dataflow worker), remembering the library's own pool
  for `release`. Measured: the C++ pool left on mimalloc kept 60 MB more at 2M tweets of shard with
  pairs (bench/RESULTS.md, "shard pairs memory, run 7").
* `release` hands back what the allocators cache, after every pooled task that ran for at least
  `MIN_TASK_S` (`core.pool.call`); it costs well under a millisecond.

Each setting yields to its environment variable (``MALLOC_MMAP_THRESHOLD_``,
``ARROW_DEFAULT_MEMORY_POOL``) when the user set it, for a user who wants another allocator.

`configure` runs first thing in a command (`runners.cli`, before pyarrow is imported), and where
pooled steps run: `transforms.parallel.PoolMapFn.setup` (a Dataflow worker) and
`core.pool.child_start` (each local pool process).
"""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc's M_MMAP_THRESHOLD option (mallopt) and the value `configure` sets.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20
GRAPH_MMAP_THRESHOLD = 32 << 20
MMAP_ENV = "MALLOC_MMAP_THRESHOLD_"
#: Tasks shorter than this (seconds) skip the release: they allocate little.
MIN_TASK_S = 0.05


def _libc_function(name: str):
    try:
        return getattr(ctypes.CDLL(None), name, None)  # the loaded C library's; glibc only
    except OSError:
        return None


_TRIM = _libc_function("malloc_trim")
_MALLOPT = _libc_function("mallopt")
#: The variable Arrow's C++ library reads when it is loaded, and the pool `configure` asks for.
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
#: Whether `MMAP_ENV` was exported by `configure` in this process (a user's setting is never overridden).
_exported_mmap = False
#: Pools besides pyarrow's default that `release` hands back (the C++ library's own, when pyarrow
#: was loaded before `configure`).
_OTHER_POOLS: list = []


def configure(mmap_threshold: int | None = None) -> dict[str, bool]:
    """This process's allocators as the module docstring says; returns what it set. Each setting
    yields to its environment variable: ``MALLOC_MMAP_THRESHOLD_`` (glibc read it at start) and
    ``ARROW_DEFAULT_MEMORY_POOL`` (Arrow reads it when it is loaded; set here when it is not yet).

    `mmap_threshold`: a command's own (None: `MMAP_THRESHOLD`, or the one an earlier call of this
    process or its parent set, so a pooled step's setup keeps its command's)."""
    global _exported_mmap
    done = {"mmap_threshold": False, "arrow_system_pool": False}
    if _MALLOPT is not None and (MMAP_ENV not in os.environ or (_exported_mmap and mmap_threshold is not None)):
        mmap_threshold = mmap_threshold or MMAP_THRESHOLD
        done["mmap_threshold"] = bool(_MALLOPT(M_MMAP_THRESHOLD, mmap_threshold))
        os.environ[MMAP_ENV] = str(mmap_threshold)  # processes started from here on: glibc applies it at start
        _exported_mmap = True
    if ARROW_POOL_ENV not in os.environ:
        os.environ[ARROW_POOL_ENV] = "system"  # every allocation of a pyarrow loaded from now on, here and in children
        pa = sys.modules.get("pyarrow")
        if pa is not None:  # loaded already: its C++ pool stays; pyarrow's own calls move
            native = pa.default_memory_pool()
            pa.set_memory_pool(pa.system_memory_pool())
            if native.backend_name != "system":
                _OTHER_POOLS.append(native)
        done["arrow_system_pool"] = True
    return done


def release() -> None:
    """Returns the free pages of Arrow's pool (if pyarrow is loaded) and of glibc's heap to the OS."""
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
        for pool in _OTHER_POOLS:
            pool.release_unused()
    if _TRIM is not None:
        _TRIM(0)
