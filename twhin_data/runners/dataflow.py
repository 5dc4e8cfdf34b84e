"""The Dataflow runner profile, and the Flex Template entry point.

`complete_flags(flags, args)` is called by runners/launch.py when ``--runner=DataflowRunner``: it
checks the flags Dataflow needs, ships the package (``--setup_file`` from a checkout, else a custom
container), sets a default machine type, and appends the command's own flags as ``--name=value``
so they show on the job page (never a secret: the token is read on workers, see xapi/auth.py).

`twhin-data dataflow-check` (the offline job-spec check) lives in runners/dataflow_check.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

import apache_beam as beam

from twhin_data.core.errors import ConfigError
from twhin_data.runners import options as opts

LOG = logging.getLogger("twhin_data.dataflow")

#: The Beam SDK image our worker image is built FROM (deploy/Dockerfile); same version as the SDK.
BASE_IMAGE = f"apache/beam_python3.11_sdk:{beam.__version__}"
DEFAULT_MACHINE_TYPE = "n2-standard-4"
DEFAULT_LABEL = "app=twhin-data"
#: Pipelines the check covers, as CLI commands (runners/cli.py COMMANDS).
PIPELINES = ("hydrate", "prepare", "graph", "shard", "benchmark hashtag", "benchmark engagement")

# Flag names that hold a secret value; "_file"/"_path" flags and Secret Manager names say where one lives.
_SECRET_NAME = re.compile(r"(^|_)(token|secret|password|passwd|credentials?|api_?key)(_|$)", re.IGNORECASE)
_REFERENCE_SUFFIXES = ("_file", "_path")
_SECRET_RESOURCE = re.compile(r"^projects/[^/]+/secrets/[^/]+(/versions/[^/]+)?$")
_TOKEN_ENV_VARS = ("X_BEARER_TOKEN",)
# Attributes run_module/validate add to args that are not user flags.
_INTERNAL = frozenset({"dataflow", "elapsed_s", "workers"})
_MAX_VALUE_CHARS = 1000


# ----------------------------------------------------------------------------------------------
# The runner profile
# ----------------------------------------------------------------------------------------------


def repo_setup_file() -> str | None:
    """`setup.py` of the checkout this package runs from, or None when installed from a wheel."""
    root = Path(__file__).resolve().parents[2]
    setup = root / "setup.py"
    return str(setup) if setup.is_file() and (root / "twhin_data" / "__init__.py").is_file() else None


def _is_local_endpoint(endpoint: str | None) -> bool:
    host = urlparse(endpoint or "").hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def _flag_given(flags: list[str], *names: str) -> bool:
    return any(f == n or f.startswith(n + "=") for f in flags for n in names)


def _is_secret(name: str, text: str) -> bool:
    """A flag whose value is a secret: its name says so, unless it names a file or a secret resource."""
    if not _SECRET_NAME.search(name) or name.endswith(_REFERENCE_SUFFIXES):
        return False
    return not (name.endswith("_secret") and _SECRET_RESOURCE.match(text))


def _format_value(value: object) -> str | None:
    if isinstance(value, bool | int | float | str):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return ",".join(str(v) for v in value)
    return None  # derived objects (readers, plans) are not flags


def app_options(args: argparse.Namespace) -> dict[str, str]:
    """The command's own flags as they appear in the job's sdkPipelineOptions (no secrets).

    Names that collide with a Beam option are prefixed ``twhin_``; values over 1,000 characters
    (e.g. expanded file lists) and non-flag objects are left out.
    """
    beam_dests = {a.dest for a in opts.beam_parser()._actions}  # noqa: SLF001 - argparse API
    tokens = [os.environ[v] for v in _TOKEN_ENV_VARS if os.environ.get(v)]
    out: dict[str, str] = {}
    for name, value in sorted(vars(args).items()):
        if name.startswith("_") or name in _INTERNAL or value is None:
            continue
        text = _format_value(value)
        if text is None or len(text) > _MAX_VALUE_CHARS or _is_secret(name, text):
            continue
        if any(token in text for token in tokens):
            raise ConfigError(
                f"--{name} holds the X bearer token: pass it in X_BEARER_TOKEN or a secret instead"
            )
        out[f"twhin_{name}" if name in beam_dests else name] = text
    return out


class _QuietAppFlags(logging.Filter):
    """Drops Beam's "Unparseable argument" warning for the app flags we append on purpose."""

    names: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        match = re.match(r"Unparseable argument: --([A-Za-z0-9_]+)", record.getMessage())
        return not (match and match.group(1) in self.names)


_QUIET = _QuietAppFlags()
logging.getLogger("apache_beam.options.pipeline_options").addFilter(_QUIET)


def require_gcp_extra() -> None:
    """DataflowRunner imports Google's client libraries: say how to get them, not an ImportError."""
    import importlib.util

    try:
        found = importlib.util.find_spec("google.auth") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise ConfigError(
            "DataflowRunner needs the gcp extra: pip install 'twhin-data[gcp]' (or -e '.[gcp]')"
        )


