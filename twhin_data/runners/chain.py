"""`twhin-data run`: the whole chain from one YAML config; by default the bundled sample, offline."""

from __future__ import annotations

import argparse
import contextlib
import html
import importlib
import importlib.resources
import logging
import os
import secrets
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import yaml

from twhin_data.core import files, progress
from twhin_data.core.errors import ConfigError
from twhin_data.core.lock import OutputLock
from twhin_data.pipelines import flags
from twhin_data.runners import options as opts
from twhin_data.runners.commands import COMMANDS
from twhin_data.runners.launch import check_output_folder, run_module
from twhin_data.runners.summary import dump, render
from twhin_data.xapi.mock.server import MockXApi

NAME = "run"
LOG = logging.getLogger("twhin_data.run")

#: stage -> CLI command, in execution order. The benchmarks need only the hydrated tweets and run
#: before prepare, so that prepare keeps their dev and test tweets out of the corpus (--exclude).
STAGES: dict[str, str] = {
    "hydrate": "hydrate",
    "benchmark_hashtag": "benchmark hashtag",
    "benchmark_engagement": "benchmark engagement",
    "prepare": "prepare",
    "graph": "graph",
    "shard": "shard",
}
BENCHMARK_DIRS = {"benchmark_hashtag": "hashtag", "benchmark_engagement": "engagement"}
SAMPLE_PREFIX = "sample:"


def sample_path(name: str) -> str:
    """Absolute path of a bundled sample file (twhin_data/data/<name>)."""
    path = importlib.resources.files("twhin_data.data").joinpath(name)
    if not path.is_file():
        raise ConfigError(f"bundled sample file {name!r} is missing from this installation")
    return str(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=None,
        help="YAML config (default: the bundled sample config, twhin_data/data/sample_config.yaml). "
        "Each stage section holds that command's flags.",
    )
    parser.add_argument("--output", default=None, help="Output directory (default: the config's, else ./twhin-out).")
    parser.add_argument(
        "--stages",
        type=flags.csv_list,
        default=None,
        help="Comma-separated subset of stages to run: " + ", ".join(STAGES) + " (default: all in the config).",
    )
    parser.add_argument("--workers", type=flags.positive_int, default=None, help="Local worker processes per stage (default: all cores).")
    parser.add_argument("--overwrite", action="store_true", help="Replace the outputs of a previous run in --output.")
    parser.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="Log level of twhin-data's own messages.")
    opts.add_json_argument(parser)


def load_config(path: str | None) -> dict[str, Any]:
    source = path or sample_path("sample_config.yaml")
    try:
        with open(source, encoding="utf-8") as handle:
            config = yaml.safe_load(handle) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {source}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {source} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config {source} must be a mapping of stage sections")
    unknown = sorted(set(config) - set(STAGES) - {"output"})
    if unknown:
        raise ConfigError(f"config {source}: unknown section(s) {', '.join(unknown)}; known: output, {', '.join(STAGES)}")
    return config


