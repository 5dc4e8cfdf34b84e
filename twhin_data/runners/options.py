"""Flags shared by every command, and the split between our flags and Beam's."""

from __future__ import annotations

import argparse
import difflib
import sys
from types import ModuleType

from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

from twhin_data.core.errors import ConfigError
from twhin_data.pipelines.flags import fraction, positive_int
from twhin_data.runners.commands import COMMANDS


class DefaultsFormatter(argparse.HelpFormatter):
    """`--help` shows every flag's default (unless its help already says it, or there is none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        shown = ",".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {shown})"


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2 (no usage dump), with a
    "did you mean" for a mistyped flag."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        if message.startswith("unrecognized arguments:"):
            message += did_you_mean(message.split(":", 1)[1].split(), list(self._option_string_actions))
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def did_you_mean(unknown: list[str], known: list[str]) -> str:
    """" (did you mean --a, --b?)" for the unknown flags that look like known ones, else ""."""
    hints = []
    for token in unknown:
        name = token.split("=", 1)[0]
        if not name.startswith("--"):
            continue
        snake = "--" + name[2:].replace("-", "_")  # --num-shards: our flags are snake_case
        close = [snake] if snake in known else difflib.get_close_matches(snake, known, n=1, cutoff=0.75)
        hints += [c for c in close if c not in hints]
    return f" (did you mean {', '.join(hints)}?)" if hints else ""


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
        "--progress",
        default="auto",
        choices=["auto", "bar", "log", "none"],
        help="Live progress: a bar with rate and ETA on a terminal, a log line every few seconds "
        "otherwise (auto), or always one of them, or none.",
    )
    parser.add_argument(
        "--log_level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Log level of twhin-data's own messages (tweepy's request logger never goes below INFO).",
    )
    add_json_argument(parser)


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="Print the final summary as one JSON document instead of aligned text.",
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


def check_beam_args(beam_args: list[str], parser: argparse.ArgumentParser | None = None) -> None:
    """Raises ConfigError naming the flags that are neither ours (`parser`'s) nor Beam's."""
    _known, unknown = beam_parser().parse_known_args(beam_args)
    flags = [a for a in unknown if a.startswith("-")]
    if unknown:
        hint = did_you_mean(flags, list(parser._option_string_actions)) if parser is not None else ""  # noqa: SLF001
        raise ConfigError(
            "unrecognized arguments: " + " ".join(flags or unknown) + (hint or " (see --help for this command's flags)")
        )


def runner_name(beam_args: list[str]) -> str:
    known, _ = beam_parser().parse_known_args(beam_args)
    return getattr(known, "runner", None) or "FnApiRunner"


def is_dataflow(beam_args: list[str]) -> bool:
    return runner_name(beam_args).split(".")[-1] in ("DataflowRunner", "TestDataflowRunner")
