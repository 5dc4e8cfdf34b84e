"""Dataset cards (``README.md``) that `datasets.load_dataset(DIR)` reads and `push_to_hub` publishes.

One home for the card's YAML header: ``configs`` (which files make which split), ``license``,
``language``, ``size_categories``, ``task_categories``, ``pretty_name`` and ``tags``, plus the
paper's citation for the body. Tweet text is not ours to license: the header says ``license:
other`` and names X's developer terms, which bind whoever holds hydrated tweets (delete what X
reports deleted or protected).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

LICENSE_NAME = "x-developer-agreement"
LICENSE_LINK = "https://developer.x.com/en/developer-terms/agreement-and-policy"
CITATION = """@article{zhang2022twhin,
  title={TwHIN-BERT: A Socially-Enriched Pre-trained Language Model for Multilingual Tweet Representations},
  author={Zhang, Xinyang and Malkov, Yury and Florez, Omar and Park, Serim and McWilliams, Brian and Han, Jiawei and El-Kishky, Ahmed},
  journal={arXiv preprint arXiv:2209.07562},
  year={2022}
}"""
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./*-]*")
#: The Hub's size buckets (rows), smallest first.
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
          (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T"))


def size_category(rows: int) -> str:
    return next((name for limit, name in _SIZES if rows < limit), "n>1T")


def _quoted(value: str) -> str:
    """`value` as a YAML scalar: plain when it is a simple name or path, else a JSON string (which
    is valid YAML)."""
    return value if _PLAIN.fullmatch(value) else json.dumps(value, ensure_ascii=False)


def card_header(
    *,
    pretty_name: str,
    configs: Sequence[dict],
    languages: Sequence[str],
    rows: int,
    task_categories: Sequence[str],
    sizes: dict[str, dict[str, tuple[int, int]]] | None = None,
    tags: Sequence[str] = ("twitter", "tweets", "twhin-bert"),
) -> list[str]:
    """The YAML header lines (``---`` ... ``---``). `configs`: ``[{"config_name": ...,
    "data_files": {split: path glob}}]``; `languages`: ISO codes (``und`` is left out); `sizes`:
    {config: {split: (rows, bytes)}}, written as ``dataset_info``.

    ``dataset_info`` matters beyond the Hub page: `datasets` caches a local folder's splits under a
    hash of the card's ``configs`` and ``dataset_info`` only (not of the files' paths or times), so
    without the sizes two different folders, or one folder before and after `twhin-data comply`,
    would load the same cached copy."""
    lines = ["---", f"pretty_name: {_quoted(pretty_name)}", "license: other"]
    lines += [f"license_name: {LICENSE_NAME}", f"license_link: {LICENSE_LINK}"]
    langs = sorted({lang for lang in languages if lang and lang != "und"})
    if langs:
        lines += ["language:"] + [f"- {_quoted(lang)}" for lang in langs]
        lines.append(f"multilinguality: {'multilingual' if len(langs) > 1 else 'monolingual'}")
    lines += ["size_categories:", f"- {size_category(rows)}"]
    lines += ["task_categories:"] + [f"- {task}" for task in task_categories]
    lines += ["tags:"] + [f"- {tag}" for tag in tags]
    if sizes:
        lines.append("dataset_info:")
        for name, splits in sizes.items():
            lines += [f"- config_name: {_quoted(name)}", "  splits:"]
            for split, (rows, size) in splits.items():
                lines += [f"  - name: {split}", f"    num_bytes: {size}", f"    num_examples: {rows}"]
            total = sum(size for _, size in splits.values())
            lines += [f"  download_size: {total}", f"  dataset_size: {total}"]
    lines.append("configs:")
    for config in configs:
        lines += [f"- config_name: {_quoted(config['config_name'])}"]
        lines += ["  default: true"] if config.get("default") else []
        lines += ["  data_files:"]
        for split, path in config["data_files"].items():
            lines += [f"  - split: {split}", f"    path: {_quoted(path)}"]
    return [*lines, "---"]


def citation_section() -> list[str]:
    return [
        "## License and terms",
        "",
        "Tweet content stays subject to X's developer terms (" + LICENSE_LINK + "): share tweet IDs "
        "rather than text where you can, and delete tweets that X reports deleted or protected.",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
