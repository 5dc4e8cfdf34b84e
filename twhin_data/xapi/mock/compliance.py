"""Batch compliance jobs in the mock X API: the real endpoints and shapes, served on 127.0.0.1.

- ``POST /2/compliance/jobs`` ``{"type": "tweets", "name": ..., "resumable": ...}`` -> ``data``:
  ``id, type, name, resumable, upload_url, upload_expires_at, download_url, download_expires_at,
  created_at, status`` (one active job per type: a second one gets a 409 problem);
- ``GET /2/compliance/jobs/:id`` and ``GET /2/compliance/jobs?type=tweets[&status=...]``;
- ``PUT <upload_url>``: the IDs, one per line (the real one is a signed Cloud Storage URL);
- ``GET <download_url>``: JSONL, one event per uploaded ID that has one, e.g.
  ``{"id": "...", "action": "delete", "created_at": "...", "redacted_at": "...", "reason": "deleted"}``.

A job is ``created`` until its upload, ``in_progress`` for `delay_s` after it, then ``complete``
(or ``failed`` when the mock is told to fail jobs). Events come from `events` ({id: reason}) or,
for IDs not in it, from the mock's statuses: deleted, protected and suspended tweets.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

#: Mock tweet statuses that a compliance job reports, and the reason it gives.
STATUS_REASONS = {"deleted": "deleted", "protected": "protected", "suspended": "suspended"}
REASONS = ("deleted", "protected", "suspended", "deactivated", "scrub_geo", "bounced")
ACTIVE = ("created", "in_progress")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _problem(status: int, title: str, detail: str) -> dict:
    return {"title": title, "detail": detail, "type": "about:blank", "status": status}


class ComplianceJobs:
    """The compliance-job state of one mock server (thread-safe)."""

    def __init__(self, *, statuses: dict[str, str], events: dict[str, str] | None, delay_s: float, fail: bool):
        self.statuses = statuses
        self.events = dict(events or {})
        self.delay_s = float(delay_s)
        self.fail = fail
        self.jobs: dict[str, dict] = {}
        self.uploads: dict[str, list[str]] = {}
        self.created = 0  # jobs created (tests check that a resumed run creates none)
        self._lock = threading.Lock()

    def _status(self, job: dict) -> str:
        uploaded = job.get("_uploaded_at")
        if uploaded is None:
            return "created"
        if time.time() - uploaded < self.delay_s:
            return "in_progress"
        return "failed" if self.fail else "complete"

    def _public(self, job: dict) -> dict:
        return {**{k: v for k, v in job.items() if not k.startswith("_")}, "status": self._status(job)}

    def create(self, body: Any, base_url: str) -> tuple[int, dict]:
        if not isinstance(body, dict) or body.get("type") not in ("tweets", "users"):
            return 400, _problem(400, "Invalid Request", "type must be tweets or users")
        with self._lock:
            if any(j["type"] == body["type"] and self._status(j) in ACTIVE for j in self.jobs.values()):
                return 409, _problem(409, "Conflict", f"You can only have one active {body['type']} job at a time")
            self.created += 1
            job_id = str(1_500_000_000_000_000_000 + self.created)
            now = time.time()
            job = {
                "id": job_id,
                "type": body["type"],
                "resumable": bool(body.get("resumable", False)),
                "upload_url": f"{base_url}/_storage/upload/{job_id}",
                "upload_expires_at": _iso(now + 900),
                "download_url": f"{base_url}/_storage/download/{job_id}",
                "download_expires_at": _iso(now + 7 * 86400),
                "created_at": _iso(now),
            }
            if body.get("name"):
                job["name"] = str(body["name"])
            self.jobs[job_id] = job
            return 200, {"data": self._public(job)}

    def get(self, job_id: str) -> tuple[int, dict]:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return 404, _problem(404, "Not Found Error", f"Could not find compliance job with id: [{job_id}]")
            return 200, {"data": self._public(job)}

    def list(self, query: dict[str, list[str]]) -> tuple[int, dict]:
        kind = (query.get("type") or [""])[0]
        if kind not in ("tweets", "users"):
            return 400, _problem(400, "Invalid Request", "The `type` query parameter is required: tweets or users")
        wanted = (query.get("status") or [None])[0]
        with self._lock:
            jobs = [self._public(j) for j in self.jobs.values() if j["type"] == kind]
        jobs = [j for j in jobs if wanted is None or j["status"] == wanted]
        return 200, ({"data": jobs, "meta": {"result_count": len(jobs)}} if jobs else {"meta": {"result_count": 0}})

    def upload(self, job_id: str, raw: bytes) -> int:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or job.get("_uploaded_at") is not None:
                return 403 if job is not None else 404
            self.uploads[job_id] = [line.strip() for line in raw.decode("utf-8").splitlines() if line.strip()]
            job["_uploaded_at"] = time.time()
            return 200

    def download(self, job_id: str) -> tuple[int, bytes]:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or self._status(job) != "complete":
                return 404, b"not ready"
            ids = self.uploads.get(job_id, [])
        lines = []
        redacted = _iso(job["_uploaded_at"])
        for tweet_id in ids:
            reason = self.events.get(tweet_id) or STATUS_REASONS.get(self.statuses.get(tweet_id, ""))
            if reason:
                action = "scrub_geo" if reason == "scrub_geo" else "delete"
                event = {"id": tweet_id, "action": action, "created_at": _iso(job["_uploaded_at"] - 86400)}
                lines.append(json.dumps({**event, "redacted_at": redacted, "reason": reason}, separators=(",", ":")))
        return 200, ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