def check_flags(flags: list[str], args: argparse.Namespace) -> None:
    """Raises ConfigError for what Dataflow would reject after a paid start: no project, region or
    temp location, nothing that ships the package, local --temp_location/--output on the real
    service, --save_main_session.

    Cheap and offline: call it before a pipeline's validate() touches gs:// paths.
    """
    require_gcp_extra()
    known, _ = opts.beam_parser().parse_known_args(flags)
    missing = [f"--{n}" for n in ("project", "region", "temp_location") if not getattr(known, n, None)]
    if missing:
        raise ConfigError(f"DataflowRunner needs {', '.join(missing)} (e.g. --temp_location=gs://BUCKET/tmp)")
    if getattr(known, "save_main_session", False):
        raise ConfigError(
            "--save_main_session is not used: every DoFn is importable from the twhin_data package on workers"
        )
    if not known.setup_file and not known.sdk_container_image and repo_setup_file() is None:
        raise ConfigError(
            "on Dataflow pass --sdk_container_image (built from deploy/Dockerfile) or --setup_file: "
            "this installation is not a source checkout, so there is no setup.py to ship"
        )
    if not _is_local_endpoint(known.dataflow_endpoint):
        for name, value in (
            ("temp_location", known.temp_location),
            ("output", getattr(args, "output", None)),
        ):
            if value and not str(value).startswith("gs://"):
                raise ConfigError(f"--{name} must be a gs:// path on Dataflow (workers cannot see {value!r})")


def complete_flags(flags: list[str], args: argparse.Namespace) -> list[str]:
    """Fills the Dataflow profile into Beam `flags` (called by launch.pipeline_options).

    Checks them first (`check_flags`), then ships the package, sets the machine type and labels,
    and appends the command's own flags (`app_options`).
    """
    check_flags(flags, args)
    known, _ = opts.beam_parser().parse_known_args(flags)
    out = list(flags)
    if not known.setup_file and not known.sdk_container_image:
        out.append(f"--setup_file={repo_setup_file()}")  # check_flags made sure there is one
    if known.sdk_container_image and not _flag_given(flags, "--sdk_location"):
        out.append("--sdk_location=container")  # the image already holds Beam and our package
    if not known.machine_type:
        out.append(f"--machine_type={DEFAULT_MACHINE_TYPE}")
    if not known.labels:
        out.append(f"--labels={DEFAULT_LABEL}")
    app = app_options(args)
    _QUIET.names.update(app)
    out += [f"--{name}={value}" for name, value in app.items()]
    return out


# ----------------------------------------------------------------------------------------------
# Submitting a pipeline, and the Flex Template entry point
# ----------------------------------------------------------------------------------------------


def _load(command: str):
    """The pipeline module of a command, or None (with the reason) when it is not in this build."""
    import importlib

    from twhin_data.runners.cli import COMMANDS

    if command not in COMMANDS or COMMANDS[command][1] != "pipeline":
        raise ConfigError(
            f"--pipelines: {command!r} is not a pipeline command; known: {', '.join(PIPELINES)}"
        )
    name = COMMANDS[command][0]
    try:
        return importlib.import_module(name), ""
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None, f"module {name} does not exist yet"


def submit(module, argv: list[str], beam_flags: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Parses `argv` like the CLI, then validates, builds and runs as launch.run_module does, without
    waiting: with --template_location Beam writes the spec; on the service it submits the job.

    Returns the parsed args and the top-level transform labels of the constructed pipeline.
    """
    from twhin_data.runners import launch

    parser = opts.OneLineParser(prog=f"twhin-data {module.NAME}", allow_abbrev=False)
    module.add_arguments(parser)
    opts.add_common_arguments(parser)
    args, extra = parser.parse_known_args(argv)
    if extra:
        raise ConfigError(f"{module.NAME}: unrecognized arguments: {' '.join(extra)}")
    args.workers = launch.resolve_workers(args, beam_flags)
    args.dataflow = opts.is_dataflow(beam_flags)
    if args.dataflow:
        check_flags(beam_flags, args)  # before validate() reads or lists gs:// paths
    module.validate(args)
    options = launch.pipeline_options(args, beam_flags)
    pipeline = beam.Pipeline(options=options)
    module.build(pipeline, args)
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
    from twhin_data.runners.cli import configure_logging

    argv = list(sys.argv[1:] if argv is None else argv)
    commands = [a for a in argv if a.startswith("--command=")]
    rest = [a for a in argv if not a.startswith("--command=")]
    command = commands[-1].split("=", 1)[1].replace("_", " ") if commands else ""
    configure_logging("INFO")
    try:
        if command not in PIPELINES:
            raise ConfigError(f"--command must be one of {', '.join(c.replace(' ', '_') for c in PIPELINES)}")
        module, why = _load(command)
        if module is None:
            raise ConfigError(why)
        parser = opts.OneLineParser(prog=f"twhin-data {command}", allow_abbrev=False)
        module.add_arguments(parser)
        opts.add_common_arguments(parser)
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
