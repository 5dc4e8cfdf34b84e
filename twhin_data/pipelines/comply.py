"""`twhin-data comply`: deletions and protections reach every output of a `twhin-data run` folder.

Removals come from a list of IDs (``--remove_ids FILE``: one per line, the form every other source
reduces to), a re-hydration's ``unavailable/`` (``--unavailable DIR``: not_found and
not_authorized IDs) and an X batch compliance job for the stored tweets (``--compliance_job``:
created, uploaded, polled and downloaded through tweepy; resumable). The job rewrites, in place,
only the files that hold a removed tweet (transforms/comply/), then brings the manifests, dataset
cards and completion markers up to date and writes ``reports/comply/``. Rerun with the same
removals, it changes nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import posixpath
from dataclasses import dataclass
from datetime import UTC, datetime

import apache_beam as beam

from twhin_data.core import files
from twhin_data.core.errors import ConfigError, error_record
from twhin_data.core.report import stats_report, write_stats
from twhin_data.pipelines import benchmark_engagement, benchmark_hashtag
from twhin_data.pipelines import flags as opts
from twhin_data.pipelines.plan import Plan, RunSettings
from twhin_data.transforms.comply import job as compliance
from twhin_data.transforms.comply import manifests
from twhin_data.transforms.comply.removals import Removals, read_id_list, read_unavailable
from twhin_data.transforms.comply.steps import REMOVED_FILE, save_removed
from twhin_data.transforms.comply.transform import COMPLETED, ComplyOutputs, finish_folder, read_ledger
from twhin_data.transforms.comply.units import Unit, discover
from twhin_data.transforms.io import WriteErrors
from twhin_data.transforms.shard.manifest import dataset_card as shards_card
from twhin_data.xapi.auth import TokenSource
from twhin_data.xapi.compliance import ComplianceClient

NAME = "comply"
LOG = logging.getLogger("twhin_data.comply")
TMP = ".tmp_comply"
RUN_STATS = "run-stats.json"
LEDGER = "ledger"
CARDS = {"benchmarks/hashtag": benchmark_hashtag.render_card, "benchmarks/engagement": benchmark_engagement.render_card}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remove_ids", type=opts.csv_list, default=None, help="Files of tweet IDs to remove, one per line (comma-separated list of files).")
    parser.add_argument("--unavailable", default=None, help="A re-hydration's output folder (or its unavailable/): its not_found and not_authorized IDs are removed.")
    parser.add_argument("--compliance_job", action="store_true", help="Ask X: a batch compliance job for every stored tweet ID (resumed when one is pending).")
    parser.add_argument("--new_job", action="store_true", help="With --compliance_job: create a new job even when one is pending.")
    parser.add_argument("--api_base_url", default="https://api.x.com", help="X API base URL (a local mock in tests).")
    parser.add_argument("--bearer_token_file", default=None, help="File holding the bearer token (default: env X_BEARER_TOKEN).")
    parser.add_argument("--poll_s", type=opts.positive_float, default=30.0, help="Seconds between two polls of the compliance job.")
    parser.add_argument("--job_timeout_s", type=opts.positive_float, default=6 * 3600.0, help="Give up polling after this long (rerun to resume the same job).")
    parser.add_argument("--date", default=None, help="Date recorded in the manifests' compliance record, YYYY-MM-DD (default: today, UTC).")


def validate(args: argparse.Namespace) -> None:
    if not (args.remove_ids or args.unavailable or args.compliance_job):
        raise ConfigError("nothing to remove: pass --remove_ids FILE, --unavailable DIR or --compliance_job")
    if args.overwrite:
        raise ConfigError("comply rewrites the output in place: --overwrite does not apply")
    if args.new_job and not args.compliance_job:
        raise ConfigError("--new_job applies with --compliance_job only")
    if args.date is not None:
        try:
            datetime.strptime(args.date, "%Y-%m-%d")
        except ValueError:
            raise ConfigError(f"--date must be YYYY-MM-DD, got {args.date!r}") from None


@dataclass(frozen=True)
class ComplyPlan(Plan):
    units: tuple[Unit, ...]
    removed_path: str
    removals: dict  # {"ids": n, "by_reason": {...}, "rejected_lines": n}
    record: dict  # the compliance record the manifests get: date, sources
    rejected: tuple[dict, ...]


def _gather(args: argparse.Namespace) -> tuple[Removals, list[str]]:
    removals, sources = Removals(), []
    for path in args.remove_ids or []:
        if not files.exists(path):
            raise ConfigError(f"--remove_ids: {path} not found")
        read_id_list(path, removals)
        sources.append(f"remove_ids:{posixpath.basename(path.replace(os.sep, '/'))}")
    if args.unavailable:
        folder = args.unavailable
        if files.list_parquet(files.join(folder, "unavailable")):
            folder = files.join(folder, "unavailable")
        if not files.list_parquet(folder):
            raise ConfigError(f"--unavailable {args.unavailable}: no unavailable/ Parquet files there")
        read_unavailable(folder, removals)
        sources.append("unavailable")
    if args.compliance_job:
        token = TokenSource(file=args.bearer_token_file).read()
        client = ComplianceClient(args.api_base_url, token)
        try:
            job, result = compliance.run_job(
                args.output,
                client,
                new_job=args.new_job,
                poll_s=args.poll_s,
                timeout_s=args.job_timeout_s,
                name=f"twhin-data comply {datetime.now(UTC):%Y-%m-%d}",
                on_status=lambda j: LOG.info("comply: compliance job %s is %s", j["id"], j.get("status")),
            )
        finally:
            client.close()
        for reason, ids in sorted(compliance.removal_ids(result).items()):
            removals.add(ids, reason)
        if result.bad_lines:
            removals.rejected.append({"line": 0, "value": f"{result.bad_lines} unreadable result lines", "source": f"compliance job {job['id']}"})
        sources.append(f"compliance_job:{job['id']}")
    return removals, sources


def plan(args: argparse.Namespace, run: RunSettings) -> ComplyPlan:
    if not files.exists(args.output):
        raise ConfigError(f"--output {args.output} does not exist: point it at a `twhin-data run` output")
    removals, sources = _gather(args)
    units = tuple(u for u in discover(args.output) if not u.rel.startswith("errors/comply/"))
    removed_path = files.join(args.output, TMP, REMOVED_FILE)
    save_removed(removed_path, removals.ids)
    record = {"date": args.date or f"{datetime.now(UTC):%Y-%m-%d}", "sources": sources, "removed_ids": int(len(removals.ids))}
    summary = {"ids": int(len(removals.ids)), "by_reason": dict(sorted(removals.reasons.items())), "rejected_lines": len(removals.rejected)}
    return ComplyPlan(args, run, units, removed_path, summary, record, tuple(removals.rejected))


def prepare_output(plan: ComplyPlan) -> None:
    """Nothing to clear: comply rewrites in place, and marks each folder it touches while it does."""


def progress_total(plan: ComplyPlan) -> tuple[int, str]:
    return len(plan.units), "files"


def _read_json(path: str) -> dict | None:
    return json.loads(files.read_bytes(path)) if files.exists(path) else None


def finalize(_infos: list[dict], *, plan: ComplyPlan) -> dict:
    """The last step of the job: manifests and cards updated, the report written (only when a file
    changed: a rerun with the same removals changes nothing), then the folders marked complete.

    The infos come from the ledger, not from this run's elements: after a run that died half way,
    the rerun also accounts for (and finishes the folders of) the files the first one rewrote."""
    out = plan.output
    infos = read_ledger(files.join(out, TMP, LEDGER))
    shards = _read_json(files.join(out, "shards", "manifest.json"))
    updated = manifests.update_shards(shards, infos, plan.record) if shards else None
    if updated is not None:
        files.write_json(files.join(out, "shards", "manifest.json"), updated)
        files.write_bytes_atomic(files.join(out, "shards", "README.md"), shards_card(updated).encode("utf-8"))
    for root, render in CARDS.items():
        manifest = _read_json(files.join(out, root, "manifest.json"))
        updated = manifests.update_benchmark(manifest, infos, root, plan.record) if manifest else None
        if updated is not None:
            files.write_json(files.join(out, root, "manifest.json"), updated)
            files.write_bytes_atomic(files.join(out, root, "README.md"), render(updated).encode("utf-8"))
    stats = manifests.report(plan.record, plan.removals, sorted(infos, key=lambda i: i["rel"]))
    if infos:
        write_stats(out, NAME, stats, lambda s: stats_report("comply report", s))
    for folder in sorted({i["folder"] for i in infos}):
        finish_folder(folder)
    if shards is not None and not files.exists(files.join(out, "shards", COMPLETED)):
        files.write_bytes_atomic(files.join(out, "shards", COMPLETED), b"")
    files.remove(plan.removed_path)  # the removed IDs must not stay under the output
    files.remove(files.join(out, TMP, LEDGER))
    files.write_json(files.join(out, TMP, RUN_STATS), stats)
    return stats


def build(p: beam.Pipeline, plan: ComplyPlan) -> None:
    ledger = files.join(plan.output, TMP, LEDGER)
    infos = p | "Comply" >> ComplyOutputs(list(plan.units), plan.removed_path, ledger)
    _ = infos | "AllInfos" >> beam.combiners.ToList() | "Finalize" >> beam.Map(finalize, plan=plan)
    rejected = [error_record(NAME, r["value"], "invalid_id", "not a tweet ID (1-19 decimal digits)", f"{r['source']}:{r['line']}") for r in plan.rejected]
    if rejected:
        _ = p | "Rejected" >> beam.Create(rejected) | "WriteErrors" >> WriteErrors(plan.output, NAME)


def finish(result, plan: ComplyPlan, elapsed_s: float) -> dict:
    if plan.args.compliance_job:
        compliance.mark_applied(plan.output)
    stats = _read_json(files.join(plan.output, TMP, RUN_STATS)) or {}
    files.remove(files.join(plan.output, TMP))
    report = files.join(plan.output, "reports", NAME, "report.html")
    return {
        "stage": NAME,
        "removed_ids": plan.removals["ids"],
        "by_reason": plan.removals["by_reason"],
        "rejected_lines": plan.removals["rejected_lines"],
        "files_rewritten": stats.get("files_rewritten", 0),
        "rows_removed": stats.get("rows_removed", 0),
        "by_output": {k: v["rows_removed"] for k, v in (stats.get("by_output") or {}).items()},
        "output_changed": bool(stats.get("files_rewritten")),
        "report": report if stats.get("files_rewritten") else None,
        "elapsed_s": round(elapsed_s, 2),
    }


def rejections(summary: dict) -> None:
    """Rejected lines of a removal list are reported, never a reason to fail the run."""
    return None
