"""Language resampling q_l ∝ n_l^alpha (TwHIN-BERT used alpha = 0.7), deterministic by tweet ID.

Down-sampling only (a corpus row is never repeated): language l keeps each tweet with
probability ``r_l = (n_l / n_ref) ** (alpha - 1)``, where ``n_ref`` is the smallest count among
the languages with at least `min_count` tweets (``und`` excluded). Then kept counts are
``n_l * r_l ∝ n_l ** alpha``, the smallest eligible language is kept whole, and languages under
`min_count` (and ``und``) are kept whole. A tweet is kept when
``core.hashing.id_unit_interval(tweet_id, "resample") < r_l``: the same tweets on every run.
The counts ``n_l`` are global (after dedup); prepare sums them from the dedup step and passes
the rates to each part writer (transforms/prepare/transform.py).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from twhin_data.core.hashing import id_unit_interval
from twhin_data.text.langid import UNKNOWN
from twhin_data.transforms.prepare import stats as st

SALT = "resample"


def resample_rates(counts: dict[str, int], *, alpha: float, min_count: int = 100) -> dict[str, float]:
    """Keep probability per language (1.0 for those not resampled)."""
    rates = {lang: 1.0 for lang in counts}
    if alpha >= 1.0:
        return rates
    eligible = {k: v for k, v in counts.items() if k != UNKNOWN and v >= max(1, min_count)}
    if not eligible:
        return rates
    n_ref = min(eligible.values())
    for lang, n in eligible.items():
        rates[lang] = min(1.0, (n / n_ref) ** (alpha - 1.0))
    return rates


def resample_table(table: pa.Table, rates: dict[str, float]) -> tuple[pa.Table, st.TableStats]:
    """Pure: the rows of `table` that resampling keeps, and the counts."""
    stats = st.TableStats()
    langs = table.column("lang").to_pylist()
    rate = np.array([rates.get(lang, 1.0) for lang in langs], dtype=np.float64)
    keep = id_unit_interval(table.column("tweet_id"), SALT) < rate if table.num_rows else np.zeros(0, bool)
    kept = table.filter(pa.array(keep)) if not keep.all() else table
    stats.reject("resampled_out", table.num_rows - kept.num_rows)
    stats.counts("lang_after", kept.column("lang").to_pylist())
    stats.length_hist("out_chars", kept.column("num_chars").to_numpy(zero_copy_only=False).tolist())
    return kept, stats


def rates_record(counts: dict, alpha: float, min_count: int) -> dict:
    rates = resample_rates(counts or {}, alpha=alpha, min_count=min_count)
    return {
        "resampling": {
            "alpha": alpha,
            "min_count": min_count,
            "rates": {k: round(v, 6) for k, v in sorted(rates.items())},
        }
    }
