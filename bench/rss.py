"""Peak memory of a command and of every process it starts (pool workers included).

`PeakRss(pid)` polls /proc every 0.1 s: the peak VmHWM of each process in the tree under `pid`
(pool workers of a fork server are grandchildren, invisible to getrusage) and the peak of the
tree's summed VmRSS. A sum polled every 0.1 s misses spikes shorter than that, which a short run
has more of; no process tree ever held less than its largest process's VmHWM (the kernel's exact
high-water mark), so the tree's peak is reported as the larger of the two (one process: its VmHWM).
Used by bench_ann.py and bench_scale.py.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time


class PeakRss:
    """Peak RSS of a process tree, polled from /proc (see the module docstring)."""

    def __init__(self, root: int) -> None:
        self.root, self.peaks, self.tree_kb = root, {}, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        parents, hwm, rss = {}, {}, {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    with open(f"/proc/{name}/status") as handle:
                        fields = dict(line.split(":", 1) for line in handle if ":" in line)
                except OSError:
                    continue
                parents[int(name)] = int(fields.get("PPid", "0").strip())
                hwm[int(name)] = int(fields.get("VmHWM", "0 kB").split()[0])
                rss[int(name)] = int(fields.get("VmRSS", "0 kB").split()[0])
        total = 0
        for pid, kb in hwm.items():
            cur = pid
            while cur and cur != self.root:
                cur = parents.get(cur, 0)
            if cur == self.root:
                self.peaks[pid] = max(kb, self.peaks.get(pid, 0))
                total += rss[pid]
        self.tree_kb = max(self.tree_kb, total)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._poll()

    def stop(self) -> dict:
        """``{runner_peak_rss_mb, largest_worker_peak_rss_mb, tree_peak_rss_mb}``."""
        self._stop.set()
        self._thread.join()
        runner = self.peaks.get(self.root, 0)
        others = [kb for pid, kb in self.peaks.items() if pid != self.root]
        return {
            "runner_peak_rss_mb": round(runner / 1024),
            "largest_worker_peak_rss_mb": round(max(others, default=0) / 1024),
            "tree_peak_rss_mb": round(max(self.tree_kb, runner, *others) / 1024),
        }


def run_measured(cmd: list[str], what: str, env: dict | None = None) -> dict:
    """Runs `cmd` with its tree's memory polled: ``{wall_s, runner_peak_rss_mb,
    largest_worker_peak_rss_mb, tree_peak_rss_mb}``; a failure exits naming `what`."""
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    rss = PeakRss(child.pid)
    _, err = child.communicate()
    wall = time.perf_counter() - started
    memory = rss.stop()
    if child.returncode:
        raise SystemExit(f"{what} failed:\n{err[-3000:]}")
    return {"wall_s": round(wall, 1), **memory}

