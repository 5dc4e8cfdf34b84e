"""Language resampling as TwHIN-BERT: q_l ∝ n_l^alpha (alpha = 0.7), volume-preserving.

`resample_rates` turns the global per-language counts ``n_l`` (after dedup) into a rate per
language: the target share ``q_l = n_l^alpha / sum_k n_k^alpha`` of a target corpus size ``T``
(``--resample_target``, default the deduplicated corpus size), divided by ``n_l``. A rate below 1
down-samples the language (a tweet is kept when its hashed ID falls below the rate: the same
tweets on every run); a rate above 1 up-samples it by repetition: each tweet gets
``floor(rate)`` copies plus one more when its hashed ID falls below the fraction, written to the
corpus's ``copies`` column (corpus/ stays one row per tweet; shard writes each training copy at
its own hashed position, so the copies of a tweet pack into different rows).

Floor: ``und`` and every language with fewer than ``min_count`` tweets are kept whole, once; the
target minus their tweets is shared among the other languages. With ``mode="weights"`` nothing is
dropped or repeated (every ``copies`` is 1) and the rates are the per-language sampling weights a
trainer that samples on the fly applies (recorded in stats.json and the shard manifest).

Resource classes after resampling (the paper's appendix A): high > 1e8 tweets, mid 1e7..1e8,
low < 1e7.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from twhin_data.core.hashing import id_unit_interval
from twhin_data.text.langid import UNKNOWN
from twhin_data.transforms.prepare import stats as st

SALT = "resample"
MODES = ("materialize", "weights")


def resample_rates(
    counts: dict[str, int], *, alpha: float, min_count: int = 100, target: int | None = None
) -> dict[str, float]:
    """Rate per language: expected training copies per tweet (< 1 down-samples, > 1 repeats)."""
    rates = {lang: 1.0 for lang in counts}
    eligible = {k: v for k, v in counts.items() if k != UNKNOWN and v >= max(1, min_count)}
    if not eligible or (alpha >= 1.0 and target is None):
        return rates
    total = sum(counts.values()) if target is None else target
    budget = max(total - sum(v for k, v in counts.items() if k not in eligible), 0)
    z = sum(n**alpha for n in eligible.values())
    for lang, n in eligible.items():
        rates[lang] = budget * (n**alpha / z) / n
    return rates


def copies_of(ids: pa.Array | pa.ChunkedArray, rate: np.ndarray) -> np.ndarray:
    """Training copies per tweet: floor(rate), plus one when the hashed ID < frac(rate)."""
    if not len(rate):
        return np.zeros(0, np.int32)
    whole = np.floor(rate)
    extra = id_unit_interval(ids, SALT) < (rate - whole)
    return (whole + extra).astype(np.int32)


def resample_table(
    table: pa.Table, rates: dict[str, float], *, mode: str = "materialize"
) -> tuple[pa.Table, st.TableStats]:
    """Pure: the rows of `table` that resampling keeps, with their ``copies``, and the counts."""
    stats = st.TableStats()
    langs = table.column("lang").to_pylist()
    if mode == "weights":
        copies = np.ones(table.num_rows, np.int32)
    else:
        rate = np.array([rates.get(lang, 1.0) for lang in langs], dtype=np.float64)
        copies = copies_of(table.column("tweet_id"), rate)
    keep = copies > 0
    kept = table.filter(pa.array(keep)) if not keep.all() else table
    copies = copies[keep]
    kept = kept.append_column("copies", pa.array(copies, pa.int32()))
    stats.reject("resampled_out", table.num_rows - kept.num_rows)
    kept_langs = kept.column("lang").to_pylist()
    stats.counts("lang_after", kept_langs)
    stats.weighted_counts("lang_copies", kept_langs, copies.tolist())
    stats.add("repeated_copies", int(copies.sum()) - kept.num_rows)
    stats.length_hist("out_chars", kept.column("num_chars").to_numpy(zero_copy_only=False).tolist())
    return kept, stats


def rates_record(counts: dict, *, alpha: float, min_count: int, target: int | None) -> dict:
    """The resampling plan, merged into prepare's stats (numbers only: stats are merged by sum)."""
    counts = counts or {}
    rates = resample_rates(counts, alpha=alpha, min_count=min_count, target=target)
    eligible = {k: v for k, v in counts.items() if k != UNKNOWN and v >= max(1, min_count)}
    z = sum(n**alpha for n in eligible.values()) or 1.0
    languages = {
        lang: {
            "n": int(n),
            "q": round(n**alpha / z, 6) if lang in eligible else 0.0,
            "rate": round(rates[lang], 6),
        }
        for lang, n in sorted(counts.items())
    }
    return {
        "resampling": {
            "alpha": alpha,
            "min_count": min_count,
            "target": int(sum(counts.values()) if target is None else target),
            "languages": languages,
        }
    }