def resolve(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(SAMPLE_PREFIX):
        return sample_path(value[len(SAMPLE_PREFIX) :])
    return value


def to_flags(section: dict[str, Any]) -> list[str]:
    """Turns a stage section into CLI flags: lists joined with commas, True -> bare flag."""
    flags: list[str] = []
    for key, value in section.items():
        if key in ("enabled", "mock_api") or value is None or value is False:
            continue
        if value is True:
            flags.append(f"--{key}")
        elif isinstance(value, list | tuple):
            flags.append(f"--{key}={','.join(str(resolve(v)) for v in value)}")
        else:
            flags.append(f"--{key}={resolve(value)}")
    return flags


def wiring(stage: str, out: str, ran: set[str]) -> list[str]:
    """Flags that connect a stage to the outputs of the stages before it."""
    join = files.join
    if stage == "hydrate":
        return [f"--output={out}"]
    built = [join(out, "benchmarks", name) for name in BENCHMARK_DIRS.values()]
    exclude = [f"--exclude={','.join(b for b in built if files.exists(join(b, 'manifest.json')))}"]
    exclude = exclude if exclude[0] != "--exclude=" else []
    if stage == "prepare":
        return [f"--tweets={out}", f"--output={out}", *exclude]
    if stage == "graph":
        flags = [f"--tweets={out}"] if "hydrate" in ran or files.exists(join(out, "tweets")) else []
        if "prepare" in ran and files.list_parquet(join(out, "duplicates")):
            flags.append(f"--duplicates={join(out, 'duplicates')}")
        return [*flags, f"--output={out}", *exclude]
    if stage == "shard":
        flags = [f"--corpus={join(out, 'corpus')}", f"--output={join(out, 'shards')}"]
        if "graph" in ran and files.exists(join(out, "pairs")):
            flags.append(f"--pairs={join(out, 'pairs')}")
        if "graph" in ran and files.list_parquet(join(out, "graph", "tweets")):
            flags.append(f"--engaged={join(out, 'graph', 'tweets')}")  # two stages, as the paper
        return flags
    if stage == "benchmark_hashtag":
        return [f"--tweets={out}", f"--output={join(out, 'benchmarks', 'hashtag')}"]
    return [f"--tweets={out}", f"--output={join(out, 'benchmarks', 'engagement')}"]


def parse_command(command: str, argv: list[str]) -> tuple[ModuleType, argparse.Namespace]:
    """Parses `argv` exactly as `twhin-data <command>` would (a bad flag: one line, exit 2)."""
    module = importlib.import_module(COMMANDS[command].module)
    return module, opts.command_parser(command, module).parse_args(argv)


def run_command(command: str, argv: list[str], beam_args: list[str]) -> dict:
    """Parses `argv` exactly as `twhin-data <command>` would, then runs the pipeline."""
    module, args = parse_command(command, argv)
    LOG.info("stage %s: twhin-data %s %s", command, command, " ".join(argv))
    return run_module(module, args, beam_args)


def validate_stages(config: dict[str, Any], stages: list[str], out: str, common: list[str]) -> None:
    """Every stage's flags parsed and validated before the first stage starts, so a typo in a late
    section costs nothing (no API reads spent by hydrate first)."""
    for i, stage in enumerate(stages):
        section = {k: v for k, v in (config.get(stage) or {}).items() if k != "mock_api"}
        argv = to_flags(section) + wiring(stage, out, set(stages[:i])) + common
        module, args = parse_command(STAGES[stage], argv)
        try:
            module.validate(args)
        except ConfigError as exc:
            raise ConfigError(f"config section {stage}: {exc}") from None


@contextlib.contextmanager
def mock_api(section: dict[str, Any] | None) -> Iterator[str | None]:
    """Starts the local mock X API for the sample; yields its base URL (None when not configured)."""
    if not section:
        yield None
        return
    token = os.environ.get("X_BEARER_TOKEN") or secrets.token_urlsafe(24)
    os.environ["X_BEARER_TOKEN"] = token  # read by the hydrate workers in setup(), never passed as a flag
    kwargs = {k: resolve(v) for k, v in section.items()}
    with MockXApi(token=token, **kwargs) as server:
        LOG.info("mock X API serving the sample on %s", server.base_url)
        yield server.base_url


def clean_outputs(out: str, stages: list[str]) -> None:
    names = {
        "hydrate": ["tweets", "unavailable", "_progress"],
        "prepare": ["corpus"],
        "graph": ["engagements", "graph", "pairs"],
        "shard": ["shards"],
        "benchmark_hashtag": [os.path.join("benchmarks", "hashtag")],
        "benchmark_engagement": [os.path.join("benchmarks", "engagement")],
    }
    if "://" in out:
        return  # remote outputs: each stage's own --overwrite handles its files
    for stage in stages:
        stage_name = STAGES[stage].replace(" ", "_")
        for name in names[stage] + [os.path.join("errors", stage_name), os.path.join("reports", stage_name)]:
            files.remove(os.path.join(out, name))


def write_report_index(out: str, summaries: dict[str, dict]) -> str:
    """OUT/reports/index.html: one link per stage to its report.html (relative links, so the folder
    can be moved or shared); returns its path."""
    index_dir = files.join(out, "reports")
    links = []
    for stage, summary in summaries.items():
        path = (summary or {}).get("report")
        if path:
            target = files.relative_to(path, index_dir)
            links.append(f'<li><a href="{html.escape(target)}">{html.escape(STAGES[stage])}</a></li>')
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>twhin-data run reports</title>'
        "<style>body{font-family:system-ui,sans-serif;margin:2em}li{margin:.4em 0}</style></head>\n"
        f"<body><h1>twhin-data run reports</h1><ul>{''.join(links)}</ul></body></html>\n"
    )
    path = files.join(index_dir, "index.html")
    files.write_bytes_atomic(path, page.encode("utf-8"))
    return path


def main(args: argparse.Namespace, extra: list[str]) -> int:
    opts.check_beam_args(extra)
    config = load_config(args.config)
    out = args.output or config.get("output") or "./twhin-out"
    stages = [s for s in STAGES if s in config and (config[s] or {}).get("enabled", True) is not False]
    if args.stages:
        unknown = sorted(set(args.stages) - set(STAGES))
        if unknown:
            raise ConfigError(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGES)}")
        stages = [s for s in stages if s in args.stages]
    if not stages:
        raise ConfigError("no stage to run: the config enables none of " + ", ".join(STAGES))
    if files.exists(files.join(out, "shards", "COMPLETED")) and not args.overwrite and "shard" in stages:
        raise ConfigError(f"{out} already holds a complete run; pass --overwrite to replace it, or choose another --output")
    common = [f"--log_level={args.log_level}"] + ([f"--workers={args.workers}"] if args.workers else [])
    common += ["--overwrite"] if args.overwrite else []
    validate_stages(config, stages, out, common)
    check_output_folder(out)
    if files.is_remote(out):  # each stage locks its own output, once its Dataflow flags are checked
        return _run_stages(config, stages, out, common, extra, args)
    with OutputLock(out, NAME):  # the stages writing into `out` take the same lock again
        return _run_stages(config, stages, out, common, extra, args)


def _run_stages(
    config: dict[str, Any], stages: list[str], out: str, common: list[str], extra: list[str], args: argparse.Namespace
) -> int:
    overwrite = args.overwrite
    if overwrite:
        clean_outputs(out, stages)
    summaries: dict[str, dict] = {}
    started = time.monotonic()
    hydrate_section = dict(config.get("hydrate") or {}) if "hydrate" in stages else {}
    with mock_api(hydrate_section.get("mock_api")) as base_url:
        for number, stage in enumerate(stages, 1):
            section = dict(config.get(stage) or {})
            if stage == "hydrate" and base_url:
                section["api_base_url"] = base_url
            argv = to_flags(section) + wiring(stage, out, set(summaries)) + common
            LOG.info("stage %d of %d: %s", number, len(stages), STAGES[stage])
            with progress.stage_label(f"[{number}/{len(stages)}] "):  # the bar says which stage of how many
                summaries[stage] = run_command(STAGES[stage], argv, extra)
    elapsed = time.monotonic() - started
    index = write_report_index(out, summaries)
    report = {"output": out, "stages": summaries, "elapsed_s": round(elapsed, 1), "reports": index}
    files.write_json(files.join(out, "reports", "run", "summary.json"), files.shareable(report, out))
    print(dump(report) if args.json else render(report))
    return 0
