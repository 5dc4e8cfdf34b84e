"""Language resampling q_l ∝ n_l^alpha (TwHIN-BERT used alpha = 0.7), deterministic by tweet ID.

Down-sampling only (a corpus row is never repeated): language l keeps each tweet with
probability ``r_l = (n_l / n_ref) ** (alpha - 1)``, where ``n_ref`` is the smallest count among
the languages with at least `min_count` tweets (``und`` excluded). Then kept counts are
``n_l * r_l ∝ n_l ** alpha``, the smallest eligible language is kept whole, and languages under
`min_count` (and ``und``) are kept whole. A tweet is kept when
``core.hashing.id_unit_interval(tweet_id, "resample") < r_l``: the same tweets on every run.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from twhin_data.core.hashing import id_unit_interval
from twhin_data.text.langid import UNKNOWN
from twhin_data.transforms import prepare_stats as st

SALT = "resample"
STATS_TAG = "stats"


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


class _ResampleFn(beam.DoFn):
    def __init__(self, alpha: float, min_count: int):
        self._alpha = alpha
        self._min_count = min_count
        self._out = Metrics.counter("prepare", "out")
        self._dropped = Metrics.counter("prepare", "rejected_resampled_out")

    def process(self, table: pa.Table, counts: dict) -> Iterable:
        rates = resample_rates(counts or {}, alpha=self._alpha, min_count=self._min_count)
        kept, stats = resample_table(table, rates)
        self._out.inc(kept.num_rows)
        self._dropped.inc(table.num_rows - kept.num_rows)
        if kept.num_rows:
            yield kept
        yield beam.pvalue.TaggedOutput(STATS_TAG, stats.to_dict())


def _lang_counts(table: pa.Table) -> dict[str, int]:
    return {v["values"]: v["counts"] for v in table.column("lang").value_counts().to_pylist()}


def _rates_record(counts: dict, alpha: float, min_count: int) -> dict:
    rates = resample_rates(counts or {}, alpha=alpha, min_count=min_count)
    return {
        "resampling": {
            "alpha": alpha,
            "min_count": min_count,
            "rates": {k: round(v, 6) for k, v in sorted(rates.items())},
        }
    }


class ResampleLanguages(beam.PTransform):
    """Corpus tables -> resampled corpus tables (main) and ``stats`` dicts.

    Args:
      alpha: exponent (1.0 = no resampling; the paper used 0.7).
      min_count: languages with fewer tweets are kept whole.
    """

    def __init__(self, *, alpha: float, min_count: int = 100):
        super().__init__()
        self._alpha = alpha
        self._min_count = min_count

    def expand(self, tables):
        counts = (
            tables
            | "LangCounts" >> beam.Map(_lang_counts)
            | "SumLangCounts" >> beam.CombineGlobally(st.merge)
        )
        result = tables | "Resample" >> beam.ParDo(
            _ResampleFn(self._alpha, self._min_count), counts=beam.pvalue.AsSingleton(counts)
        ).with_outputs(STATS_TAG, main="kept")
        rates = counts | "RatesRecord" >> beam.Map(
            _rates_record, alpha=self._alpha, min_count=self._min_count
        )
        return result.kept, (result[STATS_TAG], rates) | "ResampleStats" >> beam.Flatten()
