"""One X batch compliance job for the tweets an output stores, resumable across runs.

The job's state lives in ``OUT/reports/comply/job.json`` (its ID, name and status; never a tweet
ID, never the token): a run killed while it polls finds the job there and polls it again instead
of creating another. A job whose result was applied is done: the next run creates a new one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from twhin_data.core import files
from twhin_data.core.errors import ConfigError
from twhin_data.core.ids import ID_RE
from twhin_data.xapi.compliance import REMOVING_ACTIONS, ComplianceClient, Download

LOG = logging.getLogger("twhin_data.comply")
STATE = "job.json"


def stored_ids(output: str) -> list[str]:
    """Every tweet ID the output stores (tweets/ and corpus/), sorted numerically."""
    ids: set[str] = set()
    for folder in ("tweets", "corpus"):
        for path in files.list_parquet(files.join(output, folder)):
            ids.update(i for i in files.read_parquet_table(path, columns=["tweet_id"]).column("tweet_id").to_pylist() if i and ID_RE.match(i))
    return sorted(ids, key=int)


def state_path(output: str) -> str:
    return files.join(output, "reports", "comply", STATE)


def read_state(output: str) -> dict | None:
    path = state_path(output)
    return json.loads(files.read_bytes(path)) if files.exists(path) else None


def write_state(output: str, state: dict) -> None:
    files.write_json(state_path(output), state)


def run_job(
    output: str,
    client: ComplianceClient,
    *,
    new_job: bool,
    poll_s: float,
    timeout_s: float,
    name: str,
    on_status: Callable[[dict], None] = lambda job: None,
) -> tuple[dict, Download]:
    """Creates (or resumes) the job, uploads the stored IDs, waits, downloads; returns (job, result)."""
    state = read_state(output)
    job = None
    if state and not new_job and not state.get("applied"):
        job = client.get(state["job_id"])
        LOG.info("comply: resuming compliance job %s (%s)", job["id"], job.get("status"))
        if job.get("status") in ("failed", "expired"):
            raise ConfigError(f"compliance job {job['id']} is {job['status']}: rerun with --new_job to start another")
    if job is None:
        job = client.create(name)
        LOG.info("comply: created compliance job %s", job["id"])
        write_state(output, {"job_id": job["id"], "name": name, "status": job.get("status"), "uploaded": 0})
    if job.get("status") == "created":
        ids = stored_ids(output)
        if not ids:
            raise ConfigError(f"{output} stores no tweets (tweets/ and corpus/ are empty): nothing to check")
        sent = client.upload(job, ids)
        LOG.info("comply: uploaded %d stored tweet IDs to job %s", sent, job["id"])
        write_state(output, {"job_id": job["id"], "name": name, "status": "in_progress", "uploaded": sent})
    job = client.wait(job["id"], poll_s=poll_s, timeout_s=timeout_s, on_status=on_status)
    result = client.download(job)
    state = read_state(output) or {}
    write_state(output, {**state, "job_id": job["id"], "name": name, "status": job["status"]})
    return job, result


def mark_applied(output: str) -> None:
    state = read_state(output)
    if state is not None:
        write_state(output, {**state, "applied": True})


def removal_ids(result: Download) -> dict[str, list[str]]:
    """{reason: IDs} of the events that ask for a deletion (scrub_geo asks for none here)."""
    out: dict[str, list[str]] = {}
    for event in result.events:
        if event.action in REMOVING_ACTIONS:
            out.setdefault(event.reason, []).append(event.tweet_id)
    return out
