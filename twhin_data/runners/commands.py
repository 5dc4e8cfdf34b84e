"""The table of `twhin-data` commands: name -> (module, kind, one-line help). Light (no Beam import), so
the CLI prints its help fast and every runner module can import it without importing the CLI."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import NamedTuple

from twhin_data.core import memory
from twhin_data.core.errors import ConfigError


class Command(NamedTuple):
    module: str  # "pipeline" modules follow pipelines/__init__.py; "tool" modules expose
    kind: str  # add_arguments(parser) and main(args, extra_args) -> int
    help: str  # the one line of `twhin-data --help` (no module is imported to print it)
    mmap_threshold: int = memory.MMAP_THRESHOLD  # glibc's, for the command and its pool (core/memory.py)


#: command -> Command, in the order `twhin-data --help` lists them.
COMMANDS: dict[str, Command] = {
    "run": Command(
        "twhin_data.runners.chain",
        "tool",
        "Run hydrate -> benchmarks -> prepare -> graph -> shard from one YAML config (default: bundled sample, offline).",
    ),
    "hydrate": Command(
        "twhin_data.pipelines.hydrate",
        "pipeline",
        "Hydrate tweet IDs through the X API v2 (paced, resumable), or read already-hydrated archives.",
    ),
    "prepare": Command(
        "twhin_data.pipelines.prepare",
        "pipeline",
        "Normalize, language-tag, filter, dedupe and resample hydrated tweets into corpus/.",
    ),
    "graph": Command(
        "twhin_data.pipelines.graph",
        "pipeline",
        "Build the user-tweet engagement graph (PyTorch-BigGraph ready) and socially-similar tweet pairs.",
        memory.GRAPH_MMAP_THRESHOLD,
    ),
    "embed": Command(
        "twhin_data.pipelines.embed",
        "tool",
        "TwHIN embeddings of the engagement graph with PyTorch-BigGraph (the pbg extra): Parquet for pairs.",
    ),
    "shard": Command(
        "twhin_data.pipelines.shard",
        "pipeline",
        "Tokenize the corpus (and pairs), pack tweets, write deterministic Parquet shards + manifest.",
    ),
    "benchmark hashtag": Command(
        "twhin_data.pipelines.benchmark_hashtag",
        "pipeline",
        "Hashtag-prediction benchmark: label files + hydrated tweets -> per-language splits.",
    ),
    "benchmark engagement": Command(
        "twhin_data.pipelines.benchmark_engagement",
        "pipeline",
        "Engagement-prediction benchmark: engagements + tweets + user embeddings -> records, candidate lists.",
    ),
    "comply": Command(
        "twhin_data.pipelines.comply",
        "pipeline",
        "Remove deleted/protected tweets (an ID list, a re-hydration, an X compliance job) from every output.",
    ),
    "benchmark evaluate": Command(
        "twhin_data.pipelines.benchmark_evaluate",
        "tool",
        "HITS@k of a scores file on the engagement benchmark, with random and popularity baselines.",
    ),
    "contamination": Command(
        "twhin_data.pipelines.contamination",
        "tool",
        "The paper's character 50-gram overlap between a corpus and each benchmark's dev and test splits.",
    ),
    "mock-api": Command(
        "twhin_data.xapi.mock.command",
        "tool",
        "Serve a local mock of the X API v2 tweet lookup (rate limits, errors, faults).",
    ),
    "dataflow-check": Command(
        "twhin_data.runners.dataflow.check",
        "tool",
        "Build each pipeline's real Dataflow job spec offline (no submit) and check packaging and secrets.",
    ),
}

#: The commands that are Beam pipelines (each module follows pipelines/__init__.py), in chain order.
PIPELINES = tuple(name for name, command in COMMANDS.items() if command.kind == "pipeline")


def load_pipeline(command: str) -> tuple[ModuleType | None, str]:
    """The pipeline module of a command, or (None, why) when it is not in this build."""
    if command not in COMMANDS or COMMANDS[command].kind != "pipeline":
        raise ConfigError(f"{command!r} is not a pipeline command; known: {', '.join(PIPELINES)}")
    name = COMMANDS[command].module
    try:
        return importlib.import_module(name), ""
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None, f"module {name} does not exist yet"
