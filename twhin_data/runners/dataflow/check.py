"""`twhin-data dataflow-check`: each pipeline's real Dataflow job spec, built offline and inspected."""

# It produces the job spec each pipeline would submit, without network or credentials
# (localhost ``--dataflow_endpoint``, ``--no_auth``, local ``--template_location``; see
# docs/dataflow.md), through the same validate/build/``pipeline.run()`` path as the real command
# (runners/dataflow/flex.py `submit`), then inspects what Dataflow would receive (`inspect_spec`).

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

from twhin_data import __version__
from twhin_data.core.errors import ConfigError
from twhin_data.pipelines import flags
from twhin_data.runners import local
from twhin_data.runners.commands import PIPELINES, load_pipeline
from twhin_data.runners.dataflow.flex import submit
from twhin_data.runners.dataflow.inspect import archive_members, expected_package_files, inspect_spec
from twhin_data.runners.dataflow.profile import (
    TOKEN_ENV_VARS,
    app_options,
    repo_setup_file,
    require_gcp_extra,
)

NAME = "dataflow-check"

#: The worker image the offline check pins (any registry path works; nothing is pulled).
CHECK_IMAGE = f"us-central1-docker.pkg.dev/ci-fake/twhin-data/worker:{__version__}"

# ----------------------------------------------------------------------------------------------
# dataflow-check: build the real job spec offline, then inspect it
# ----------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pipelines",
        type=flags.csv_list,
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
    saved = {v: os.environ.get(v) for v in TOKEN_ENV_VARS}
    os.environ.update({v: env_canary for v in TOKEN_ENV_VARS})
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
# The command
# ----------------------------------------------------------------------------------------------


def main(args: argparse.Namespace, extra: list[str]) -> int:
    if extra:
        raise ConfigError("unrecognized arguments: " + " ".join(extra))
    require_gcp_extra()
    logging.getLogger("twhin_data").setLevel(args.log_level)
    setup_file = args.setup_file or repo_setup_file()
    if not setup_file or not os.path.isfile(setup_file):
        raise ConfigError("pass --setup_file PATH/setup.py: this installation is not a source checkout")
    modules = {command: load_pipeline(command) for command in args.pipelines}
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
    canaries, token_file = secrets
    label = f"{command:<21}"
    if module is None:
        print(f"{label} SKIP  {why}")
        return 0
    spec_dir = os.path.join(workdir, "specs", command.replace(" ", "_"))
    shutil.rmtree(spec_dir, ignore_errors=True)
    argv = local.sample_argv(command, inputs, os.path.join(spec_dir, "out"))
    if "--bearer_token_file" in option_strings(module):
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


def option_strings(module) -> set[str]:
    parser = argparse.ArgumentParser(add_help=False)
    module.add_arguments(parser)
    return set(parser._option_string_actions)  # noqa: SLF001 - argparse API
