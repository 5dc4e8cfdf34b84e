"""Every pipeline gives the same Parquet contents in multi_processing (2 SDK workers) as in memory.

multi_processing pickles every DoFn into separate worker processes and runs setup() there, as
Dataflow does, so it catches unpicklable state and per-process initialisation that in-memory hides.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from twhin_data.runners import chain as run
from twhin_data.runners import commands, local

#: Whole commands end to end: not in the fast suite (-m "not slow").
pytestmark = pytest.mark.slow

IN_MEMORY = ["--runner=FnApiRunner"]
MULTI_PROCESS = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
#: Columns that legitimately differ between two runs (the schema says so).
VOLATILE = {"hydrate": {"retrieved_at"}}


def parquet_contents(root: Path, drop: set[str]) -> dict[str, list[dict]]:
    """Rows of every Parquet file below `root` (progress/report folders aside), by relative path."""
    out = {}
    for path in sorted(root.rglob("*.parquet")):
        rel = path.relative_to(root)
        if any(part.startswith(("_", ".")) or part == "reports" for part in rel.parts):
            continue
        table = pq.read_table(path)
        out[rel.as_posix()] = table.drop_columns([c for c in table.column_names if c in drop]).to_pylist()
    return out


@pytest.fixture(scope="module")
def sample_out(tmp_path_factory) -> str:
    # One sample chain per pytest session: test_dataflow.py reuses the same directory.
    return local.sample_inputs(str(tmp_path_factory.getbasetemp() / "twhin-sample"), list(commands.PIPELINES))


@contextlib.contextmanager
def _api_for(command: str):
    """The local mock X API for hydrate (as `twhin-data run` starts it); nothing for the others."""
    section = (run.load_config(None).get("hydrate") or {}).get("mock_api") if command == "hydrate" else None
    with run.mock_api(section) as base_url:
        yield [f"--api_base_url={base_url}"] if base_url else []


@pytest.mark.parametrize("command", commands.PIPELINES)
def test_multi_processing_output_equals_in_memory(command, tmp_path, sample_out, monkeypatch):
    module, why = commands.load_pipeline(command)
    if module is None:
        pytest.skip(why)
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)  # mock_api sets a fresh one, read by workers
    results = {}
    with _api_for(command) as api_flags:
        for mode, beam_args in (("memory", IN_MEMORY), ("multi", MULTI_PROCESS)):
            out = tmp_path / mode
            argv = local.sample_argv(command, sample_out, str(out)) + api_flags + ["--workers=1"]
            run.run_command(command, argv, beam_args)
            results[mode] = parquet_contents(out, VOLATILE.get(command, set()))
    assert results["memory"], f"{command} wrote no Parquet on the sample"
    assert sorted(results["multi"]) == sorted(results["memory"])
    for name, rows in results["memory"].items():
        assert results["multi"][name] == rows, f"{command}: {name} differs between runners"
