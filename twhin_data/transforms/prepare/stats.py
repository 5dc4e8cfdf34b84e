"""Prepare statistics: per-table partial counts, their merge, and the final stats.json layout.

Partial stats are plain dicts of ints / dicts of ints / lists of ints, merged by summing, so the
result does not depend on how the runner split the work. Keys:

    in                          rows read
    rejected.<reason>           rows dropped (errors, filters, resampling)
    duplicates.<reason>         rows dropped by dedup (duplicate_text, duplicate_id, retweet_duplicate)
    lang_detected.<lang>        language of every row that passed the text filters
    lang_before.<lang>          after dedup, before resampling
    lang_after.<lang>           written to corpus/ (one row per tweet)
    lang_copies.<lang>          training copies of those rows (resampling's repetition included)
    repeated_copies             copies beyond the first (up-sampled languages)
    hist.raw_chars / hist.out_chars   length histograms (LENGTH_EDGES bins, last one open)
    retweets_as_original        retweets kept under their original's ID
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

#: Bin edges (characters) of the length histograms; the last bin is [1000, inf).
LENGTH_EDGES = (0, 10, 20, 40, 60, 80, 100, 140, 200, 280, 400, 1000)
DUPLICATE_REASONS = ("duplicate_text", "near_duplicate", "duplicate_id", "retweet_duplicate")


class TableStats:
    """Accumulates one table's (or one bucket's) counts."""

    def __init__(self) -> None:
        self._d: dict = {}

    def add(self, key: str, n: int = 1) -> None:
        if n:
            self._d[key] = self._d.get(key, 0) + int(n)

    def _add_in(self, group: str, key: str, n: int) -> None:
        if n:
            sub = self._d.setdefault(group, {})
            sub[key] = sub.get(key, 0) + int(n)

    def reject(self, reason: str, n: int = 1) -> None:
        self._add_in("rejected", reason, n)

    def duplicate(self, reason: str, n: int = 1) -> None:
        self._add_in("duplicates", reason, n)

    def counts(self, group: str, values: Iterable[str]) -> None:
        for key, n in Counter(values).items():
            self._add_in(group, key, n)

    def weighted_counts(self, group: str, values: Iterable[str], weights: Iterable[int]) -> None:
        """Adds `weights[i]` under `values[i]` (e.g. training copies per language)."""
        totals: Counter = Counter()
        for key, weight in zip(values, weights, strict=True):
            totals[key] += weight
        for key, n in totals.items():
            self._add_in(group, key, n)

    def uncount(self, group: str, values: Iterable[str]) -> None:
        """Takes rows back out of a count group (rows dropped after they were counted)."""
        for key, n in Counter(values).items():
            self._add_in(group, key, -n)

    def length_hist(self, name: str, lengths: Sequence[int]) -> None:
        if len(lengths):
            counts = np.bincount(
                np.searchsorted(LENGTH_EDGES, np.asarray(lengths), side="right") - 1,
                minlength=len(LENGTH_EDGES),
            )
            hist = self._d.setdefault("hist", {}).setdefault(name, [0] * len(LENGTH_EDGES))
            for i, c in enumerate(counts.tolist()):
                hist[i] += c

    def to_dict(self) -> dict:
        return self._d


def merge(parts: Iterable[dict]) -> dict:
    """Sums partial stats dicts (ints, nested dicts, equal-length int lists)."""
    out: dict = {}
    for part in parts:
        _merge_into(out, part)
    return out


def _merge_into(out: dict, part: dict) -> None:
    for key, value in part.items():
        if isinstance(value, dict):
            _merge_into(out.setdefault(key, {}), value)
        elif isinstance(value, str):  # example texts: one producer (near_dedup.components)
            out[key] = value
        elif isinstance(value, list):
            cur = out.setdefault(key, [0] * len(value))
            for i, v in enumerate(value):
                cur[i] += v
        else:
            out[key] = out.get(key, 0) + value


def _sorted_counts(counts: dict | None) -> dict:
    return dict(sorted((counts or {}).items(), key=lambda kv: (-kv[1], kv[0])))


def histogram_bins(counts: Sequence[int]) -> list[dict]:
    bins = []
    for i, c in enumerate(counts):
        high = LENGTH_EDGES[i + 1] if i + 1 < len(LENGTH_EDGES) else None
        bins.append({"low": LENGTH_EDGES[i], "high": high, "count": c})
    return bins


def resource_class(n: int) -> str:
    return "high" if n > 100_000_000 else "mid" if n >= 10_000_000 else "low"


def resampling_record(resampling: dict, kept: dict, copies: dict) -> dict:
    """Adds what was written per language (tweets kept, copies, repeats, resource class)."""
    if not resampling:
        return {}
    out = dict(resampling)
    languages = {}
    for lang, row in sorted((resampling.get("languages") or {}).items()):
        n_copies = int(copies.get(lang, 0))
        languages[lang] = {
            **row,
            "kept": int(kept.get(lang, 0)),
            "copies": n_copies,
            "repeated": n_copies - int(kept.get(lang, 0)),
            "resource_class": resource_class(n_copies),
        }
    out["languages"] = languages
    return out


def finalize(merged: dict, *, params: dict, elapsed_s: float | None) -> dict:
    """The stats.json document; checks in == out + rejected + duplicates."""
    rejected = dict(sorted((merged.get("rejected") or {}).items()))
    duplicates = dict(sorted((merged.get("duplicates") or {}).items()))
    n_in = int(merged.get("in", 0))
    n_out = int(sum((merged.get("lang_after") or {}).values()))
    accounted = n_out + sum(rejected.values()) + sum(duplicates.values())
    hist = merged.get("hist") or {}
    return {
        "stage": "prepare",
        "in": n_in,
        "out": n_out,
        "rejected": rejected,
        "rejected_total": sum(rejected.values()),
        "duplicates": duplicates,
        "duplicates_total": sum(duplicates.values()),
        "balanced": accounted == n_in,
        "retweets_as_original": int(merged.get("retweets_as_original", 0)),
        "languages": {
            "detected": _sorted_counts(merged.get("lang_detected")),
            "before_resampling": _sorted_counts(merged.get("lang_before")),
            # What training sees: the copies of every kept tweet (repetition included).
            "after_resampling": _sorted_counts(merged.get("lang_copies") or merged.get("lang_after")),
            "corpus_rows": _sorted_counts(merged.get("lang_after")),
        },
        "contamination": _sorted_counts(merged.get("contamination")),
        "near_dedup": {**(merged.get("near_dedup") or {}), "examples": merged.get("near_examples") or {}},
        "out_copies": int(sum((merged.get("lang_copies") or merged.get("lang_after") or {}).values())),
        "resampling": resampling_record(
            merged.get("resampling") or {}, merged.get("lang_after") or {}, merged.get("lang_copies") or {}
        ),
        "length_histograms": {name: histogram_bins(counts) for name, counts in sorted(hist.items())},
        "params": params,
        "timing": {
            "elapsed_s": round(elapsed_s, 3) if elapsed_s is not None else None,
            "tweets_per_s": round(n_in / elapsed_s, 1) if elapsed_s else None,
        },
    }


def counter_view(stats: dict) -> dict[str, int]:
    """The Beam counters of one partial stats dict: in, out, rejected, duplicates."""
    return {
        "in": int(stats.get("in", 0)),
        "out": int(sum((stats.get("lang_after") or {}).values())),
        "rejected": int(sum((stats.get("rejected") or {}).values())),
        "duplicates": int(sum((stats.get("duplicates") or {}).values())),
    }
