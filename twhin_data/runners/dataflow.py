"""The Dataflow runner profile, and `twhin-data dataflow-check`: the real job spec, built offline.

`complete_flags(flags, args)` is called by runners/launch.py when ``--runner=DataflowRunner``: it
checks the flags Dataflow needs, ships the package (``--setup_file`` from a checkout, else a custom
container), sets a default machine type, and appends the command's own flags as ``--name=value``
so they show on the job page (never a secret: the token is read on workers, see xapi/auth.py).

`dataflow-check` produces the job spec each pipeline would submit, without network or credentials
(localhost ``--dataflow_endpoint``, ``--no_auth``, local ``--template_location``; see
docs/dataflow.md), through the same validate/build/``pipeline.run()`` path as the real command,
then inspects what Dataflow would receive (`inspect_spec`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import apache_beam as beam

from twhin_data import __version__
from twhin_data.core.errors import ConfigError
from twhin_data.runners import options as opts

LOG = logging.getLogger("twhin_data.dataflow")

NAME = "dataflow-check"
HELP = "Build each pipeline's real Dataflow job spec offline (no submit) and check packaging and secrets."

#: The Beam SDK image our worker image is built FROM (deploy/Dockerfile); same version as the SDK.
BASE_IMAGE = f"apache/beam_python3.11_sdk:{beam.__version__}"
#: The worker image the offline check pins (any registry path works; nothing is pulled).
CHECK_IMAGE = f"us-central1-docker.pkg.dev/ci-fake/twhin-data/worker:{__version__}"
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
# dataflow-check: build the real job spec offline, then inspect it
# ----------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pipelines",
        type=opts.csv_list,
        default=list(PIPELINES),
        help="Comma-separated commands to check (default: all): " + ", ".join(PIPELINES) + ".",
    )
    parser.add_argument("--image", default=CHECK_IMAGE, help=f"Worker image to pin (default {CHECK_IMAGE}).")
    parser.add_argument(
        "--workdir",
        default=None,
        help="Where specs, staged files and the sample inputs go (default: a temporary directory, removed).",
    )
    parser.add_argument(
        "--inputs",
        default=None,
        help="Output directory of a finished `twhin-data run` to use as the pipelines' inputs "
        "(default: run the bundled sample locally first, only the stages needed).",
    )
    parser.add_argument(
        "--setup_file", default=None, help="setup.py to ship (default: the checkout's; required otherwise)."
    )
    parser.add_argument(
        "--log_level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="Log level of twhin-data's own messages during the check (default WARNING).",
    )


def build_sdist(setup_file: str, outdir: str) -> str:
    """`python -m build --no-isolation --sdist` (what Beam runs for --setup_file), offline."""
    os.makedirs(outdir, exist_ok=True)
    cmd = [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--outdir", outdir]
    proc = subprocess.run(
        [*cmd, os.path.dirname(os.path.abspath(setup_file))], capture_output=True, text=True, check=False
    )
    built = sorted(Path(outdir).glob("*.tar.gz"))
    if proc.returncode != 0 or not built:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"sdist build failed offline ({' '.join(cmd[1:5])}): {last[0]}")
    return str(built[-1])


def check_installable(sdist: str, package_root: str, outdir: str) -> list[str]:
    """Builds the wheel from the sdist as pip does on workers (offline); lists package files it lacks.

    The sdist can hold a data file (MANIFEST.in) that the installed package still misses
    (package_data): only the wheel shows what a worker really gets.
    """
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    proc = subprocess.run([*cmd, "-w", outdir, sdist], capture_output=True, text=True, check=False)
    wheels = sorted(Path(outdir).glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return [f"pip cannot build a wheel from the sdist offline: {last[0]}"]
    missing = sorted(set(expected_package_files(package_root)) - set(archive_members(str(wheels[-1]))))
    if missing:
        return [
            f"the installed package (wheel of the sdist) lacks {len(missing)} file(s): {', '.join(missing[:8])}"
        ]
    return []


@contextlib.contextmanager
def reuse_sdist(sdist: str) -> Iterator[None]:
    """Makes Beam's stager copy one prebuilt sdist instead of rebuilding it for every pipeline."""
    from apache_beam.runners.portability.stager import Stager

    original = Stager.__dict__["_build_setup_package"]

    def _copy(setup_file: str, temp_dir: str, build_setup_args=None) -> str:
        target = os.path.join(temp_dir, os.path.basename(sdist))
        shutil.copyfile(sdist, target)
        return target

    Stager._build_setup_package = staticmethod(_copy)
    try:
        yield
    finally:
        Stager._build_setup_package = original


