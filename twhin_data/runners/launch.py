"""Runs one pipeline module (see pipelines/__init__.py) under the right runner profile."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from types import ModuleType

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from tqdm.contrib.logging import logging_redirect_tqdm

from twhin_data.core import files, progress
from twhin_data.core.errors import ConfigError, InputRejectedError
from twhin_data.core.lock import OutputLock
from twhin_data.core.pool import start_forkserver, usable_cores
from twhin_data.pipelines.plan import Plan, RunSettings
from twhin_data.runners import options as opts
from twhin_data.runners.dataflow import profile

LOG = logging.getLogger("twhin_data")


def resolve_workers(args: argparse.Namespace, beam_args: list[str]) -> int:
    """Maps --workers to the runner: all cores locally by default, exactly 1 on Dataflow."""
    if opts.is_dataflow(beam_args):
        if args.workers not in (None, 1):
            raise ConfigError(
                "--workers applies to local runs only; on Dataflow use --max_num_workers and "
                "--worker_machine_type (each worker already runs one SDK process per vCPU)"
            )
        return 1
    return args.workers or usable_cores()


def pipeline_options(args: argparse.Namespace, beam_args: list[str]) -> PipelineOptions:
    """Beam options for this run. Local default runner: FnApiRunner (no Prism download)."""
    beam_flags = list(beam_args)
    if not any(f == "--runner" or f.startswith("--runner=") for f in beam_flags):
        beam_flags.append("--runner=FnApiRunner")
    if opts.is_dataflow(beam_flags):
        beam_flags = profile.complete_flags(beam_flags, args)
    return PipelineOptions(beam_flags)


def check_output_folder(output: str) -> None:
    """ConfigError (one line) when --output names something that is not a folder."""
    if not files.is_remote(output) and os.path.exists(output) and not os.path.isdir(output):
        raise ConfigError(f"--output {output} is a file, not a folder: choose a folder (it is created if missing)")


def construct(module: ModuleType, args: argparse.Namespace, beam_args: list[str]) -> tuple[beam.Pipeline, Plan]:
    """Validates, plans, prepares the output and builds one pipeline; returns it and its plan."""
    check_output_folder(args.output)
    files.use_storage_emulator()  # before any gs:// call of plan() or the job
    run = RunSettings(workers=resolve_workers(args, beam_args), dataflow=opts.is_dataflow(beam_args))
    if run.dataflow:
        profile.check_flags(beam_args, args)  # one-line errors before plan() touches gs://
    module.validate(args)
    plan = module.plan(args, run)
    module.prepare_output(plan)
    pipeline = beam.Pipeline(options=pipeline_options(args, beam_args))
    module.build(pipeline, plan)
    return pipeline, plan


def run_module(module: ModuleType, args: argparse.Namespace, beam_args: list[str]) -> dict:
    """Validates, builds, runs and finishes one pipeline; returns its summary."""
    preload = getattr(module, "POOL_PRELOAD", None)
    workers = resolve_workers(args, beam_args)
    if preload and workers > 1:
        # The pool's fork server imports its modules while this process validates and builds.
        start_forkserver(preload)
    check_output_folder(args.output)
    files.use_storage_emulator()
    if opts.is_dataflow(beam_args):
        profile.check_flags(beam_args, args)  # one-line errors before the lock touches gs://
    with OutputLock(args.output, module.NAME):  # one writer per output folder
        return _run_locked(module, args, beam_args, preload=preload, workers=workers)


def _run_locked(module: ModuleType, args: argparse.Namespace, beam_args: list[str], *, preload, workers: int) -> dict:
    started = time.monotonic()
    pipeline, plan = construct(module, args, beam_args)
    # A stage whose pooled steps depend on its flags (graph: the distributed kNN) says so from its plan.
    pooled = module.uses_pool(plan) if hasattr(module, "uses_pool") else bool(preload)
    if pooled:
        LOG.info("%s: running on %s with %d worker process(es)", module.NAME, opts.runner_name(beam_args), workers)
    else:
        # No pooled steps in this run (docs/scale-up.md): say so instead of implying N.
        LOG.info(
            "%s: running on %s (this stage has no pooled steps: --workers does not change it)",
            module.NAME,
            opts.runner_name(beam_args),
        )
    total, unit = module.progress_total(plan) if hasattr(module, "progress_total") else (None, "records")
    reporter = progress.start(module.NAME.replace(" ", "_"), total=total, unit=unit, mode=args.progress)
    try:
        # While a bar is drawn, log records are written above it instead of through it.
        with logging_redirect_tqdm() if reporter.mode == "bar" else contextlib.nullcontext():
            result = pipeline.run()
            result.wait_until_finish()
    finally:
        progress.stop(module.NAME.replace(" ", "_"))
    if not getattr(result, "has_job", True):
        # --template_location: Beam wrote the job spec and nothing ran, so there is nothing to finish.
        LOG.info("%s: job spec written (--template_location); no job ran", module.NAME)
        return {"stage": module.NAME, "job_spec_only": True}
    elapsed_s = time.monotonic() - started
    summary = module.finish(result, plan, elapsed_s)
    LOG.info("%s: done in %.1f s", module.NAME, elapsed_s)
    accounting = module.rejections(summary) if hasattr(module, "rejections") else _rejections(summary)
    check_rejections(module.NAME, accounting, args.max_rejected_share)
    return summary


def _rejections(summary: dict) -> tuple[int, int] | None:
    """(records in, records rejected) from a summary's ``in`` and ``rejected`` (a count or a
    count per reason); None when it has no such accounting."""
    total, rejected = summary.get("in"), summary.get("rejected")
    if isinstance(rejected, dict):
        rejected = sum(v for v in rejected.values() if isinstance(v, int | float))
    if not isinstance(total, int) or not isinstance(rejected, int | float):
        return None
    return total, int(rejected)


def check_rejections(stage: str, accounting: tuple[int, int] | None, max_share: float) -> None:
    """InputRejectedError (one line, exit 1) when the stage rejected every input record, or more
    than `max_share` of them; the dead letters under OUT/errors/<stage>/ say why."""
    if accounting is None or accounting[0] <= 0:
        return
    total, rejected = accounting
    if rejected >= total or rejected / total > max_share:
        raise InputRejectedError(
            f"{stage} rejected {int(rejected):,} of {total:,} input records ({rejected / total:.0%}; "
            f"--max_rejected_share {max_share:g}): see the dead letters under errors/{stage.replace(' ', '_')}/"
        )
