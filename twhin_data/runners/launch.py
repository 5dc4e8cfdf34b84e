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
from twhin_data.runners import options as opts

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
    return args.workers or opts.default_workers()


def pipeline_options(args: argparse.Namespace, beam_args: list[str]) -> PipelineOptions:
    """Beam options for this run. Local default runner: FnApiRunner (no Prism download)."""
    flags = list(beam_args)
    if not any(f == "--runner" or f.startswith("--runner=") for f in flags):
        flags.append("--runner=FnApiRunner")
    if opts.is_dataflow(flags):
        from twhin_data.runners import dataflow

        flags = dataflow.complete_flags(flags, args)
    return PipelineOptions(flags)


def run_module(module: ModuleType, args: argparse.Namespace, beam_args: list[str]) -> dict:
    """Validates, builds, runs and finishes one pipeline; returns its summary."""
    args.workers = resolve_workers(args, beam_args)
    args.dataflow = opts.is_dataflow(beam_args)
    preload = getattr(module, "POOL_PRELOAD", None)
    if preload and args.workers > 1:
        from twhin_data.core.pool import start_forkserver

        # The pool's fork server imports its modules while this process validates and builds.
        start_forkserver(preload)
    if args.dataflow:
        from twhin_data.runners import dataflow

        dataflow.check_flags(beam_args, args)  # one-line errors before validate() touches gs://
    module.validate(args)
    options = pipeline_options(args, beam_args)
    started = time.monotonic()
    pipeline = beam.Pipeline(options=options)
    module.build(pipeline, args)
    if preload:
        LOG.info(
            "%s: running on %s with %d worker process(es)", module.NAME, opts.runner_name(beam_args), args.workers
        )
    else:
        # Only prepare and shard have pooled steps (docs/scale-up.md); say so instead of implying N.
        LOG.info(
            "%s: running on %s (this stage has no pooled steps: --workers does not change it)",
            module.NAME,
            opts.runner_name(beam_args),
        )
    result = pipeline.run()
    result.wait_until_finish()
    args.elapsed_s = time.monotonic() - started
    summary = module.finish(result, args)
    LOG.info("%s: done in %.1f s", module.NAME, args.elapsed_s)
    return summary


def counters(result, namespace: str | None = None) -> dict[str, int]:
    """Committed Beam counters by name (attempted where a runner does not commit)."""
    from apache_beam.metrics.metric import MetricsFilter

    flt = MetricsFilter()
    if namespace:
        flt = flt.with_namespace(namespace)
    try:
        queried = result.metrics().query(flt)
    except (NotImplementedError, AttributeError):
        return {}
    out: dict[str, int] = {}
    for c in queried["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return dict(sorted(out.items()))


def dump(summary: dict) -> str:
    return json.dumps(summary, indent=2, sort_keys=True, default=str)
