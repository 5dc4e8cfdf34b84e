"""The local profile on the bundled sample: each pipeline's sample command line, and its inputs.

Local runs use FnApiRunner (launch.pipeline_options adds it when no --runner is given) and
``--workers N`` for the CPU-heavy steps (transforms/parallel.py). This module gives every pipeline
the flags it takes in the bundled sample config (twhin_data/data/sample_config.yaml), wired to the
outputs of the stages before it, so that tools and tests (dataflow-check, the multi-process test)
build each pipeline exactly as `twhin-data run` does, but one at a time and into their own output.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import shutil

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.runners import chain as run

LOG = logging.getLogger("twhin_data.local")

LOCAL_RUNNER = "FnApiRunner"
#: CLI command -> the sample-chain stages whose outputs it reads (run.STAGES names).
NEEDS: dict[str, tuple[str, ...]] = {
    "hydrate": (),
    "prepare": ("hydrate",),
    "graph": ("hydrate",),
    "shard": ("hydrate", "prepare", "graph"),
    "benchmark hashtag": ("hydrate",),
    "benchmark engagement": ("hydrate",),
    "comply": ("hydrate", "prepare", "graph"),
}


def stage_of(command: str) -> str:
    """The run-config section name of a CLI command ("benchmark hashtag" -> "benchmark_hashtag")."""
    for stage, name in run.STAGES.items():
        if name == command:
            return stage
    raise ConfigError(
        f"{command!r} is not a stage of `twhin-data run`; known: {', '.join(run.STAGES.values())}"
    )


def sample_argv(command: str, inputs: str, output: str) -> list[str]:
    """The command's flags from the bundled sample config, reading `inputs`, writing `output`.

    `inputs` is the --output directory of a sample chain run (see `sample_inputs`). Hydrate keeps
    its default API base URL: building a job contacts no server, and a local run needs one
    (the mock X API, as `twhin-data run` starts it).
    """
    if command == "comply":
        # Not a stage of `run`: it rewrites a run's output in place, so it gets a copy of `inputs`.
        if not files.is_remote(output) and not os.path.exists(output):
            shutil.copytree(inputs, output)
        removals = run.sample_path("sample_remove_ids.txt")
        return [f"--remove_ids={removals}", f"--output={output}", "--log_level=WARNING"]
    stage = stage_of(command)
    section = dict(run.load_config(None).get(stage) or {})
    section.pop("enabled", None)
    argv = run.to_flags(section) + run.wiring(stage, inputs, set(run.STAGES))
    # argparse keeps the last value: the wiring's --output (inside `inputs`) is replaced.
    return [*argv, f"--output={output}", "--log_level=WARNING"]


def sample_inputs(out: str, commands: list[str], *, beam_args: list[str] | None = None) -> str:
    """Runs the sample-chain stages that `commands` read from, into `out`; returns `out`.

    Stages run one at a time with FnApiRunner and one worker; a stage that fails is logged and
    its dependents then fail on their own missing inputs, each with its own message.
    """
    needed = {stage for command in commands for stage in NEEDS.get(command, ())}
    for stage in [s for s in run.STAGES if s in needed]:
        if _stage_done(out, stage):
            continue
        args = argparse.Namespace(
            config=None, output=out, stages=[stage], workers=1, overwrite=False, log_level="WARNING", json=False
        )
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                run.main(args, list(beam_args or [f"--runner={LOCAL_RUNNER}"]))
        except Exception as exc:  # noqa: BLE001 - reported per dependent pipeline later
            LOG.warning("sample stage %s failed: %s", stage, str(exc).splitlines()[0] if str(exc) else exc)
    return out


_DONE_MARKERS = {
    "hydrate": ("tweets",),
    "prepare": ("corpus",),
    "graph": ("pairs", "graph"),
}


def _stage_done(out: str, stage: str) -> bool:
    markers = _DONE_MARKERS.get(stage)
    return bool(markers) and all(files.exists(files.join(out, m)) for m in markers)
