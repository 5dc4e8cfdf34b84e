"""stats.json and report.html of the graph stage, built from the run's "graph" counters."""

from __future__ import annotations

from twhin_data.core.report import Report
from twhin_data.schemas.graph import ENGAGEMENT_TYPES

REJECT_PREFIX = "rejected_"


def _degree_buckets(counters: dict[str, int], side: str) -> list[dict[str, int]]:
    """Power-of-two degree buckets as [{low, high, count}] in degree order."""
    prefix = f"degree_{side}_"
    out = []
    # Counter names are "degree_<side>_NN:low-high" (NN = log2 bucket, zero-padded so they sort).
    for name in sorted(k for k in counters if k.startswith(prefix)):
        low, _, high = name.split(":", 1)[1].partition("-")
        out.append({"low": int(low), "high": int(high or low), "count": counters[name]})
    return out


def build_stats(counters: dict[str, int], *, params: dict, rounds: int, extra: dict | None = None) -> dict:
    """The stats.json document: accounting, per-type edges before/after each filter, degrees, pairs."""
    c = counters
    rejected = {k[len(REJECT_PREFIX) :]: v for k, v in sorted(c.items()) if k.startswith(REJECT_PREFIX)}
    filtered = {
        "type": c.get("filtered_type", 0),
        "time_window": c.get("filtered_time_window", 0),
        "max_per_user": c.get("filtered_max_per_user", 0),
        "min_per_tweet": c.get("filtered_min_per_tweet", 0),
        "benchmark": c.get("filtered_benchmark", 0),
    }
    rows_in, out, dups = c.get("rows_in", 0), c.get("edges_out", 0), c.get("duplicates", 0)
    accounted = out + sum(rejected.values()) + sum(filtered.values()) + dups
    by_type = {
        t: {
            "valid": c.get(f"valid_{t}", 0),
            "after_type_and_time_window": c.get(f"in_window_{t}", 0),
            "duplicates": c.get(f"duplicates_{t}", 0),
            "after_dedupe": c.get(f"deduped_{t}", 0),
            "filtered_max_per_user": c.get(f"filtered_max_per_user_{t}", 0),
            "filtered_min_per_tweet": c.get(f"filtered_min_per_tweet_{t}", 0),
            "final": c.get(f"edges_out_{t}", 0),
        }
        for t in ENGAGEMENT_TYPES
    }
    dropped = [c.get(f"tweets_dropped_round_{r}", 0) for r in range(1, rounds + 1)]
    pairs = {
        "cooccurrence": c.get("pairs_cooccurrence", 0),
        "embeddings": c.get("pairs_embeddings", 0),
        "cooccurrence_candidates": c.get("pairs_candidates", 0),
        "cooccurrence_generated": c.get("pairs_generated", 0),
        "dropped_by_fanout_cap": c.get("pairs_dropped_fanout_cap", 0),
        "users_fanout_capped": c.get("users_fanout_capped", 0),
        "max_fanout_per_user": params.get("max_fanout_per_user"),
        "edges_without_ts_not_paired": c.get("pair_edges_no_ts", 0),
    }
    stats = {
        "input": {
            "rows_in": rows_in,
            "log_files_read": c.get("files_read", 0),
            "files_skipped_unknown_type": c.get("files_skipped", 0),
            "derived_rows": c.get("derived_rows", 0),
            "remapped_to_kept": c.get("remapped_to_kept", 0),
        },
        "rejected": rejected,
        "filtered": filtered,
        "filtered_no_ts_in_window": c.get("filtered_no_ts", 0),
        "duplicates": dups,
        "edges": out,
        "accounting": {
            "in": rows_in,
            "out": out,
            "rejected": sum(rejected.values()),
            "filtered": sum(filtered.values()),
            "duplicates": dups,
            "balanced": rows_in == accounted,
        },
        "edges_by_type": by_type,
        "filter_rounds": {
            "rounds": rounds,
            "tweets_dropped_per_round": dropped,
            "stable": not dropped or dropped[-1] == 0,
        },
        "users": c.get("users", 0),
        "tweets": c.get("tweets", 0),
        "degrees": {"user": _degree_buckets(c, "user"), "tweet": _degree_buckets(c, "tweet")},
        "pairs": pairs,
        "parameters": params,
    }
    if extra:
        stats.update(extra)
    return stats


def render_html(stats: dict) -> str:
    """A self-contained HTML page: accounting, per-type filters, degree distributions, pairs."""
    report = Report("graph report", subtitle="engagement graph and socially-similar pairs (twhin-data graph)")
    acc = stats["accounting"]
    report.heading("Accounting")
    report.table(
        ["in", "edges out", "rejected", "filtered", "duplicates", "balanced"],
        [[acc["in"], acc["out"], acc["rejected"], acc["filtered"], acc["duplicates"], str(acc["balanced"])]],
    )
    report.table(
        ["reason", "rows"],
        [[k, v] for k, v in stats["rejected"].items()] or [["(none)", 0]],
        title="Rejected",
    )
    report.table(["filter", "rows"], [[k, v] for k, v in stats["filtered"].items()], title="Filtered")
    report.heading("Edges per type")
    steps = ["valid", "after_type_and_time_window", "after_dedupe", "final"]
    rows = [[t] + [v[s] for s in steps] for t, v in stats["edges_by_type"].items()]
    report.table(["type"] + steps, rows)
    report.bar_chart(
        {t: v["after_dedupe"] for t, v in stats["edges_by_type"].items()},
        second={t: v["final"] for t, v in stats["edges_by_type"].items()},
        labels=("after dedupe", "final"),
        title="Edges per type, before and after the degree filters",
    )
    rounds = stats["filter_rounds"]
    report.paragraph(
        f"{rounds['rounds']} filter round(s); tweets dropped per round: {rounds['tweets_dropped_per_round']}; "
        f"stable: {rounds['stable']}."
    )
    report.heading("Degree distributions")
    report.paragraph(f"{stats['users']:,} users, {stats['tweets']:,} tweets, {stats['edges']:,} edges.")
    for side, label in (
        ("user", "User degree (edges per user)"),
        ("tweet", "Tweet degree (edges per tweet)"),
    ):
        bins = [(b["low"], b["high"] + 1, b["count"]) for b in stats["degrees"][side]]
        report.histogram(bins, title=label + ", power-of-two buckets", x_label="degree (bucket start)")
    report.heading("Pairs")
    report.table(["measure", "value"], [[k, "" if v is None else v] for k, v in stats["pairs"].items()])
    return report.render()
