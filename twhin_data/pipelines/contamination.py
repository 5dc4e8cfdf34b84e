"""`twhin-data contamination`: the paper's character 50-gram overlap between a corpus and benchmarks.

For every benchmark language and split (validation, test), the share of its tweets that share a
50-character span with some corpus text (compared on their match views: text/contamination.py),
as the paper measured it (1.56% on its hashtag benchmark). The corpus is streamed in batches of its
``text`` column; the benchmark spans are held in memory (dev and test splits are small).

    twhin-data contamination --corpus OUT/corpus --benchmarks OUT/benchmarks/hashtag,OUT/benchmarks/engagement
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import pyarrow.parquet as pq

from twhin_data.core import files, progress
from twhin_data.core.errors import ConfigError
from twhin_data.pipelines import flags as opts
from twhin_data.text.contamination import load_index

NAME = "contamination"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", required=True, help="A prepared corpus/ folder (or one Parquet file with a text column).")
    parser.add_argument("--benchmarks", type=opts.csv_list, required=True, help="Built benchmark folders, comma-separated.")
    parser.add_argument("--output", default=None, help="Also write the figures as JSON to this file (default: none).")
    parser.add_argument("--json", action="store_true", help="Print JSON instead of aligned text.")
    parser.add_argument("--batch_rows", type=opts.positive_int, default=65_536, help="Corpus rows read at a time (default: 65536).")


def measure(corpus_files: list[str], benchmarks: list[str], batch_rows: int = 65_536) -> dict:
    """{"<benchmark>/<lang>/<split>": {"tweets", "overlapping", "share"}} and the corpus size."""
    index = load_index(benchmarks)
    totals = Counter("/".join(key.split("/")[:3]) for key in set(index.ids.values()) | set(index.views.values()))
    hit: set[str] = set()
    rows = 0
    reporter = progress.start(NAME, total=sum(pq.read_metadata(p).num_rows for p in corpus_files if not files.is_remote(p)) or None, unit="tweets")
    try:
        for path in corpus_files:
            with files.open_read(path) as handle:
                for batch in pq.ParquetFile(handle).iter_batches(batch_size=batch_rows, columns=["text"]):
                    for text in batch.column(0).to_pylist():
                        if text:
                            hit |= index.matches(text)
                    rows += batch.num_rows
                    reporter.advance(batch.num_rows)
    finally:
        progress.stop(NAME)
    overlapping = Counter("/".join(key.split("/")[:3]) for key in hit)
    splits = {
        split: {"tweets": n, "overlapping": overlapping[split], "share": round(overlapping[split] / n, 6) if n else 0.0}
        for split, n in sorted(totals.items())
    }
    return {"corpus_rows": rows, "ngram": 50, "splits": splits}


def render(result: dict) -> str:
    lines = [f"contamination: character 50-gram overlap with {result['corpus_rows']:,} corpus tweets", ""]
    width = max((len(k) for k in result["splits"]), default=10) + 2
    lines.append(f"{'benchmark/lang/split':<{width}}{'tweets':>8}{'overlap':>9}{'share':>9}")
    for key, row in result["splits"].items():
        lines.append(f"{key:<{width}}{row['tweets']:>8,}{row['overlapping']:>9,}{100 * row['share']:>8.2f}%")
    return "\n".join(lines)


def main(args: argparse.Namespace, extra: list[str]) -> int:
    if extra:
        raise ConfigError(f"unknown flags for contamination: {' '.join(extra)}")
    corpus = files.list_parquet(args.corpus) if not args.corpus.endswith(".parquet") else [args.corpus]
    if not corpus:
        raise ConfigError(f"--corpus {args.corpus}: no Parquet files there")
    for folder in args.benchmarks:
        if not files.exists(files.join(folder, "manifest.json")):
            raise ConfigError(f"--benchmarks {folder}: not a built benchmark (no manifest.json there)")
    result = measure(corpus, args.benchmarks, args.batch_rows)
    print(json.dumps(result, indent=2) if args.json else render(result))
    if args.output:
        files.write_json(args.output, result)
    return 0
