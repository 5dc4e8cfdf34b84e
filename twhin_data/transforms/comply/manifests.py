"""Manifests and the report after a comply run (pure: dicts in, dicts out).

Each manifest that lists a rewritten file gets that file's new rows, sizes and sha256, its totals
recomputed, ``version`` one higher and a ``compliance`` record (date, source, counts). A manifest
none of whose files changed is left as it is.
"""

from __future__ import annotations

from collections import defaultdict

from twhin_data.core.shard_stages import stages_section

SPLITS = ("train", "validation")


def compliance_record(run: dict, infos: list[dict], prefix: str) -> dict:
    """What one comply run did to the files under `prefix` (relative to the output)."""
    mine = [i for i in infos if i["rel"].startswith(prefix)]
    return {
        **run,
        "files_rewritten": len(mine),
        "rows_removed": sum(i["rows_before"] - i["rows_after"] for i in mine),
    }


def _bump(manifest: dict, record: dict) -> None:
    manifest["version"] = int(manifest.get("version", 1)) + 1
    manifest.setdefault("compliance", []).append({"version": manifest["version"], **record})


def _refreshed(entries: list[dict], key: str, changed: dict[str, dict], extra: tuple[str, ...]) -> list[dict]:
    """Manifest entries with the rows, bytes, sha256 (and `extra` fields) of the rewritten files."""
    out = []
    for entry in entries:
        info = changed.get(entry[key])
        if info is not None:
            entry = {**entry, "rows": info["rows_after"], "bytes": info["bytes"], "sha256": info["sha256"]}
            entry.update({field: info[field] for field in extra})
        out.append(entry)
    return out


def update_shards(manifest: dict, infos: list[dict], run: dict) -> dict | None:
    """shards/manifest.json after the rewrites of ``shards/...`` files; None when none changed."""
    changed = {i["rel"][len("shards/") :]: i for i in infos if i["rel"].startswith("shards/") and i["kind"] in ("mlm", "pair_shards")}
    if not changed:
        return None
    out = dict(manifest)
    out["shards"] = shards = _refreshed(manifest["shards"], "file", changed, ("tweets", "tokens"))
    splits: dict = defaultdict(dict)
    for entry in shards:
        agg = splits[entry["dataset"]].setdefault(entry["split"], {"shards": 0, "rows": 0, "tweets": 0, "tokens": 0, "bytes": 0})
        agg["shards"] += 1
        for key in ("rows", "tweets", "tokens", "bytes"):
            agg[key] += entry[key]
    out["splits"] = {d: dict(sorted(s.items())) for d, s in sorted(splits.items())}
    if "stages" in manifest:
        out["stages"] = stages_section(out["splits"])
    counts = dict(manifest.get("counts", {}))
    for dataset, by_split in out["splits"].items():
        for split, agg in by_split.items():
            counts.update({f"{dataset}_{k}_{split}": agg[k] for k in ("rows", "tweets", "tokens")})
    counts["tweets_out"] = sum(a["tweets"] for a in out["splits"].get("mlm", {}).values())
    counts["pairs_out"] = sum(a["rows"] for a in out["splits"].get("pairs", {}).values())
    counts["compliance_tweets_removed"] = counts.get("compliance_tweets_removed", 0) + sum(
        i.get("tweets_removed", 0) for i in changed.values()
    )
    out["counts"] = dict(sorted(counts.items()))
    languages = {k: dict(v) for k, v in manifest.get("languages", {}).items()}
    for info in changed.values():
        for lang, (tweets, tokens) in info.get("langs_removed", {}).items():
            entry = languages.setdefault(lang, {"tweets": 0, "tokens": 0})
            entry["tweets"] -= tweets
            entry["tokens"] -= tokens
    out["languages"] = dict(sorted(languages.items()))
    _bump(out, compliance_record(run, infos, "shards/"))
    return out


def update_benchmark(manifest: dict, infos: list[dict], root: str, run: dict) -> dict | None:
    """A benchmark's manifest.json after its files' rewrites (``root``: e.g. benchmarks/hashtag)."""
    changed = {i["manifest_path"]: i for i in infos if i["rel"].startswith(root + "/") and "manifest_path" in i}
    if not changed:
        return None
    out = dict(manifest)
    out["files"] = _refreshed(manifest["files"], "path", changed, ())
    _bump(out, compliance_record(run, infos, root + "/"))
    return out


def report(run: dict, removals: dict, infos: list[dict]) -> dict:
    """reports/comply/stats.json: removals by reason, rows removed by output, language loss, and how
    much each benchmark split shrank."""
    by_output: dict[str, dict] = {}
    for info in infos:
        name = info["kind"] if info["kind"] not in ("hashtag", "engagement") else f"benchmark_{info['kind']}"
        entry = by_output.setdefault(name, {"files_rewritten": 0, "rows_before": 0, "rows_removed": 0})
        entry["files_rewritten"] += 1
        entry["rows_before"] += info["rows_before"]
        entry["rows_removed"] += info["rows_before"] - info["rows_after"]
    languages: dict[str, dict] = defaultdict(lambda: {"corpus_rows": 0, "mlm_tweets": 0, "mlm_tokens": 0})
    for info in infos:
        for lang, value in info.get("langs_removed", {}).items():
            if info["kind"] == "corpus":
                languages[lang]["corpus_rows"] += value
            else:
                languages[lang]["mlm_tweets"] += value[0]
                languages[lang]["mlm_tokens"] += value[1]
    benchmarks: dict[str, dict] = {}
    for info in infos:
        if info["kind"] in ("hashtag", "engagement") and info["name"] != "labels":
            key = f"{info['kind']}/{info['lang']}/{info['name']}"
            shrink = {"rows_before": info["rows_before"], "rows_after": info["rows_after"]}
            shrink["share_removed"] = round(1 - info["rows_after"] / info["rows_before"], 6) if info["rows_before"] else 0.0
            for extra in ("negatives_replaced", "short_candidate_lists"):
                if extra in info:
                    shrink[extra] = info[extra]
            benchmarks[key] = shrink
    return {
        "stage": "comply",
        **run,
        "removals": removals,
        "files_rewritten": len(infos),
        "rows_removed": sum(e["rows_removed"] for e in by_output.values()),
        "by_output": dict(sorted(by_output.items())),
        "languages_lost": dict(sorted(languages.items())),
        "benchmark_splits": dict(sorted(benchmarks.items())),
    }
