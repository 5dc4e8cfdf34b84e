"""The shard folder's own description: manifest.json, the dataset card README.md and COMPLETED.

`write_manifest` is the shard job's final step: it moves the shards from the hidden staging folder
into place, then writes the manifest, the card and, last, COMPLETED.
"""

from __future__ import annotations

import posixpath

from twhin_data import __version__
from twhin_data.core import files
from twhin_data.core.card import card_header, citation_section
from twhin_data.core.shard_stages import stage_name, stages_section

SPLITS = ("train", "validation")
#: Shards are written under OUTPUT/.partial/ and moved into place by the final step: a hidden folder,
#: so `datasets.load_dataset(OUTPUT)` never sees the shards of an unfinished run.
STAGING = ".partial"
DATASETS = ("mlm", "pairs")


def build_manifest(
    params: dict, tokenizer: dict, shards: list[dict], stats: dict, error_files: list[dict]
) -> dict:
    """The manifest: per shard, per split, per language counts, tokenizer, parameters, code version."""
    shards = sorted(shards, key=lambda s: s["file"])
    splits: dict[str, dict] = {}
    languages: dict[str, dict] = {}
    duplicates = 0
    for s in shards:
        entry = splits.setdefault(s["dataset"], {}).setdefault(
            s["split"], {"shards": 0, "rows": 0, "tweets": 0, "tokens": 0, "bytes": 0}
        )
        entry["shards"] += 1
        for k in ("rows", "tweets", "tokens", "bytes"):
            entry[k] += s[k]
        duplicates += s["duplicates"]
        for lang, (tweets, tokens) in s.get("langs", {}).items():
            lang_entry = languages.setdefault(lang, {"tweets": 0, "tokens": 0})
            lang_entry["tweets"] += tweets
            lang_entry["tokens"] += tokens
    counts = {_count_name(k): v for k, v in stats.items()}
    counts.update(duplicates=duplicates, errors=sum(e["rows"] for e in error_files))
    for dataset, by_split in splits.items():  # what the files hold, under the names of what they count
        for split, entry in by_split.items():
            counts.update({f"{dataset}_{k}_{split}": entry[k] for k in ("rows", "tweets", "tokens")})
    counts["tweets_out"] = sum(v["tweets"] for v in splits.get("mlm", {}).values())
    stages = stages_section(splits)
    counts["pairs_out"] = sum(v["rows"] for v in splits.get("pairs", {}).values())
    return {
        "format": "twhin-data shards v1",
        "code_version": __version__,
        "tokenizer": {
            "name": shareable_name(tokenizer["name"], params["tokenizer"]),
            **{k: tokenizer[k] for k in ("sha256", "vocab_size", "special_ids", "special_tokens")},
        },
        "dtype": "int32",
        "max_length": params["max_length"],
        "pad_id": tokenizer["special_ids"].get("pad"),
        "parameters": params,
        "splits": splits,
        **({"stages": stages} if stages else {}),
        "languages": dict(sorted(languages.items())),
        "counts": dict(sorted(counts.items())),
        "shards": [
            {k: s[k] for k in ("file", "dataset", "split", "rows", "tweets", "tokens", "bytes", "sha256")}
            for s in shards
        ],
    }


def shareable_name(name: str, flag: str) -> str:
    """The tokenizer as a shared dataset names it: a Hub name as given, a local file by its file name
    (its sha256 identifies it), never a path on the machine that wrote the shards."""
    if flag == "bundled":
        return "bundled (twhin_data/data/tokenizer.json)"
    return posixpath.basename(name.replace("\\", "/")) if "/" in name and (name.startswith(("/", ".")) or name.endswith(".json")) else name


def _count_name(key: str) -> str:
    """The tokenizer's per-split sizes count tweets before packing: say so (the manifest's
    ``mlm_rows_*`` are packed rows)."""
    for part in ("rows", "tokens"):
        if key.startswith(f"mlm_{part}_"):
            return f"mlm_tokenized_{'tweets' if part == 'rows' else 'tokens'}_{key.split('_')[-1]}"
    return key


