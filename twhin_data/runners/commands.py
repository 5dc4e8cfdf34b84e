"""The table of `twhin-data` commands: name -> (module, kind). Data only, so every runner module can
import it without importing the CLI."""

from __future__ import annotations

import importlib
from types import ModuleType

from twhin_data.core.errors import ConfigError

#: command -> (module, kind). "pipeline" modules follow pipelines/__init__.py; "tool" modules
#: expose add_arguments(parser) and main(args, extra_args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("twhin_data.runners.chain", "tool"),
    "hydrate": ("twhin_data.pipelines.hydrate", "pipeline"),
    "prepare": ("twhin_data.pipelines.prepare", "pipeline"),
    "graph": ("twhin_data.pipelines.graph", "pipeline"),
    "shard": ("twhin_data.pipelines.shard", "pipeline"),
    "benchmark hashtag": ("twhin_data.pipelines.benchmark_hashtag", "pipeline"),
    "benchmark engagement": ("twhin_data.pipelines.benchmark_engagement", "pipeline"),
    "benchmark evaluate": ("twhin_data.pipelines.benchmark_evaluate", "tool"),
    "mock-api": ("twhin_data.xapi.mock.server", "tool"),
    "dataflow-check": ("twhin_data.runners.dataflow.check", "tool"),
}

#: The commands that are Beam pipelines (each module follows pipelines/__init__.py), in chain order.
PIPELINES = tuple(name for name, (_module, kind) in COMMANDS.items() if kind == "pipeline")


def load_pipeline(command: str) -> tuple[ModuleType | None, str]:
    """The pipeline module of a command, or (None, why) when it is not in this build."""
    if command not in COMMANDS or COMMANDS[command][1] != "pipeline":
        raise ConfigError(f"{command!r} is not a pipeline command; known: {', '.join(PIPELINES)}")
    name = COMMANDS[command][0]
    try:
        return importlib.import_module(name), ""
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None, f"module {name} does not exist yet"
