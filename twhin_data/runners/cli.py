"""The `twhin-data` command: `twhin-data <command> [flags] [beam flags]`."""

from __future__ import annotations

import importlib
import logging
import re
import sys

from twhin_data import __version__
from twhin_data.core import memory
from twhin_data.core.errors import ConfigError, FatalApiError, InputRejectedError
from twhin_data.runners.commands import COMMANDS
from twhin_data.runners.logs import configure_logging, quiet_import_warnings

LOG = logging.getLogger("twhin_data")
_FATAL = re.compile(r"(ConfigError|FatalApiError|InputRejectedError): ([^\n]+)")
#: An OSError as Beam's wrapper quotes it: "OSError: [Errno 28] No space left on device: 'path'".
_OS_ERROR = re.compile(r"\w*Error: \[Errno (\d+)\] ([^:\n']+)(?:: '([^'\n]+)')?")


def _top_help() -> str:
    lines = [
        f"twhin-data {__version__}: TwHIN-BERT training and benchmark data with Apache Beam.",
        "",
        "usage: twhin-data <command> [flags] [beam flags]",
        "",
        "commands:",
    ]
    for name in COMMANDS:
        lines.append(f"  {name:<22} {COMMANDS[name].help}")
    lines += [
        "",
        "Run `twhin-data <command> --help` for a command's flags. Beam flags (--runner,",
        "--project, --region, --temp_location, ...) pass through; the default runner is FnApiRunner.",
        "The X bearer token is read from X_BEARER_TOKEN or --bearer_token_file, never from a flag value.",
    ]
    return "\n".join(lines)


def _split_command(argv: list[str]) -> tuple[str | None, list[str]]:
    if not argv:
        return None, []
    if len(argv) >= 2 and f"{argv[0]} {argv[1]}" in COMMANDS:
        return f"{argv[0]} {argv[1]}", argv[2:]
    if argv[0] in COMMANDS:
        return argv[0], argv[1:]
    return argv[0], argv[1:]


def _fatal_message(exc: BaseException) -> str | None:
    """One line for a failure whose cause the user can act on: our own fatal errors, and the
    operating system's (a full disk, a read-only or missing folder, no permission). Beam wraps a
    worker's exception in its own, with the original only as text: both are looked for."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConfigError, FatalApiError)):
            return str(exc)
        match = _FATAL.search(str(exc))
        if match:
            return match.group(2).strip()
        if isinstance(exc, OSError) and exc.errno is not None:
            return _os_message(exc.errno, exc.strerror, exc.filename)
        match = _OS_ERROR.search(str(exc))
        if match:
            return _os_message(int(match.group(1)), match.group(2), match.group(3))
        exc = exc.__cause__ or exc.__context__
    return None


def _os_message(errno: int, strerror: str | None, filename: str | None) -> str:
    where = f"{filename}: " if filename else ""
    hint = {28: " (free some space, or write --output elsewhere)", 30: " (choose a writable --output)"}
    return f"{where}{strerror or 'I/O error'} [errno {errno}]{hint.get(errno, '')}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command, rest = _split_command(argv)
    if command in (None, "-h", "--help", "help"):
        print(_top_help())
        return 0
    if command == "--version":
        print(__version__)
        return 0
    if command not in COMMANDS:
        if command == "benchmark":
            sys.stderr.write("twhin-data: error: benchmark needs a task: hashtag, engagement or evaluate\n")
        else:
            sys.stderr.write(f"twhin-data: error: unknown command {command!r} (see twhin-data --help)\n")
        return 2
    quiet_import_warnings()
    memory.configure(COMMANDS[command].mmap_threshold)  # before the first table is read: every buffer then comes from the system pool
    # Beam (~1.5 s to import) loads only once a command runs, so `twhin-data --help` stays fast.
    from twhin_data.runners import options as opts
    from twhin_data.runners.launch import run_module
    from twhin_data.runners.summary import dump, render_command

    module_name, kind = COMMANDS[command].module, COMMANDS[command].kind
    module = importlib.import_module(module_name)
    parser = opts.command_parser(command, module, pipeline=kind == "pipeline")
    args, extra = parser.parse_known_args(rest)
    configure_logging(getattr(args, "log_level", "INFO"))
    try:
        # Anything left over must be a Beam flag; a typo gets a one-line error, not a warning.
        opts.check_beam_args(extra, parser)
        if kind == "tool":
            return int(module.main(args, extra) or 0)
        summary = run_module(module, args, extra)
        print(dump(summary) if args.json else render_command(command, summary))
        return 0
    except ConfigError as exc:
        sys.stderr.write(f"twhin-data {command}: error: {exc}\n")
        return 2
    except InputRejectedError as exc:
        sys.stderr.write(f"twhin-data {command}: error: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"twhin-data {command}: interrupted\n")
        return 130
    except Exception as exc:  # a job failure: say why in one line when we know it
        message = _fatal_message(exc)
        if message is None:
            raise
        sys.stderr.write(f"twhin-data {command}: error: {message}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
