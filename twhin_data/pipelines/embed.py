"""`twhin-data embed`: TwHIN embeddings of the engagement graph with PyTorch-BigGraph (not a Beam job).

    twhin-data embed --output OUT [--dimension 256] [--epochs 10] [--workers N]

Imports OUT/graph/pbg (what `twhin-data graph` wrote) with PyTorch-BigGraph's importer, trains
with the paper's settings (translation operator, dot comparator, logistic loss, 1,000 uniform and
1,000 batch negatives, Adagrad), and writes OUT/embeddings/tweets/ and OUT/embeddings/users/ as
Parquet (transforms/graph/pbg_train.py). Then:

    twhin-data graph ... --pairs embeddings --embeddings OUT/embeddings/tweets
"""

from __future__ import annotations

import argparse
import json
import time

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.pipelines import flags as opts
from twhin_data.transforms.graph import pbg_train

NAME = "embed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True, help="The output root holding graph/pbg (graph's output).")
    parser.add_argument("--dimension", type=opts.positive_int, default=256, help="Embedding dimension (paper: 256).")
    parser.add_argument("--epochs", type=opts.positive_int, default=10, help="Training epochs (paper: 10).")
    parser.add_argument("--workers", type=opts.positive_int, default=1, help="PyTorch-BigGraph HOGWILD threads (default 1).")
    parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")


def main(args: argparse.Namespace, extra: list[str]) -> int:
    if extra:
        raise ConfigError(f"unknown flags for embed: {' '.join(extra)}")
    pbg_dir = files.join(args.output, "graph", "pbg")
    if files.is_remote(pbg_dir):
        raise ConfigError("embed trains on a local folder: copy OUT/graph/pbg down first (see docs/graph.md)")
    if not files.exists(files.join(pbg_dir, "config.py")):
        raise ConfigError(f"{pbg_dir}/config.py not found: run twhin-data graph --output {args.output} first")
    pbg_train.require_pbg()
    start = time.perf_counter()
    ran = pbg_train.train(pbg_dir, dimension=args.dimension, epochs=args.epochs, workers=args.workers)
    counts = pbg_train.export(pbg_dir, args.output)
    summary = {
        "stage": NAME,
        **ran,
        "tweets": counts["tweets"],
        "users": counts["users"],
        "embeddings": files.join(args.output, "embeddings"),
        "elapsed_s": round(time.perf_counter() - start, 1),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        width = max(len(k) for k in summary)
        print("[embed]\n" + "\n".join(f"  {k:<{width}}  {v}" for k, v in summary.items() if k != "stage"))
    return 0
