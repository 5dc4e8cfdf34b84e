"""Flags shared by every command, and the split between our flags and Beam's."""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from twhin_data.core.errors import ConfigError
from twhin_data.pipelines.flags import fraction, positive_int
from twhin_data.runners.commands import COMMANDS


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2 (no usage dump)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def command_parser(command: str, module: ModuleType, *, pipeline: bool = True) -> OneLineParser:
    """The parser of `twhin-data <command>`: the module's own flags, plus the common ones for a pipeline."""
    description = COMMANDS[command].help if command in COMMANDS else None
    parser = OneLineParser(prog=f"twhin-data {command}", description=description, allow_abbrev=False)
    module.add_arguments(parser)
    if pipeline:
        add_common_arguments(parser)
    return parser


def add_common_arguments(parser: argparse.ArgumentParser, *, output_required: bool = True) -> None:
    """Flags every pipeline command takes."""
    parser.add_argument(
        "--output",
        required=output_required,
        default=None if output_required else "./twhin-out",
        help="Output directory (local path or gs://bucket/prefix).",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="Local profile: processes for the CPU-heavy steps (default: all cores). "
        "Rejected above 1 on Dataflow, which scales with --max_num_workers instead.",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Replace an existing complete output instead of refusing to run.",
    )
    parser.add_argument(
        "--max_rejected_share",
        type=fraction,
        default=1.0,
        help="Fail (exit 1) when the stage rejects more than this share of its input records; a stage "
        "that rejects every record always fails (default: 1.0).",
    )
    parser.add_argument(
        "--log_level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Log level of twhin-data's own messages (tweepy's request logger never goes below INFO).",
    )


def beam_parser() -> argparse.ArgumentParser:
    """A parser that knows every Beam pipeline flag (all PipelineOptions subclasses)."""
    parser = _BeamArgumentParser(allow_abbrev=False, add_help=False)
    seen: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)  # noqa: SLF001 - the documented extension point
    return parser


def check_beam_args(beam_args: list[str]) -> None:
    """Raises ConfigError naming the flags that are neither ours nor Beam's."""
    _known, unknown = beam_parser().parse_known_args(beam_args)
    flags = [a for a in unknown if a.startswith("-")]
    if unknown:
        raise ConfigError(
            "unrecognized arguments: " + " ".join(flags or unknown) + " (see --help for this command's flags)"
        )


def runner_name(beam_args: list[str]) -> str:
    known, _ = beam_parser().parse_known_args(beam_args)
    return getattr(known, "runner", None) or "FnApiRunner"


def is_dataflow(beam_args: list[str]) -> bool:
    return runner_name(beam_args).split(".")[-1] in ("DataflowRunner", "TestDataflowRunner")
