"""The prepare report: stats.json rendered as a self-contained HTML page (core.report)."""

from __future__ import annotations

from twhin_data.core.report import Report


def _bins(hist: list[dict]) -> list[tuple[float, float, int]]:
    return [(b["low"], b["high"] if b["high"] is not None else b["low"] * 2, b["count"]) for b in hist]


def _near_duplicates(report: Report, near: dict) -> None:
    """Counts of the MinHash step and the largest clusters (kept view, removed views)."""
    if not near.get("candidate_pairs") and not near.get("removed"):
        return
    report.heading("Near-duplicates (MinHash-LSH)")
    report.table(
        ["", "count"],
        [
            ["candidate pairs (shared LSH band)", near.get("candidate_pairs", 0)],
            ["verified pairs (Jaccard at or above the threshold)", near.get("verified_pairs", 0)],
            ["clusters", near.get("clusters", 0)],
            ["tweets removed (minhash_duplicate)", near.get("removed", 0)],
        ],
    )
    examples = near.get("examples") or {}
    if examples:
        report.paragraph("Largest clusters (match views): the kept tweet, then up to three removed ones.")
        rows = [
            [ex.get("size", ""), ex.get("kept", ""), ex.get("removed", "").replace("\n", " | ")]
            for _, ex in sorted(examples.items(), key=lambda kv: int(kv[0]))
        ]
        report.table(["tweets", "kept", "removed"], rows)


def render_report(stats: dict) -> str:
    """HTML for one prepare stats.json document (deterministic for the same stats)."""
    langs = stats["languages"]
    report = Report("twhin-data prepare report", subtitle=f"{stats['in']:,} tweets in, {stats['out']:,} out")
    report.heading("Accounting")
    rows = [["in", stats["in"]], ["out (corpus/)", stats["out"]]]
    rows += [[f"rejected: {k}", v] for k, v in stats["rejected"].items()]
    rows += [[f"duplicate: {k}", v] for k, v in stats["duplicates"].items()]
    rows += [["balanced (in = out + rejected + duplicates)", "yes" if stats["balanced"] else "NO"]]
    report.table(["", "tweets"], rows)
    drops = {**stats["rejected"], **stats["duplicates"]}
    if drops:
        report.bar_chart(dict(sorted(drops.items(), key=lambda kv: -kv[1])), title="Drop reasons")
    _near_duplicates(report, stats.get("near_dedup") or {})
    report.heading("Languages")
    before, after = langs["before_resampling"], langs["after_resampling"]
    if before:
        report.bar_chart(
            before,
            second=after,
            labels=("before resampling", "after resampling"),
            title="Tweets per language (after dedup), before and after resampling",
            log_scale=True,
        )
    resampling = stats.get("resampling") or {}
    mode = (stats.get("params") or {}).get("resample_mode", "materialize")
    if resampling.get("languages"):
        report.paragraph(
            f"Resampling q_l ~ n_l^{resampling.get('alpha')} to a target of {resampling.get('target'):,} "
            f"training tweets ({mode}); und and languages under {resampling.get('min_count')} tweets "
            "are kept whole. Rate: training copies per tweet (below 1: down-sampled by hashed ID; "
            "above 1: repeated). Resource class after resampling: high > 1e8, mid 1e7..1e8, low < 1e7."
        )
    plan = resampling.get("languages") or {}
    table = [
        [
            lang,
            langs["detected"].get(lang, 0),
            before.get(lang, 0),
            round(float(plan.get(lang, {}).get("q", 0.0)), 4),
            round(float(plan.get(lang, {}).get("rate", 1.0)), 4),
            langs.get("corpus_rows", {}).get(lang, 0),
            after.get(lang, 0),
            plan.get(lang, {}).get("resource_class", ""),
        ]
        for lang in langs["detected"]
    ]
    report.table(
        [
            "language",
            "detected",
            "after dedup (n)",
            "target share q",
            "rate",
            "corpus rows",
            "training copies",
            "class",
        ],
        table,
    )
    report.heading("Lengths")
    for name, title in (
        ("raw_chars", "Input text length (characters)"),
        ("out_chars", "Normalized length of kept tweets (characters)"),
    ):
        if name in stats["length_histograms"]:
            report.histogram(_bins(stats["length_histograms"][name]), title=title, x_label="characters")
    report.heading("Parameters")
    report.table(["flag", "value"], [[k, str(v)] for k, v in sorted(stats["params"].items())])
    timing = stats.get("timing") or {}
    if timing.get("elapsed_s") is not None:
        report.paragraph(f"Elapsed {timing['elapsed_s']} s ({timing.get('tweets_per_s')} tweets/s).")
    return report.render()

