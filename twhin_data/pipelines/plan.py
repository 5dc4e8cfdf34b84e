"""What every pipeline's plan holds: the flags as parsed, and how this run executes.

A pipeline's `plan(args, run)` returns a subclass of `Plan` with the values it derives from the
flags and the inputs (resolved file lists, row counts, shard counts); `build()` and `finish()`
read those from the plan. The argparse namespace is never modified: what a user passed stays
what the job page and the reports show.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True)
class RunSettings:
    """How this run executes, decided by the runner profile (runners/launch.py)."""

    workers: int  # processes for a stage's pooled steps; always 1 on Dataflow
    dataflow: bool  # True under DataflowRunner (and for an offline job spec)


@dataclass(frozen=True)
class Plan:
    """The base of every pipeline's plan."""

    args: argparse.Namespace  # the command's flags, exactly as parsed
    run: RunSettings

    @property
    def output(self) -> str:
        return self.args.output