@contextlib.contextmanager
def canary_secrets(workdir: str) -> Iterator[tuple[list[str], str]]:
    """Sets X_BEARER_TOKEN and writes a token file, both holding canary values; yields (canaries, file)."""
    env_canary = "canary-env-" + os.urandom(12).hex()
    file_canary = "canary-file-" + os.urandom(12).hex()
    token_file = os.path.join(workdir, "bearer_token.txt")
    with open(token_file, "w", encoding="utf-8") as handle:
        handle.write(file_canary + "\n")
    saved = {v: os.environ.get(v) for v in _TOKEN_ENV_VARS}
    os.environ.update({v: env_canary for v in _TOKEN_ENV_VARS})
    try:
        yield [env_canary, file_canary], token_file
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def spec_flags(workdir: str, *, setup_file: str, image: str, job_name: str) -> list[str]:
    """The Beam flags that make DataflowRunner write the job spec locally instead of submitting."""
    for sub in ("temp", "staging"):
        os.makedirs(os.path.join(workdir, sub), exist_ok=True)
    return [
        "--runner=DataflowRunner",
        "--project=ci-fake",
        "--region=us-central1",
        "--dataflow_endpoint=http://localhost:9",
        "--no_auth",
        f"--job_name={job_name}",
        f"--temp_location={os.path.join(workdir, 'temp')}",
        f"--staging_location={os.path.join(workdir, 'staging')}",
        f"--template_location={os.path.join(workdir, 'job.json')}",
        f"--setup_file={setup_file}",
        "--requirements_cache=skip",
        f"--sdk_container_image={image}",
        "--sdk_location=container",
    ]


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
            negated = "--no-" + name[2:]
            if on:
                out.append(name)
            elif negated in switches:
                out.append(negated)  # BooleanOptionalAction: --pack=false -> --no-pack
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


def check_pipeline(
    module, argv: list[str], *, workdir: str, image: str, setup_file: str, canaries: list[str]
) -> list[str]:
    """Builds one pipeline's job spec in `workdir` and returns the problems found (empty: pass)."""
    job_name = "twhin-check-" + re.sub(r"[^a-z0-9]+", "-", module.NAME.lower()).strip("-")
    flags = spec_flags(workdir, setup_file=setup_file, image=image, job_name=job_name)
    args, labels = submit(module, argv, flags)
    return inspect_spec(
        workdir,
        image=image,
        package_root=os.path.dirname(os.path.abspath(setup_file)),
        labels=labels,
        app=app_options(args),
        canaries=canaries,
    )


# ----------------------------------------------------------------------------------------------
# Inspecting what Dataflow would receive
# ----------------------------------------------------------------------------------------------

MAX_SPEC_BYTES = 10 * 1024 * 1024  # Dataflow rejects job requests/graphs above ~10 MB
_B64_RUN = re.compile(rb"[A-Za-z0-9+/]{48,}={0,2}")


def expected_package_files(package_root: str) -> list[str]:
    """Every file of the twhin_data package in a checkout (modules and data), as sdist-relative paths."""
    root = Path(package_root)
    found = []
    for path in (root / "twhin_data").rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and "__pycache__" not in rel.parts and not path.name.startswith("."):
            if path.suffix not in (".pyc", ".pyo"):
                found.append(rel.as_posix())
    return sorted(found)


def archive_members(path: str) -> dict[str, bytes]:
    """Files of a staged .tar.gz/.whl/.zip by their path below the archive's top folder."""
    import tarfile
    import zipfile

    out: dict[str, bytes] = {}
    if path.endswith((".tar.gz", ".tgz")):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    out[member.name.split("/", 1)[-1]] = handle.read()
    elif path.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as archive:
            out = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    return out