def dataset_card(manifest: dict) -> str:
    """README.md whose YAML header (``configs:``) lets ``datasets.load_dataset(DIR)`` find the splits."""
    configs, sizes = [], {}
    mlm = manifest["splits"].get("mlm", {})
    groups = [("mlm", "default", "")]
    if any(stage_name(label) for label in mlm):  # two-stage shards: one config per stage
        groups = [("mlm", stage, f"{stage}_") for stage in ("stage1", "stage2")]
    for dataset, config, prefix in [*groups, ("pairs", "pairs", "")]:
        by_split = manifest["splits"].get(dataset, {})
        present = [s for s in SPLITS if f"{prefix}{s}" in by_split]
        if present:
            data_files = {split: f"{dataset}/{prefix}{split}-*.parquet" for split in present}
            configs.append({"config_name": config, "data_files": data_files})
            sizes[config] = {split: (by_split[f"{prefix}{split}"]["rows"], by_split[f"{prefix}{split}"]["bytes"]) for split in present}
    if configs and configs[0]["config_name"] != "default":
        configs[0]["default"] = True  # load_dataset(DIR) without a name: the first stage written
    rows = sum(e["rows"] for by_split in manifest["splits"].values() for e in by_split.values())
    lines = card_header(
        pretty_name="TwHIN-BERT training shards",
        configs=configs,
        languages=list(manifest["languages"]),
        rows=rows,
        task_categories=["fill-mask", "sentence-similarity"],
        sizes=sizes,
    )
    tok = manifest["tokenizer"]
    lines += [
        "",
        "# TwHIN-BERT training shards",
        "",
        f"Written by twhin-data {manifest['code_version']} (`twhin-data shard`). Token ids are int32, "
        f"at most {manifest['max_length']} per row, tokenizer `{tok['name']}` "
        f"(vocab {tok['vocab_size']}, sha256 {tok['sha256'][:16]}..., pad id {manifest['pad_id']}).",
        "",
        "| dataset | split | shards | rows | tweets | tokens |",
        "|---|---|---|---|---|---|",
    ]
    for dataset, by_split in manifest["splits"].items():
        for split, e in sorted(by_split.items()):
            lines.append(
                f"| {dataset} | {split} | {e['shards']} | {e['rows']} | {e['tweets']} | {e['tokens']} |"
            )
    lines += [
        "",
        "`mlm` rows pack whole tweets `<s> ... </s>` (`tweet_offsets` = each tweet's `<s>`); no masks are "
        "stored (mask dynamically). `pairs` rows hold both tweets' ids"
        + _batch_note(manifest.get("parameters") or {})
        + ". Per-shard counts and hashes: "
        '`manifest.json`. Load with `datasets.load_dataset("<this folder>")` '
        '(`name="pairs"` for pairs).',
        "",
        *citation_section(),
    ]
    return "\n".join(lines)


def _batch_note(parameters: dict) -> str:
    size = parameters.get("pair_batch_size")
    if not size:
        return ""
    return (
        f"; they come in contrastive batches of {size} (each file holds whole batches, the last one "
        f"maybe short: every {size} consecutive rows from a file's start name no tweet twice, so "
        "in-batch negatives are never the tweet itself; read them in order, shuffle whole batches only)"
    )


def write_manifest(
    _, *, output: str, params: dict, tokenizer: dict, shards: list, stats: dict, error_files: list
) -> dict:
    """Moves the shards from the staging folder into place, then writes manifest.json, README.md and,
    last, COMPLETED. Returns the manifest."""
    for dataset in DATASETS:
        files.publish(files.join(output, STAGING, dataset), files.join(output, dataset))
    files.remove(files.join(output, STAGING))
    manifest = build_manifest(params, tokenizer, shards, stats, error_files)
    files.write_json(files.join(output, "manifest.json"), manifest)
    files.write_bytes_atomic(files.join(output, "README.md"), dataset_card(manifest).encode("utf-8"))
    files.write_bytes_atomic(files.join(output, "COMPLETED"), b"")
    return manifest
