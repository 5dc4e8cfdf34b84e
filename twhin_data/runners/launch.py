"""Runs one pipeline module (see pipelines/__init__.py) under the right runner profile."""

from __future__ import annotations

import argparse
import json
import logging
import time
from types import ModuleType

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from twhin_data.core.errors import ConfigError
from twhin_data.core.pool import start_forkserver
from twhin_data.pipelines import flags
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
    return args.workers or flags.default_workers()


def pipeline_options(args: argparse.Namespace, beam_args: list[str]) -> PipelineOptions:
    """Beam options for this run. Local default runner: FnApiRunner (no Prism download)."""
    flags = list(beam_args)
    if not any(f == "--runner" or f.startswith("--runner=") for f in flags):
        flags.append("--runner=FnApiRunner")
    if opts.is_dataflow(flags):
        flags = profile.complete_flags(flags, args)
    return PipelineOptions(flags)


def construct(module: ModuleType, args: argparse.Namespace, beam_args: list[str]) -> tuple[beam.Pipeline, Plan]:
    """Validates, plans, prepares the output and builds one pipeline; returns it and its plan."""
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
    started = time.monotonic()
    pipeline, plan = construct(module, args, beam_args)
    if preload:
        LOG.info("%s: running on %s with %d worker process(es)", module.NAME, opts.runner_name(beam_args), workers)
    else:
        # Only prepare and shard have pooled steps (docs/scale-up.md); say so instead of implying N.
        LOG.info(
            "%s: running on %s (this stage has no pooled steps: --workers does not change it)",
            module.NAME,
            opts.runner_name(beam_args),
        )
    result = pipeline.run()
    result.wait_until_finish()
    elapsed_s = time.monotonic() - started
    summary = module.finish(result, plan, elapsed_s)
    LOG.info("%s: done in %.1f s", module.NAME, elapsed_s)
    return summary


def dump(summary: dict) -> str:
    return json.dumps(summary, indent=2, sort_keys=True, default=str)