def _decoded_payloads(data: bytes) -> Iterator[bytes]:
    """Payloads hidden in base64 + bz2/zlib (how Beam pickles DoFns into pipeline.pb and options)."""
    import base64
    import bz2
    import zlib

    for match in _B64_RUN.finditer(data):
        text = match.group(0)
        for offset in range(4):  # a proto length prefix may itself be a base64 character
            chunk = text[offset:]
            try:
                raw = base64.b64decode(chunk[: len(chunk) // 4 * 4])
            except ValueError:
                continue
            for make in (bz2.BZ2Decompressor, zlib.decompressobj):
                try:
                    yield make().decompress(raw)
                except (OSError, EOFError, ValueError, zlib.error):
                    continue


def find_canaries(data: bytes, canaries: list[bytes], depth: int = 0) -> list[bytes]:
    """Canary values present in `data`, in plain bytes or inside compressed base64 payloads."""
    found = [c for c in canaries if c in data]
    if depth < 2 and len(found) < len(canaries):
        for inner in _decoded_payloads(data):
            found += [c for c in find_canaries(inner, canaries, depth + 1) if c not in found]
    return found


def _check_job(job: dict, *, image: str, app: dict[str, str]) -> list[str]:
    problems = []
    env = job.get("environment", {})
    pools = env.get("workerPools") or [{}]
    images = sorted({p.get("workerHarnessContainerImage") for p in pools})
    if images != [image]:
        problems.append(f"worker image is {images}, expected {image}")
    if "use_runner_v2" not in env.get("experiments", []):
        problems.append("experiments lack use_runner_v2")
    packages = [pkg.get("name") for p in pools for pkg in p.get("packages", [])]
    if "workflow.tar.gz" not in packages:
        problems.append(f"workflow.tar.gz is not among the staged packages {packages}")
    options = env.get("sdkPipelineOptions", {}).get("options", {})
    wrong = [k for k, v in app.items() if str(options.get(k)) != v]
    if wrong:
        problems.append("project options missing from sdkPipelineOptions: " + ", ".join(wrong))
    if options.get("save_main_session"):
        problems.append("save_main_session is on")
    return problems


def _check_proto(path: Path, *, image: str, labels: list[str]) -> list[str]:
    from apache_beam.portability.api import beam_runner_api_pb2 as pb2

    proto = pb2.Pipeline()
    try:
        proto.ParseFromString(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - any decode error is the finding
        return [f"pipeline.pb does not parse: {exc}"]
    names = {t.unique_name for t in proto.components.transforms.values()}
    problems = [f"pipeline.pb lacks transform {label!r}" for label in labels if label not in names]
    images = {
        pb2.DockerPayload.FromString(e.payload).container_image
        for e in proto.components.environments.values()
        if e.urn == "beam:env:docker:v1"
    }
    if images != {image}:
        problems.append(f"pipeline.pb environments use {sorted(images)}, expected {image}")
    return problems


def inspect_spec(
    workdir: str,
    *,
    image: str,
    package_root: str,
    labels: list[str],
    app: dict[str, str],
    canaries: list[str],
) -> list[str]:
    """Checks job.json, pipeline.pb, the staged sdist and every staged byte; returns the problems."""
    import json

    root = Path(workdir)
    job_path, staging = root / "job.json", root / "staging"
    if not job_path.is_file():
        return [f"no job spec was written at {job_path}"]
    problems = []
    for path in (job_path, staging / "pipeline.pb"):
        if path.is_file() and path.stat().st_size >= MAX_SPEC_BYTES:
            problems.append(f"{path.name} is {path.stat().st_size / 2**20:.1f} MB (Dataflow limit ~10 MB)")
    problems += _check_job(json.loads(job_path.read_text(encoding="utf-8")), image=image, app=app)
    if not (staging / "pipeline.pb").is_file():
        problems.append("pipeline.pb was not staged")
    else:
        problems += _check_proto(staging / "pipeline.pb", image=image, labels=labels)
    sdist = staging / "workflow.tar.gz"
    members = archive_members(str(sdist)) if sdist.is_file() else {}
    missing = sorted(set(expected_package_files(package_root)) - set(members))
    if missing:
        problems.append(f"staged sdist lacks {len(missing)} package file(s): {', '.join(missing[:8])}")
    secret = [c.encode() for c in canaries]
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "bearer_token.txt"):
        blobs = [path.read_bytes(), *archive_members(str(path)).values()]
        if any(find_canaries(blob, secret) for blob in blobs):
            problems.append(f"a secret value appears in {path.relative_to(root)}")
    return problems


# ----------------------------------------------------------------------------------------------
# The command
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


def main(args: argparse.Namespace, extra: list[str]) -> int:
    from twhin_data.runners import local

    if extra:
        raise ConfigError("unrecognized arguments: " + " ".join(extra))
    require_gcp_extra()
    logging.getLogger("twhin_data").setLevel(args.log_level)
    setup_file = args.setup_file or repo_setup_file()
    if not setup_file or not os.path.isfile(setup_file):
        raise ConfigError("pass --setup_file PATH/setup.py: this installation is not a source checkout")
    modules = {command: _load(command) for command in args.pipelines}
    workdir = args.workdir or tempfile.mkdtemp(prefix="twhin-dataflow-check-")
    failed = 0
    try:
        sdist = build_sdist(setup_file, os.path.join(workdir, "sdist"))
        root = os.path.dirname(os.path.abspath(setup_file))
        problems = check_installable(sdist, root, os.path.join(workdir, "wheel"))
        name = os.path.basename(sdist)
        if problems:
            print(f"sdist  FAIL  {name} built offline, but " + "; ".join(problems))
        else:
            print(f"sdist  OK    {name} built offline; the wheel built from it installs every package file")
        failed += bool(problems)
        present = [c for c, (m, _) in modules.items() if m is not None]
        inputs = args.inputs or local.sample_inputs(os.path.join(workdir, "sample"), present)
        with canary_secrets(workdir) as (canaries, token_file), reuse_sdist(sdist):
            for command, (module, why) in modules.items():
                failed += _check_one(
                    command,
                    module,
                    why,
                    workdir=workdir,
                    inputs=inputs,
                    secrets=(canaries, token_file),
                    image=args.image,
                    setup_file=setup_file,
                )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def _check_one(
    command: str,
    module,
    why: str,
    *,
    workdir: str,
    inputs: str,
    secrets: tuple[list[str], str],
    image: str,
    setup_file: str,
) -> int:
    """Checks one pipeline's spec and prints its verdict line; returns 1 when it fails."""
    from twhin_data.runners import local

    canaries, token_file = secrets
    label = f"{command:<21}"
    if module is None:
        print(f"{label} SKIP  {why}")
        return 0
    spec_dir = os.path.join(workdir, "specs", command.replace(" ", "_"))
    shutil.rmtree(spec_dir, ignore_errors=True)
    argv = local.sample_argv(command, inputs, os.path.join(spec_dir, "out"))
    if "--bearer_token_file" in _option_strings(module):
        argv.append(f"--bearer_token_file={token_file}")
    try:
        problems = check_pipeline(
            module,
            argv,
            workdir=spec_dir,
            image=image,
            setup_file=setup_file,
            canaries=canaries,
        )
    except Exception as exc:  # noqa: BLE001 - a ConfigError or a build failure: one line, then go on
        problems = [
            f"spec generation failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ]
    if problems:
        print(f"{label} FAIL  " + "; ".join(problems))
        return 1
    size = os.path.getsize(os.path.join(spec_dir, "job.json"))
    print(f"{label} OK    job.json {size / 1024:.0f} KB, image {image}, sdist complete, no secret staged")
    return 0


def _option_strings(module) -> set[str]:
    parser = argparse.ArgumentParser(add_help=False)
    module.add_arguments(parser)
    return set(parser._option_string_actions)  # noqa: SLF001 - argparse API
