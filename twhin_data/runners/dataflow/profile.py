"""The Dataflow runner profile: the flags a Dataflow job needs, checked and completed.

`complete_flags(flags, args)` is called by runners/launch.py when ``--runner=DataflowRunner``: it
checks the flags Dataflow needs, ships the package (``--setup_file`` from a checkout, else a custom
container), sets a default machine type, and appends the command's own flags as ``--name=value``
so they show on the job page (never a secret: the token is read on workers, see xapi/auth.py).

The Flex Template entry point is runners/dataflow/flex.py; `twhin-data dataflow-check` (the offline
job-spec check) is runners/dataflow/check.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
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

# Flag names that hold a secret value; "_file"/"_path" flags and Secret Manager names say where one lives.
_SECRET_NAME = re.compile(r"(^|_)(token|secret|password|passwd|credentials?|api_?key)(_|$)", re.IGNORECASE)
_REFERENCE_SUFFIXES = ("_file", "_path")
_SECRET_RESOURCE = re.compile(r"^projects/[^/]+/secrets/[^/]+(/versions/[^/]+)?$")
TOKEN_ENV_VARS = ("X_BEARER_TOKEN",)
# Common flags that do not describe a Dataflow job (--workers is local-only; Dataflow rejects above 1).
_INTERNAL = frozenset({"workers"})
_MAX_VALUE_CHARS = 1000


# ----------------------------------------------------------------------------------------------
# The runner profile
# ----------------------------------------------------------------------------------------------


def repo_setup_file() -> str | None:
    """`setup.py` of the checkout this package runs from, or None when installed from a wheel."""
    root = Path(__file__).resolve().parents[3]
    setup = root / "setup.py"
    return str(setup) if setup.is_file() and (root / "twhin_data" / "__init__.py").is_file() else None


def _is_local_endpoint(endpoint: str | None) -> bool:
    host = urlparse(endpoint or "").hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def _flag_given(flags: list[str], *names: str) -> bool:
    return any(f == n or f.startswith(n + "=") for f in flags for n in names)


def is_secret(name: str, text: str) -> bool:
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
    tokens = [os.environ[v] for v in TOKEN_ENV_VARS if os.environ.get(v)]
    out: dict[str, str] = {}
    for name, value in sorted(vars(args).items()):
        if name.startswith("_") or name in _INTERNAL or value is None:
            continue
        text = _format_value(value)
        if text is None or len(text) > _MAX_VALUE_CHARS or is_secret(name, text):
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

    Cheap and offline: call it before a pipeline's plan() touches gs:// paths.
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
