"""Submitting one pipeline to Dataflow without waiting, and the Flex Template entry point."""

from __future__ import annotations

import argparse
import logging
import sys
from types import ModuleType

from twhin_data.core.errors import ConfigError
from twhin_data.runners import launch
from twhin_data.runners import options as opts
from twhin_data.runners.commands import PIPELINES, load_pipeline
from twhin_data.runners.logs import configure_logging

LOG = logging.getLogger("twhin_data.dataflow")

def submit(module: ModuleType, argv: list[str], beam_flags: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Parses `argv` like the CLI, then constructs the pipeline as launch.run_module does and runs it without
    waiting: with --template_location Beam writes the spec; on the service it submits the job.

    Returns the parsed args and the top-level transform labels of the constructed pipeline.
    """
    parser = opts.command_parser(module.NAME, module)
    args, extra = parser.parse_known_args(argv)
    if extra:
        raise ConfigError(f"{module.NAME}: unrecognized arguments: {' '.join(extra)}")
    pipeline, _plan = launch.construct(module, args, beam_flags)
    labels = [t.full_label for t in pipeline.transforms_stack[0].parts]
    result = pipeline.run()  # with --template_location: writes job.json and the staged files only
    job_id = result.job_id() if getattr(result, "has_job", False) else None  # none for a template
    LOG.info("%s: submitted%s", module.NAME, f" as Dataflow job {job_id}" if job_id else "")
    return args, labels


#: Flex Template parameter -> command flag, where the flag's name is reserved by Dataflow.
FLEX_RENAMES = {"hashtag_labels": "labels"}


def flex_to_cli(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Template parameters arrive as --name=value: switches become bare flags, renames are undone."""
    switches = {s: a for a in parser._actions if a.nargs == 0 for s in a.option_strings}  # noqa: SLF001
    out = []
    for arg in argv:
        name, sep, value = arg.partition("=")
        name = "--" + FLEX_RENAMES.get(name[2:], name[2:]) if name.startswith("--") else name
        if sep and name in switches:
            on = value.strip().lower() in ("true", "1", "yes")
            negated = next((n for n in ("--no_" + name[2:], "--no-" + name[2:]) if n in switches), None)
            if on:
                out.append(name)
            elif negated:
                out.append(negated)  # --pack=false -> --no_pack (our snake_case switch pairs)
            continue
        out.append(name + sep + value)
    return out


def flex_main(argv: list[str] | None = None) -> int:
    """Flex Template entry point (deploy/flex/main.py): ``--command=NAME`` plus that command's flags.

    Submits one stage and exits without waiting (the Flex launcher must return once the job is
    created); the stage's counters are on the job page, and no local report is written.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = [a for a in argv if a.startswith("--command=")]
    rest = [a for a in argv if not a.startswith("--command=")]
    command = commands[-1].split("=", 1)[1].replace("_", " ") if commands else ""
    configure_logging("INFO")
    try:
        if command not in PIPELINES:
            raise ConfigError(f"--command must be one of {', '.join(c.replace(' ', '_') for c in PIPELINES)}")
        module, why = load_pipeline(command)
        if module is None:
            raise ConfigError(why)
        parser = opts.command_parser(command, module)
        rest = flex_to_cli(rest, parser)
        _, beam_flags = parser.parse_known_args(rest)
        opts.check_beam_args(beam_flags)
        mine = [a for a in rest if a not in beam_flags]
        submit(
            module,
            mine,
            [*beam_flags, "--runner=DataflowRunner"] if not opts.is_dataflow(beam_flags) else beam_flags,
        )
        return 0
    except ConfigError as exc:
        sys.stderr.write(f"twhin-data flex {command or '?'}: error: {exc}\n")
        return 2
